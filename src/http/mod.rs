//! The HTTP server: combined outputs (Atom, JSON Feed), the OPML source list, health, readiness and metrics (axum).
//!
//! Rendered outputs are cached with their compressed forms and validators and
//! re-rendered only when the stored items change (`ContentVersion`), so a
//! reader's poll of an unchanged feed costs no database query.

pub mod cache;
pub mod status_page;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::domain::{ContentVersion, Cursor, EntryFilter, StoredEntry};
use crate::emit::{self, OutputInfo};
use crate::metrics::Metrics;
use crate::store::Page;
use crate::store::Store;
use cache::CachedOutput;

/// What the server shows that a reload may change.
#[derive(Debug, Clone)]
pub struct Published {
    /// Public base URL; outputs' self links are made from it.
    pub base_url: url::Url,
    pub id_authority: String,
    /// WebSub hub advertised in every output.
    pub hub: Option<String>,
    pub outputs: Vec<PublishedOutput>,
    pub max_entries: usize,
    /// `Cache-Control` of the outputs, from `output.max_age`.
    pub cache_control: HeaderValue,
    pub sources_title: String,
    pub sources: Vec<emit::opml::OpmlSource>,
    /// Set when the last reload was refused; the running config stays.
    pub reload_error: Option<String>,
}

/// One combined feed, served as Atom and as JSON Feed.
#[derive(Debug, Clone)]
pub struct PublishedOutput {
    pub name: String,
    pub atom_path: String,
    pub json_path: String,
    pub id: String,
    pub title: String,
    pub filter: EntryFilter,
}

/// Which form of an output a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Atom,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }
}

impl Published {
    /// The output served at `path`, and in which form.
    pub fn find(&self, path: &str) -> Option<(&PublishedOutput, Format)> {
        self.outputs.iter().find_map(|o| {
            if o.atom_path == path {
                Some((o, Format::Atom))
            } else if o.json_path == path {
                Some((o, Format::Json))
            } else {
                None
            }
        })
    }

    /// The absolute public URL of `path` with an optional query.
    pub fn url(&self, path: &str, query: Option<&str>) -> String {
        let mut url = self
            .base_url
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base_url.clone());
        url.set_query(query);
        url.to_string()
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Swapped whole by a reload; a request holds the read lock only to clone the `Arc`.
    pub published: Arc<RwLock<Arc<Published>>>,
    pub version: ContentVersion,
    pub metrics: Metrics,
    cache: Arc<RenderCache>,
}

/// Each output form's last render of its first page, by request path, with
/// the content version it was made from.
#[derive(Debug, Default)]
struct RenderCache {
    /// Read by every request for a first page: a read lock held for one lookup.
    ready: RwLock<HashMap<String, (u64, Arc<CachedOutput>)>>,
    /// Held while rendering, so a burst of requests after a change renders once.
    rendering: tokio::sync::Mutex<()>,
}

impl RenderCache {
    /// The render for `path` if it was made from `version`.
    fn fresh(&self, path: &str, version: u64) -> Option<Arc<CachedOutput>> {
        self.ready
            .read()
            .expect("render cache lock poisoned")
            .get(path)
            .filter(|(made_from, _)| *made_from == version)
            .map(|(_, cached)| cached.clone())
    }

    fn insert(&self, path: &str, version: u64, cached: Arc<CachedOutput>) {
        self.ready
            .write()
            .expect("render cache lock poisoned")
            .insert(path.to_string(), (version, cached));
    }
}

impl AppState {
    pub fn new(
        store: Store,
        published: Published,
        version: ContentVersion,
        metrics: Metrics,
    ) -> AppState {
        AppState {
            store,
            published: Arc::new(RwLock::new(Arc::new(published))),
            version,
            metrics,
            cache: Arc::default(),
        }
    }

    /// Replaces what is published (after a reload) and drops cached renders.
    pub fn publish(&self, published: Published) {
        *self.published.write().expect("published lock poisoned") = Arc::new(published);
        self.version.bump();
    }

    /// Records that a reload was refused, for /healthz and /readyz.
    pub fn set_reload_error(&self, error: Option<String>) {
        let mut published = self.published.write().expect("published lock poisoned");
        Arc::make_mut(&mut published).reload_error = error;
    }

    /// What is published now.
    pub fn published(&self) -> Arc<Published> {
        self.published
            .read()
            .expect("published lock poisoned")
            .clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sources.opml", get(sources_opml))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .fallback(output)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled; requests in progress are finished first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Counts requests by route template (never the raw path, which readers control) and status.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    // Outputs are served by the fallback, whose paths come from the config.
    let route = route.unwrap_or_else(|| {
        if response.status() == StatusCode::NOT_FOUND {
            "unmatched".to_string()
        } else {
            "output".to_string()
        }
    });
    state
        .metrics
        .record_http(&route, response.status().as_u16());
    response
}

/// Serves an output's first page from the cache (rendering it first if the
/// stored items changed), or any other page straight from the database.
async fn output(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let published = state.published();
    let Some((output, format)) = published.find(uri.path()) else {
        return (StatusCode::NOT_FOUND, "no such output\n").into_response();
    };
    let page = match page_of(uri.query()) {
        Ok(page) => page,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    if page != Page::Newest {
        return match state
            .store
            .entries(&output.filter, page, published.max_entries)
            .await
        {
            Ok(entries) => {
                let body = render(&published, output, format, page, uri.query(), &entries);
                CachedOutput::new(body, content_type(format), newest_change(&entries)).respond(
                    &headers,
                    &method,
                    &published.cache_control,
                )
            }
            Err(e) => unavailable(&output.name, &e),
        };
    }
    let path = uri.path();
    let version = state.version.current();
    let cached = match state.cache.fresh(path, version) {
        Some(cached) => cached,
        None => {
            let _rendering = state.cache.rendering.lock().await;
            // Another request may have rendered it while this one waited.
            if let Some(cached) = state.cache.fresh(path, version) {
                return cached.respond(&headers, &method, &published.cache_control);
            }
            let entries = match state
                .store
                .entries(&output.filter, Page::Newest, published.max_entries)
                .await
            {
                Ok(entries) => entries,
                Err(e) => return unavailable(&output.name, &e),
            };
            let last_modified = newest_change(&entries);
            let (for_render, output) = (published.clone(), output.clone());
            let render_key = format!("{}.{}", output.name, format.extension());
            // Rendering and compressing a large feed takes a while: keep it off the async workers.
            let cached = tokio::task::spawn_blocking(move || {
                let body = render(&for_render, &output, format, Page::Newest, None, &entries);
                CachedOutput::new(body, content_type(format), last_modified)
            })
            .await
            .expect("rendering does not panic");
            let cached = Arc::new(cached);
            state.cache.insert(path, version, cached.clone());
            state.metrics.record_render(&render_key);
            cached
        }
    };
    cached.respond(&headers, &method, &published.cache_control)
}

fn unavailable(name: &str, error: &crate::store::StoreError) -> Response {
    error!("cannot render output {name}: {error}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the feed is unavailable: the database did not answer\n",
    )
        .into_response()
}

/// `?before=CURSOR` (older entries) or `?after=CURSOR` (newer entries).
fn page_of(query: Option<&str>) -> Result<Page, String> {
    let Some(query) = query else {
        return Ok(Page::Newest);
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let cursor =
            || Cursor::decode(&value).ok_or_else(|| format!("invalid {name} cursor {value:?}\n"));
        match name.as_ref() {
            "before" => return Ok(Page::Before(cursor()?)),
            "after" => return Ok(Page::After(cursor()?)),
            _ => {}
        }
    }
    Ok(Page::Newest)
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Atom => emit::atom::CONTENT_TYPE,
        Format::Json => emit::json::CONTENT_TYPE,
    }
}

/// Renders one page with its RFC 5005 paging links (`first`, `next` while the
/// page is full, `prev` when it is not the first) and the WebSub hub.
pub fn render(
    published: &Published,
    output: &PublishedOutput,
    format: Format,
    page: Page,
    query: Option<&str>,
    entries: &[StoredEntry],
) -> Vec<u8> {
    let path = match format {
        Format::Atom => &output.atom_path,
        Format::Json => &output.json_path,
    };
    let cursor_link = |rel: &str, entry: &StoredEntry| {
        let cursor = Cursor {
            published: entry.published,
            key: entry.key,
        };
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(rel, &cursor.encode())
            .finish();
        published.url(path, Some(&query))
    };
    let next = (entries.len() >= published.max_entries)
        .then(|| entries.last().map(|e| cursor_link("before", e)))
        .flatten();
    let prev = (page != Page::Newest)
        .then(|| entries.first().map(|e| cursor_link("after", e)))
        .flatten();
    let mut links = vec![("first".to_string(), published.url(path, None))];
    if let Some(next) = &next {
        links.push(("next".to_string(), next.clone()));
    }
    if let Some(prev) = prev {
        links.push(("prev".to_string(), prev));
    }
    if let Some(hub) = &published.hub {
        links.push(("hub".to_string(), hub.clone()));
    }
    let info = OutputInfo {
        id: output.id.clone(),
        title: output.title.clone(),
        self_url: published.url(&output.atom_path, query),
        self_url_json: Some(published.url(&output.json_path, query)),
        id_authority: published.id_authority.clone(),
        links,
        next_url_json: (format == Format::Json).then_some(next).flatten(),
    };
    match format {
        Format::Atom => emit::atom::render(&info, entries),
        Format::Json => emit::json::render(&info, entries),
    }
}

fn newest_change(entries: &[StoredEntry]) -> DateTime<Utc> {
    entries
        .iter()
        .map(|e| e.updated.max(e.published))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

async fn sources_opml(State(state): State<AppState>) -> Response {
    let published = state.published();
    (
        [(header::CONTENT_TYPE, emit::opml::CONTENT_TYPE)],
        emit::opml::render(&published.sources_title, &published.sources),
    )
        .into_response()
}

/// Liveness: the process answers. A refused reload is reported but is no reason to restart.
async fn healthz(State(state): State<AppState>) -> String {
    match &state.published().reload_error {
        Some(error) => format!("ok\nlast reload refused, running config kept: {error}\n"),
        None => "ok\n".to_string(),
    }
}

/// Readiness: the database answers and the config in force is the one on disk.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response();
    }
    match &state.published().reload_error {
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("config: last reload refused: {error}\n"),
        )
            .into_response(),
        None => "ready\n".into_response(),
    }
}

/// The status page: every feed's health, failing feeds first, with sparklines.
async fn status(State(state): State<AppState>) -> Response {
    let statuses = match state.store.feed_statuses().await {
        Ok(statuses) => statuses,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response();
        }
    };
    let daily = match state.store.daily_counts(status_page::DAYS as i32).await {
        Ok(daily) => daily,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response();
        }
    };
    let daily: Vec<status_page::DailyCounts> = daily
        .into_iter()
        .map(|(feed, counts)| status_page::DailyCounts { feed, counts })
        .collect();
    let published = state.published();
    let title = published
        .outputs
        .first()
        .map(|o| o.title.clone())
        .unwrap_or_else(|| "kabar".to_string());
    let html = status_page::render(
        &format!("{title}: status"),
        &statuses,
        &daily,
        Utc::now(),
        published.reload_error.as_deref(),
    );
    ([(header::CONTENT_TYPE, status_page::CONTENT_TYPE)], html).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

//! The HTTP server: combined outputs (Atom, JSON Feed), the OPML source list, health, readiness and metrics (axum).
//!
//! Rendered outputs are cached with their compressed forms and validators and
//! re-rendered only when the stored items change (`ContentVersion`), so a
//! reader's poll of an unchanged feed costs no database query.

pub mod cache;
pub mod status_page;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::domain::{ContentVersion, StoredEntry};
use crate::emit::{self, OutputInfo};
use crate::metrics::Metrics;
use crate::store::Store;
use cache::CachedOutput;

/// What the server shows that a reload may change.
#[derive(Debug, Clone)]
pub struct Published {
    pub output: OutputInfo,
    pub max_entries: usize,
    /// `Cache-Control: max-age` of the outputs.
    pub max_age: Duration,
    pub sources_title: String,
    pub sources: Vec<emit::opml::OpmlSource>,
    /// Set when the last reload was refused; the running config stays.
    pub reload_error: Option<String>,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub published: Arc<RwLock<Published>>,
    pub version: ContentVersion,
    pub metrics: Metrics,
    cache: Arc<tokio::sync::Mutex<RenderCache>>,
}

/// Each output's last render and the content version it was made from.
type RenderCache = HashMap<&'static str, (u64, Arc<CachedOutput>)>;

impl AppState {
    pub fn new(
        store: Store,
        published: Published,
        version: ContentVersion,
        metrics: Metrics,
    ) -> AppState {
        AppState {
            store,
            published: Arc::new(RwLock::new(published)),
            version,
            metrics,
            cache: Arc::default(),
        }
    }

    /// Replaces what is published (after a reload) and drops cached renders.
    pub fn publish(&self, published: Published) {
        *self.published.write().expect("published lock poisoned") = published;
        self.version.bump();
    }

    /// Records that a reload was refused, for /healthz and /readyz.
    pub fn set_reload_error(&self, error: Option<String>) {
        self.published
            .write()
            .expect("published lock poisoned")
            .reload_error = error;
    }

    fn published(&self) -> Published {
        self.published
            .read()
            .expect("published lock poisoned")
            .clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/feed.atom", get(feed_atom))
        .route("/feed.json", get(feed_json))
        .route("/sources.opml", get(sources_opml))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    state
        .metrics
        .record_http(&route, response.status().as_u16());
    response
}

type Renderer = fn(&OutputInfo, &[StoredEntry]) -> Vec<u8>;

/// Serves the cached render of `name`, rendering it first if the items changed.
async fn cached_output(
    state: &AppState,
    name: &'static str,
    content_type: &'static str,
    render: Renderer,
    headers: &HeaderMap,
    method: &Method,
) -> Response {
    let published = state.published();
    let version = state.version.current();
    let mut cache = state.cache.lock().await;
    let fresh = cache
        .get(name)
        .filter(|(made_from, _)| *made_from == version)
        .map(|(_, output)| output.clone());
    let output = match fresh {
        Some(output) => output,
        None => {
            let entries = match state.store.newest_entries(published.max_entries).await {
                Ok(entries) => entries,
                Err(e) => {
                    error!("cannot render {name}: {e}");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the feed is unavailable: the database did not answer\n",
                    )
                        .into_response();
                }
            };
            let last_modified = newest_change(&entries);
            let info = published.output.clone();
            // Compressing a large feed takes a while: keep it off the async workers.
            let output = tokio::task::spawn_blocking(move || {
                CachedOutput::new(render(&info, &entries), content_type, last_modified)
            })
            .await
            .expect("rendering does not panic");
            let output = Arc::new(output);
            cache.insert(name, (version, output.clone()));
            state.metrics.record_render(name);
            output
        }
    };
    drop(cache);
    output.respond(headers, method, published.max_age)
}

fn newest_change(entries: &[StoredEntry]) -> DateTime<Utc> {
    entries
        .iter()
        .map(|e| e.updated.max(e.published))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

async fn feed_atom(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    cached_output(
        &state,
        "feed.atom",
        emit::atom::CONTENT_TYPE,
        emit::atom::render,
        &headers,
        &method,
    )
    .await
}

async fn feed_json(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    cached_output(
        &state,
        "feed.json",
        emit::json::CONTENT_TYPE,
        emit::json::render,
        &headers,
        &method,
    )
    .await
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
    match state.published().reload_error {
        Some(error) => format!("ok\nlast reload refused, running config kept: {error}\n"),
        None => "ok\n".to_string(),
    }
}

/// Readiness: the database answers and the config in force is the one on disk.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response();
    }
    match state.published().reload_error {
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("config: last reload refused: {error}\n"),
        )
            .into_response(),
        None => "ready\n".into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

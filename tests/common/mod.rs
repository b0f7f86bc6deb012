//! Shared test support: a fresh PostgreSQL database per test and a loopback
//! HTTP server that serves fixture feeds and counts requests.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use kabar::config::{self, Settings};
use kabar::store::Store;
use sqlx::Connection;

/// The admin URL of the test server: set by scripts/test, else the usual local server.
pub fn admin_url() -> String {
    std::env::var("KABAR_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let admin = admin_url();
        let name = format!(
            "kabar_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            chrono::Utc::now().timestamp_micros()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach PostgreSQL at {admin} ({e}); run the tests with scripts/test")
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDb {
            url: format!("{base}/{name}"),
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url, 5)
            .await
            .expect("connect to test database")
    }
}

/// One path the fixture server answers.
#[derive(Clone)]
pub struct Route {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Answer conditional requests with 304 when the ETag matches.
    pub etag: bool,
    pub headers: Vec<(&'static str, String)>,
    /// Wait this long before answering.
    pub delay: Option<std::time::Duration>,
    /// Send this many body bytes, then nothing more, ever.
    pub stall_after: Option<usize>,
    /// Send the body gzip-compressed with `Content-Encoding: gzip`.
    pub gzip: bool,
}

impl Route {
    pub fn feed(body: impl Into<Vec<u8>>) -> Route {
        Route {
            status: StatusCode::OK,
            content_type: "application/rss+xml; charset=utf-8",
            body: body.into(),
            etag: true,
            headers: Vec::new(),
            delay: None,
            stall_after: None,
            gzip: false,
        }
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Route {
        Route {
            status: StatusCode::from_u16(status).unwrap(),
            etag: false,
            ..Route::feed(body)
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Route {
        self.headers.push((name, value.into()));
        self
    }

    pub fn without_etag(mut self) -> Route {
        self.etag = false;
        self
    }
}

#[derive(Default)]
struct ServerState {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
    not_modified: Mutex<HashMap<String, usize>>,
    /// When each request arrived, in order.
    arrivals: Mutex<Vec<std::time::Instant>>,
    /// Wall-clock arrival times per path, to compare with schedule ticks.
    arrivals_by_path: Mutex<HashMap<String, Vec<std::time::SystemTime>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A port on 127.0.0.1 that was free a moment ago, for a process the test starts.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// A real HTTP server on 127.0.0.1 serving fixture feeds.
pub struct FixtureServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
}

impl FixtureServer {
    pub async fn start() -> FixtureServer {
        let state = Arc::new(ServerState::default());
        let app = Router::new().fallback(serve).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FixtureServer { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), route);
    }

    /// Serves a fixture file from tests/fixtures at `path`, with the server's
    /// address substituted for `{base}` so item links point back here.
    pub fn set_fixture(&self, path: &str, file: &str) {
        self.set(path, Route::feed(self.fixture(file)));
    }

    /// Like `set_fixture`, answering only after `delay`: a poll stays in flight that long.
    pub fn set_slow_fixture(&self, path: &str, file: &str, delay: std::time::Duration) {
        self.set(
            path,
            Route {
                delay: Some(delay),
                ..Route::feed(self.fixture(file))
            },
        );
    }

    /// A fixture file's text with this server's address for `{base}`.
    pub fn fixture(&self, file: &str) -> String {
        fixture(file).replace("{base}", &format!("http://{}", self.addr))
    }

    pub fn hits(&self, path: &str) -> usize {
        *self.state.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub fn not_modified(&self, path: &str) -> usize {
        *self
            .state
            .not_modified
            .lock()
            .unwrap()
            .get(path)
            .unwrap_or(&0)
    }

    /// Arrival times of every request so far.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// Wall-clock arrival times of the requests for `path`, in order.
    pub fn arrivals_at(&self, path: &str) -> Vec<std::time::SystemTime> {
        self.state
            .arrivals_by_path
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// The most requests this server ever had in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

pub fn fixture(file: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", file]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

async fn serve(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    state
        .arrivals
        .lock()
        .unwrap()
        .push(std::time::Instant::now());
    let now_in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state
        .max_in_flight
        .fetch_max(now_in_flight, Ordering::SeqCst);
    let response = answer(&state, request).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn answer(state: &ServerState, request: Request) -> Response {
    let path = request.uri().path().to_string();
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    state
        .arrivals_by_path
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .push(std::time::SystemTime::now());
    let route = state.routes.lock().unwrap().get(&path).cloned();
    let Some(route) = route else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("tidak ditemukan"))
            .unwrap();
    };
    if let Some(delay) = route.delay {
        tokio::time::sleep(delay).await;
    }
    let etag = format!("\"{:x}\"", fnv(&route.body));
    if route.etag && if_none_match(request.headers()) == Some(etag.as_str()) {
        *state.not_modified.lock().unwrap().entry(path).or_default() += 1;
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &etag)
            .body(Body::empty())
            .unwrap();
    }
    let mut response = Response::builder()
        .status(route.status)
        .header(header::CONTENT_TYPE, route.content_type);
    if route.etag {
        response = response.header(header::ETAG, &etag);
    }
    for (name, value) in &route.headers {
        response = response.header(*name, value);
    }
    let mut body = route.body.clone();
    if route.gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&body).unwrap();
        body = encoder.finish().unwrap();
        response = response.header(header::CONTENT_ENCODING, "gzip");
    }
    if let Some(sent) = route.stall_after {
        let first = bytes::Bytes::from(body[..sent.min(body.len())].to_vec());
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(first)])
            .chain(futures_util::stream::pending());
        return response.body(Body::from_stream(stream)).unwrap();
    }
    response.body(Body::from(body)).unwrap()
}

fn if_none_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_NONE_MATCH)?.to_str().ok()
}

/// A content hash for ETags; any stable function of the body will do.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Settings for a test: the given database, and one `[[feeds]]` per (name, url, region).
pub fn settings(db_url: &str, feeds: &[(&str, String, &str)]) -> Settings {
    config::from_toml(&config_text(db_url, feeds)).expect("test config is valid")
}

pub fn config_text(db_url: &str, feeds: &[(&str, String, &str)]) -> String {
    config_with_defaults(db_url, feeds, "")
}

/// A config whose `[defaults]` table holds `defaults` (TOML lines).
pub fn config_with_defaults(
    db_url: &str,
    feeds: &[(&str, String, &str)],
    defaults: &str,
) -> String {
    let mut text = format!(
        "[database]\nurl = \"{db_url}\"\n\n[output]\ntitle = \"Kabar Uji\"\nbase_url = \"http://kabar.test/\"\n\n[defaults]\n{defaults}\n\n"
    );
    for (name, url, region) in feeds {
        text.push_str(&format!(
            "[[feeds]]\nname = \"{name}\"\nurl = \"{url}\"\nregion = \"{region}\"\n\n"
        ));
    }
    text
}

/// The recorded state of the feed called `name`.
pub async fn feed_status(store: &Store, name: &str) -> kabar::store::FeedStatus {
    store
        .feed_statuses()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no feed {name}"))
}

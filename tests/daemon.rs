//! The daemon over real HTTP and PostgreSQL: cached outputs with validators,
//! compression and HEAD; metrics after a known poll; reload of a changed and of
//! an invalid config; systemd notifications and SIGTERM on the real binary.

mod common;

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{FixtureServer, TestDb, config_text};
use kabar::app;
use kabar::daemon::{self, Controls};
use kabar::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct Running {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    reload: Arc<Notify>,
    task: tokio::task::JoinHandle<Result<(), app::AppError>>,
    client: reqwest::Client,
}

impl Running {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    async fn text(&self, path: &str) -> String {
        self.get(path, &[]).await.text().await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().expect("daemon stops cleanly");
    }
}

async fn start(
    settings: kabar::config::Settings,
    config_path: Option<std::path::PathBuf>,
) -> Running {
    let store = app::open_store(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    let controls = Controls {
        shutdown: shutdown.clone(),
        reload: reload.clone(),
        config_path,
    };
    let task = tokio::spawn(daemon::run(settings, store, listener, controls));
    Running {
        addr,
        shutdown,
        reload,
        task,
        // No automatic decompression: the tests look at the bytes on the wire.
        client: reqwest::Client::builder()
            .no_gzip()
            .no_brotli()
            .build()
            .unwrap(),
    }
}

/// A fresh database with one feed, `tribun-jabar`, served by a fixture server.
/// The database and server live as long as the returned values.
async fn one_feed() -> (TestDb, FixtureServer, kabar::config::Settings, Store) {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_fixture("/tribun/rss", "tribun-jabar.xml");
    let settings = common::settings(
        &db.url,
        &[("tribun-jabar", server.url("/tribun/rss"), "jawa-barat")],
    );
    let store = app::open_store(&settings).await.unwrap();
    (db, server, settings, store)
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_cached_with_validators_compression_and_head() {
    let (_db, server, settings, store) = one_feed().await;
    app::poll_once(&settings, &store, None).await.unwrap();
    let daemon = start(settings.clone(), None).await;

    let first = daemon.get("/feed.atom", &[]).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "strong ETag: {etag}");
    assert!(first.headers().contains_key("last-modified"));
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=300")
    );
    let body = first.bytes().await.unwrap();
    assert_eq!(
        feed_rs::parser::parse(body.as_ref()).unwrap().entries.len(),
        3
    );

    let again = daemon.get("/feed.atom", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    let gzip = daemon
        .get("/feed.atom", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let compressed = gzip.bytes().await.unwrap();
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_ref())
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, body.as_ref());

    let head = daemon
        .client
        .head(format!("http://{}/feed.atom", daemon.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());

    let json: serde_json::Value = serde_json::from_str(&daemon.text("/feed.json").await).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 3);
    let opml = daemon.text("/sources.opml").await;
    assert!(opml.contains("xmlUrl=\""), "{opml}");
    assert!(opml.contains("tribun-jabar"), "{opml}");

    // Served from the cache: one render per output whatever the number of requests.
    let metrics = daemon.text("/metrics").await;
    assert_eq!(
        metric(&metrics, "kabar_output_renders_total{output=\"feed.atom\"}"),
        1.0
    );

    // A reload request without a config file is ignored and breaks nothing.
    daemon.reload.notify_one();
    let still = daemon.get("/feed.atom", &[("if-none-match", &etag)]).await;
    assert_eq!(still.status(), 304);

    // Items stored by another process (here `kabar poll`'s code path) reach the
    // daemon through LISTEN/NOTIFY: the next request re-renders with a new ETag.
    server.set_fixture("/tribun/rss", "antara-jabar.xml");
    app::poll_once(&settings, &store, None).await.unwrap();
    let mut changed = None;
    for _ in 0..100 {
        let response = daemon.get("/feed.atom", &[("if-none-match", &etag)]).await;
        if response.status() == 200 {
            changed = Some(response.bytes().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let changed = changed.expect("the cached feed was invalidated");
    assert_eq!(
        feed_rs::parser::parse(changed.as_ref())
            .unwrap()
            .entries
            .len(),
        5
    );

    // So do items pruned by another process (`kabar prune`'s code path).
    let etag = daemon.get("/feed.atom", &[]).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let mut strict = settings.clone();
    strict.retention.max_items_per_feed = Some(1);
    assert_eq!(app::prune(&strict, &store).await.unwrap(), 4);
    let mut pruned = None;
    for _ in 0..100 {
        let response = daemon.get("/feed.atom", &[("if-none-match", &etag)]).await;
        if response.status() == 200 {
            pruned = Some(response.bytes().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pruned = pruned.expect("the cached feed was invalidated by the prune");
    assert_eq!(
        feed_rs::parser::parse(pruned.as_ref())
            .unwrap()
            .entries
            .len(),
        1
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_poll() {
    let (_db, _server, settings, store) = one_feed().await;
    let observers = app::Observers::default();
    let poller = app::poller_with(&settings, &store, &observers).unwrap();
    let source = settings.feed("tribun-jabar").unwrap().source.clone();
    poller.poll(&source, None, kabar::poll::PollMode::Now).await;
    poller.poll(&source, None, kabar::poll::PollMode::Now).await;
    let text = observers.metrics.encode();
    assert_eq!(
        metric(
            &text,
            "kabar_polls_total{feed=\"tribun-jabar\",outcome=\"stored\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "kabar_polls_total{feed=\"tribun-jabar\",outcome=\"not_modified\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "kabar_items_total{feed=\"tribun-jabar\",result=\"new\"}"
        ),
        3.0
    );
    assert_eq!(metric(&text, "kabar_fetch_duration_seconds_count"), 2.0);
    assert_eq!(metric(&text, "kabar_feeds_failing "), 0.0);
    assert!(
        observers.version.current() == 1,
        "new items bump the content version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_changed_config_and_refuses_an_invalid_one() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_fixture("/tribun/rss", "tribun-jabar.xml");
    server.set_fixture("/antara/rss", "antara-jabar.xml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kabar.toml");
    let one = config_text(
        &db.url,
        &[("tribun-jabar", server.url("/tribun/rss"), "jawa-barat")],
    );
    std::fs::write(&path, &one).unwrap();
    let settings = kabar::config::load(&path).unwrap();
    let daemon = start(settings, Some(path.clone())).await;
    assert!(daemon.text("/sources.opml").await.contains("tribun-jabar"));

    // A valid change: a feed added, the old one removed.
    let two = config_text(
        &db.url,
        &[("antara-jabar", server.url("/antara/rss"), "jawa-barat")],
    );
    std::fs::write(&path, &two).unwrap();
    daemon.reload.notify_one();
    let mut opml = String::new();
    for _ in 0..100 {
        opml = daemon.text("/sources.opml").await;
        if opml.contains("antara-jabar") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        opml.contains("antara-jabar") && !opml.contains("tribun-jabar"),
        "{opml}"
    );
    let store = kabar::store::Store::connect(&db.url, 2).await.unwrap();
    let statuses = store.feed_statuses().await.unwrap();
    let active: Vec<_> = statuses
        .iter()
        .filter(|s| s.active)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(active, ["antara-jabar"]);

    // An invalid change is refused whole; the running config stays and says so.
    std::fs::write(
        &path,
        two.replace("[[feeds]]", "[[feeds]]\nschedule = \"every day\""),
    )
    .unwrap();
    daemon.reload.notify_one();
    let mut health = String::new();
    for _ in 0..100 {
        health = daemon.text("/healthz").await;
        if health.contains("refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(health.contains("last reload refused"), "{health}");
    assert!(health.contains("feeds[0].schedule"), "{health}");
    assert_eq!(daemon.get("/readyz", &[]).await.status(), 503);
    assert!(daemon.text("/sources.opml").await.contains("antara-jabar"));
    // kabar status reads the same from the database.
    let notes = store.daemon_notes().await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].1.contains("feeds[0].schedule"), "{notes:?}");

    // Fixing the file and reloading clears the error.
    std::fs::write(&path, &two).unwrap();
    daemon.reload.notify_one();
    for _ in 0..100 {
        if daemon.get("/readyz", &[]).await.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(daemon.get("/readyz", &[]).await.status(), 200);
    assert!(store.daemon_notes().await.unwrap().is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_during_a_poll_lets_it_finish_keeps_serving_and_applies_retention() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_slow_fixture("/lambat/rss", "tribun-jabar.xml", Duration::from_secs(3));
    server.set_fixture("/antara/rss", "antara-jabar.xml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kabar.toml");
    let defaults = "schedule = \"@every 1s\"\ntick_jitter = \"0s\"\nper_host_interval = \"0s\"";
    let one = common::config_with_defaults(
        &db.url,
        &[("lambat", server.url("/lambat/rss"), "jawa-barat")],
        defaults,
    );
    std::fs::write(&path, &one).unwrap();
    let daemon = start(kabar::config::load(&path).unwrap(), Some(path.clone())).await;
    let store = db.store().await;
    for _ in 0..100 {
        if server.hits("/lambat/rss") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.hits("/lambat/rss"), 1, "the slow poll is in flight");
    assert_eq!(
        common::feed_status(&store, "lambat").await.last_polled_at,
        None
    );

    // An invalid config while the poll runs: refused, the poll goes on.
    std::fs::write(
        &path,
        one.replace("[[feeds]]", "[[feeds]]\nschedule = \"kadang\""),
    )
    .unwrap();
    daemon.reload.notify_one();
    // A valid one: a feed added and retention set. The reload waits for the poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let two = common::config_with_defaults(
        &db.url,
        &[
            ("lambat", server.url("/lambat/rss"), "jawa-barat"),
            ("antara-jabar", server.url("/antara/rss"), "jawa-barat"),
        ],
        defaults,
    ) + "[retention]\nmax_items_per_feed = 1\n";
    std::fs::write(&path, &two).unwrap();
    daemon.reload.notify_one();
    let mut answered = 0;
    let mut opml = String::new();
    for _ in 0..200 {
        // The listener keeps answering while the reload drains the poll.
        assert_eq!(daemon.get("/healthz", &[]).await.status(), 200);
        answered += 1;
        opml = daemon.text("/sources.opml").await;
        if opml.contains("antara-jabar") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(opml.contains("antara-jabar"), "{opml}");
    assert!(answered > 5, "requests were answered during the reload");

    // The poll in flight at the reload finished and stored its three items;
    // the new retention kept one of them, at once, and tombstoned the others.
    let lambat = common::feed_status(&store, "lambat").await;
    assert!(lambat.last_success_at.is_some(), "the poll was not dropped");
    for _ in 0..100 {
        if store.tombstone_count().await.unwrap() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.tombstone_count().await.unwrap(), 2);
    assert_eq!(common::feed_status(&store, "lambat").await.item_count, 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_notifies_systemd_and_stops_cleanly_on_sigterm() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let port = common::free_port();
    let config = dir.path().join("kabar.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[[feeds]]\nname = \"x\"\nurl = \"http://127.0.0.1:9/rss\"\nregion = \"bali\"\nschedule = \"0 0 1 1 *\"\n",
            db.url
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kabar"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("KABAR_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let received = tokio::task::spawn_blocking(move || {
        let mut messages = Vec::new();
        let mut buffer = [0u8; 4096];
        while !messages.iter().any(|m: &String| m.contains("READY=1")) {
            let n = socket
                .recv(&mut buffer)
                .expect("a notification before the timeout");
            messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
        (socket, messages)
    })
    .await
    .unwrap();
    let (socket, messages) = received;
    assert!(
        messages.iter().any(|m| m.contains("READY=1")),
        "{messages:?}"
    );
    // Ready means the listener is bound.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let mut buffer = [0u8; 4096];
    let mut after = Vec::new();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while let Ok(n) = socket.recv(&mut buffer) {
        after.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert!(after.iter().any(|m| m.contains("STOPPING=1")), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_cancelled_at_shutdown_stores_nothing() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_slow_fixture("/lambat/rss", "tribun-jabar.xml", Duration::from_secs(5));
    let settings = common::settings(
        &db.url,
        &[("lambat", server.url("/lambat/rss"), "jawa-barat")],
    );
    let store = app::open_store(&settings).await.unwrap();
    let poller = app::poller(&settings, &store).unwrap();
    let source = settings.feed("lambat").unwrap().source.clone();
    // What the scheduler does to polls still running at the drain deadline.
    let poll =
        tokio::spawn(async move { poller.poll(&source, None, kabar::poll::PollMode::Now).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    poll.abort();
    assert!(poll.await.unwrap_err().is_cancelled());
    assert!(store.newest_entries(10).await.unwrap().is_empty());
    let status = store.feed_statuses().await.unwrap().remove(0);
    assert_eq!(
        status.last_polled_at, None,
        "nothing of the cancelled poll was recorded"
    );
    assert_eq!(status.validators.etag, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_failing_feeds_first_with_sparklines() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_fixture("/tribun/rss", "tribun-jabar.xml");
    let settings = common::settings(
        &db.url,
        &[
            ("a-sehat", server.url("/tribun/rss"), "jawa-barat"),
            ("z-rusak", server.url("/tidak-ada/rss"), "bali"),
        ],
    );
    let store = app::open_store(&settings).await.unwrap();
    app::poll_once(&settings, &store, None).await.unwrap();
    let daemon = start(settings, None).await;
    let response = daemon.get("/status", &[]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    let broken = html.find("z-rusak").expect("failing feed listed");
    let healthy = html.find("a-sehat").expect("healthy feed listed");
    assert!(broken < healthy, "failing feeds first");
    assert!(html.contains("<svg"), "sparklines");
    assert!(html.contains("404"), "the last error is shown");
    daemon.stop().await;
}

//! Fault injection over real HTTP: every way a portal misbehaves is survived,
//! recorded on its feed with the right kind, and never costs another feed or a
//! stored item. Plus politeness counted at the server.

mod common;

use std::time::Duration;

use common::{FixtureServer, Route, TestDb, config_with_defaults, feed_status};
use kabar::app;
use kabar::poll::{PollMode, PollOutcome};

const GOOD_FEEDS: [(&str, &str); 2] = [("tribun", "/tribun/rss"), ("antara", "/antara/rss")];

fn rss_item(title: &str, link: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Uji</title><item><title>{title}</title><link>{link}</link><description>Isi.</description></item></channel></rss>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_recorded_and_the_other_feeds_poll_normally() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    let base = format!("http://{}", server.addr);
    server.set_fixture("/tribun/rss", "tribun-jabar.xml");
    server.set_fixture("/antara/rss", "antara-jabar.xml");
    let slow = Route {
        delay: Some(Duration::from_secs(5)),
        ..Route::feed(rss_item("Lambat", "https://x.example/1"))
    };
    let stall = Route {
        stall_after: Some(40),
        ..Route::feed(rss_item("Macet", "https://x.example/2"))
    };
    let huge = Route::feed(vec![b' '; 300 * 1024]);
    let bomb = Route {
        gzip: true,
        ..Route::feed(vec![0u8; 20 * 1024 * 1024])
    };
    let broken_xml = rss_item("Pemkot & DPRD Sepakat", "https://x.example/berita?a=1&b=2");
    let mut latin1 =
        rss_item("Harga Rp 5.000 \u{2013} naik", "https://x.example/harga").into_bytes();
    // The same feed in windows-1252 bytes, while the server claims UTF-8.
    latin1 = latin1
        .split(|b| *b == 0xE2)
        .collect::<Vec<_>>()
        .join(&[0x96][..])
        .into_iter()
        .filter(|b| *b != 0x80 && *b != 0x93)
        .collect();
    let faults: Vec<(&str, Route)> = vec![
        ("timeout", slow),
        ("stall", stall),
        ("error500", Route::status(500, "server error")),
        (
            "ratelimited",
            Route::status(429, "pelan-pelan").header("retry-after", "120"),
        ),
        ("gone", Route::status(410, "hilang")),
        ("huge", huge),
        ("bomb", bomb),
        ("loop", Route::status(302, "").header("location", "/loop-b")),
        (
            "html",
            Route::feed(
                "<!doctype html><html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"/rss-baru\"></head><body>Beranda</body></html>",
            ),
        ),
        ("brokenxml", Route::feed(broken_xml)),
        ("charset", Route::feed(latin1)),
    ];
    server.set(
        "/loop-b",
        Route::status(302, "").header("location", "/loop"),
    );
    let mut feeds: Vec<(&str, String, &str)> = GOOD_FEEDS
        .iter()
        .map(|(name, path)| (*name, server.url(path), "jawa-barat"))
        .collect();
    for (name, route) in &faults {
        let path = if *name == "loop" {
            "/loop".to_string()
        } else {
            format!("/{name}")
        };
        server.set(&path, route.clone());
        feeds.push((name, format!("{base}{path}"), "uji"));
    }
    let text = config_with_defaults(
        &db.url,
        &feeds,
        "timeout = \"3s\"\nstall_timeout = \"1s\"\nmax_body_bytes = 262144\nconcurrency = 16\nper_host_concurrency = 16\nper_host_interval = \"0s\"",
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();

    let reports = app::poll_once(&settings, &store, None).await.unwrap();
    let outcome = |name: &str| {
        reports
            .iter()
            .find(|r| r.feed == name)
            .unwrap()
            .outcome
            .clone()
    };
    let kind = |name: &str| match outcome(name) {
        PollOutcome::Failed { kind, .. } => kind,
        other => format!("not a failure: {other}"),
    };
    for (name, expected) in [
        ("timeout", "timeout"),
        ("stall", "stall"),
        ("error500", "http_status"),
        ("ratelimited", "http_status"),
        ("gone", "http_status"),
        ("huge", "too_large"),
        ("bomb", "too_large"),
        ("loop", "redirect"),
        ("html", "not_a_feed"),
    ] {
        assert_eq!(kind(name), expected, "{name}");
    }
    // The two good feeds share one article: five distinct items between them.
    let new = |name: &str| match outcome(name) {
        PollOutcome::Stored { new, .. } => new,
        other => panic!("{name}: {other}"),
    };
    assert_eq!(new("tribun") + new("antara"), 5);
    assert!(matches!(
        outcome("brokenxml"),
        PollOutcome::Stored { new: 1, .. }
    ));
    assert!(matches!(
        outcome("charset"),
        PollOutcome::Stored { new: 1, .. }
    ));

    let entries = store.newest_entries(100).await.unwrap();
    let titles: Vec<&str> = entries.iter().map(|e| e.title.as_str()).collect();
    assert!(titles.contains(&"Pemkot & DPRD Sepakat"), "{titles:?}");
    assert!(
        titles.contains(&"Harga Rp 5.000 \u{2013} naik"),
        "{titles:?}"
    );

    // What each feed's record says.
    let html = feed_status(&store, "html").await;
    assert!(
        html.last_error
            .unwrap()
            .contains(&format!("{base}/rss-baru"))
    );
    let limited = feed_status(&store, "ratelimited").await;
    let wait = (limited.not_before.unwrap() - chrono::Utc::now()).num_seconds();
    assert!((100..=120).contains(&wait), "Retry-After honoured: {wait}");
    let gone = feed_status(&store, "gone").await;
    assert_eq!(gone.state, "disabled");
    assert!(gone.disabled_reason.unwrap().contains("410"));
    let failing = feed_status(&store, "error500").await;
    assert_eq!(failing.consecutive_failures, 1);
    assert!(failing.not_before.is_some(), "backoff set");

    // Next round: the disabled feed is not polled again, the rate-limited one waits
    // (only that feed: its neighbours on the same host are polled), nothing stored is lost.
    let gone_hits = server.hits("/gone");
    let poller = app::poller(&settings, &store).unwrap();
    let source = |name: &str| settings.feed(name).unwrap().source.clone();
    let again = poller
        .poll(&source("gone"), None, PollMode::Scheduled)
        .await;
    assert!(matches!(again.outcome, PollOutcome::Disabled { .. }));
    let again = poller
        .poll(&source("ratelimited"), None, PollMode::Scheduled)
        .await;
    assert!(matches!(again.outcome, PollOutcome::Deferred { .. }));
    let neighbour = poller
        .poll(&source("tribun"), None, PollMode::Scheduled)
        .await;
    assert_eq!(neighbour.outcome, PollOutcome::NotModified);
    assert_eq!(server.hits("/gone"), gone_hits);
    assert_eq!(feed_status(&store, "ratelimited").await.skipped_ticks, 1);

    // A feed that stored items and then breaks keeps its items.
    server.set("/tribun/rss", Route::status(500, "rusak"));
    app::poll_once(&settings, &store, Some("tribun"))
        .await
        .unwrap();
    assert_eq!(
        store.newest_entries(100).await.unwrap().len(),
        entries.len()
    );

    // A new URL enables a disabled feed again.
    server.set(
        "/gone-baru",
        Route::feed(rss_item("Kembali", "https://x.example/kembali")),
    );
    let moved = text.replace(&format!("{base}/gone\""), &format!("{base}/gone-baru\""));
    let settings = kabar::config::from_toml(&moved).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    let back = app::poll_once(&settings, &store, Some("gone"))
        .await
        .unwrap();
    assert!(
        matches!(back[0].outcome, PollOutcome::Stored { new: 1, .. }),
        "{:?}",
        back[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_never_sees_more_than_its_limit() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    let feeds: Vec<(&str, String, &str)> = ["a", "b", "c", "d", "e"]
        .into_iter()
        .map(|name| {
            let path = format!("/{name}/rss");
            server.set(
                &path,
                Route {
                    delay: Some(Duration::from_millis(150)),
                    ..Route::feed(rss_item(name, &format!("https://x.example/{name}")))
                },
            );
            (name, server.url(&path), "uji")
        })
        .collect();
    let text = config_with_defaults(
        &db.url,
        &feeds,
        "concurrency = 8\nper_host_concurrency = 1\nper_host_interval = \"400ms\"",
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    app::poll_once(&settings, &store, None).await.unwrap();

    assert_eq!(
        server.max_in_flight(),
        1,
        "one request at a time to one host"
    );
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 5);
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        // Loopback adds no delay worth a tolerance beyond a few milliseconds.
        assert!(gap >= Duration::from_millis(395), "requests {gap:?} apart");
    }
    // Per second at the server: never more than 1 / 0.4 s, rounded up.
    let first = arrivals[0];
    for second in 0..3 {
        let count = arrivals
            .iter()
            .filter(|t| (**t - first).as_secs() == second)
            .count();
        assert!(count <= 3, "{count} requests in second {second}");
    }
}

#[tokio::test]
async fn publisher_hints_defer_scheduled_polls() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    let body = server.fixture("tribun-jabar.xml").replace(
        "<language>id</language>",
        "<language>id</language><ttl>60</ttl>",
    );
    server.set("/ttl/rss", Route::feed(body));
    server.set(
        "/cc/rss",
        Route::feed(rss_item("Cache", "https://x.example/cache"))
            .header("cache-control", "max-age=600"),
    );
    let text = config_with_defaults(
        &db.url,
        &[
            ("ttl", server.url("/ttl/rss"), "uji"),
            ("cc", server.url("/cc/rss"), "uji"),
        ],
        "per_host_interval = \"0s\"",
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    app::poll_once(&settings, &store, None).await.unwrap();
    let ttl = feed_status(&store, "ttl").await.not_before.unwrap();
    let cc = feed_status(&store, "cc").await.not_before.unwrap();
    let now = chrono::Utc::now();
    assert!(
        ((ttl - now).num_seconds() - 3600).abs() < 30,
        "ttl 60 minutes"
    );
    assert!(((cc - now).num_seconds() - 600).abs() < 30, "max-age 600");

    let poller = app::poller(&settings, &store).unwrap();
    let source = settings.feed("ttl").unwrap().source.clone();
    let tick = poller.poll(&source, None, PollMode::Scheduled).await;
    assert!(matches!(tick.outcome, PollOutcome::Deferred { .. }));
    assert_eq!(
        server.hits("/ttl/rss"),
        1,
        "a deferred tick sends no request"
    );
    assert_eq!(feed_status(&store, "ttl").await.skipped_ticks, 1);
}

#[tokio::test]
async fn news_sitemaps_are_polled_like_feeds() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    let sitemap = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url>
    <loc>https://jatim.suara.example/read/2026/11/25/101500/pasar-ikan-gresik-ramai</loc>
    <news:news>
      <news:publication><news:name>Suara Jatim Uji</news:name><news:language>id</news:language></news:publication>
      <news:publication_date>2026-11-25T10:15:00+07:00</news:publication_date>
      <news:title>Pasar Ikan Gresik Ramai Pembeli</news:title>
    </news:news>
  </url>
  <url>
    <loc>https://jatim.suara.example/read/2026/11/25/090000/jalan-tol-macet</loc>
    <news:news>
      <news:publication><news:name>Suara Jatim Uji</news:name><news:language>id</news:language></news:publication>
      <news:publication_date>2026-11-25T09:00:00+07:00</news:publication_date>
      <news:title>Jalan Tol Surabaya Padat Pagi Ini</news:title>
    </news:news>
  </url>
</urlset>"#;
    server.set("/sitemap-news.xml", Route::feed(sitemap));
    let text = format!(
        "{}kind = \"news-sitemap\"\n",
        common::config_text(
            &db.url,
            &[("suara-jatim", server.url("/sitemap-news.xml"), "jawa-timur")]
        )
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    let first = app::poll_once(&settings, &store, None).await.unwrap();
    assert!(
        matches!(first[0].outcome, PollOutcome::Stored { new: 2, .. }),
        "{:?}",
        first[0]
    );
    let second = app::poll_once(&settings, &store, None).await.unwrap();
    assert_eq!(second[0].outcome, PollOutcome::NotModified);
    let entries = store.newest_entries(10).await.unwrap();
    assert_eq!(entries[0].title, "Pasar Ikan Gresik Ramai Pembeli");
    assert_eq!(
        entries[0].published.to_rfc3339(),
        "2026-11-25T03:15:00+00:00"
    );
    assert_eq!(entries[0].source.title.as_deref(), Some("Suara Jatim Uji"));
}

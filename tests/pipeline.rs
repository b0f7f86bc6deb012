//! End to end through the library: loopback fixture feeds -> PostgreSQL -> Atom.

mod common;

use std::collections::HashSet;

use common::{FixtureServer, Route, TestDb, settings};
use kabar::app;
use kabar::config::Settings;
use kabar::poll::{PollOutcome, PollReport};
use kabar::store::Store;
use tokio_util::sync::CancellationToken;

const FEEDS: [(&str, &str, &str, &str); 4] = [
    (
        "tribun-jabar",
        "/tribun/rss",
        "tribun-jabar.xml",
        "jawa-barat",
    ),
    (
        "antara-jabar",
        "/antara/rss",
        "antara-jabar.xml",
        "jawa-barat",
    ),
    (
        "detik-jatim",
        "/detik/atom",
        "detik-jatim.atom",
        "jawa-timur",
    ),
    (
        "suara-jatim",
        "/suara/feed.json",
        "suara-jatim.json",
        "jawa-timur",
    ),
];
/// Items across the four fixtures, less the one article two feeds share.
const DISTINCT_ITEMS: usize = 3 + 3 + 2 + 1 - 1;

struct World {
    db: TestDb,
    server: FixtureServer,
    settings: Settings,
    store: Store,
}

async fn world() -> World {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    for (_, path, file, _) in FEEDS {
        server.set_fixture(path, file);
    }
    let feeds: Vec<_> = FEEDS
        .iter()
        .map(|(name, path, _, region)| (*name, server.url(path), *region))
        .collect();
    let settings = settings(&db.url, &feeds);
    let store = app::open_store(&settings).await.expect("open store");
    World {
        db,
        server,
        settings,
        store,
    }
}

fn stored(report: &PollReport) -> (usize, usize, usize) {
    match report.outcome {
        PollOutcome::Stored {
            fetched,
            new,
            duplicate,
            ..
        } => (fetched, new, duplicate),
        ref other => panic!("{} was not stored: {other}", report.feed),
    }
}

async fn entry_count(store: &Store) -> usize {
    store.newest_entries(1000).await.unwrap().len()
}

#[tokio::test]
async fn second_poll_of_unchanged_feeds_adds_nothing() {
    let w = world().await;
    let first = app::poll_once(&w.settings, &w.store, None).await.unwrap();
    let new: usize = first.iter().map(|r| stored(r).1).sum();
    assert_eq!(new, DISTINCT_ITEMS);
    assert_eq!(entry_count(&w.store).await, DISTINCT_ITEMS);

    let before_second = chrono::Utc::now();
    let second = app::poll_once(&w.settings, &w.store, None).await.unwrap();
    for report in &second {
        assert_eq!(report.outcome, PollOutcome::NotModified, "{}", report.feed);
        // The 304s are written together at the end of the run, and written.
        let status = common::feed_status(&w.store, &report.feed).await;
        assert!(
            status.last_polled_at.unwrap() >= before_second,
            "{}",
            report.feed
        );
        assert!(status.next_due.is_some(), "{}", report.feed);
    }
    for (_, path, _, _) in FEEDS {
        assert_eq!(w.server.hits(path), 2, "{path}");
        assert_eq!(w.server.not_modified(path), 1, "{path}: conditional GET");
    }
    assert_eq!(entry_count(&w.store).await, DISTINCT_ITEMS);
}

#[tokio::test]
async fn repolling_a_feed_without_validators_stores_nothing_twice() {
    let w = world().await;
    w.server.set(
        "/tribun/rss",
        Route::feed(w.server.fixture("tribun-jabar.xml")).without_etag(),
    );
    let only = Some("tribun-jabar");
    let first = app::poll_once(&w.settings, &w.store, only).await.unwrap();
    assert_eq!(stored(&first[0]), (3, 3, 0));
    for _ in 0..3 {
        let again = app::poll_once(&w.settings, &w.store, only).await.unwrap();
        assert_eq!(stored(&again[0]), (3, 0, 3));
    }
    assert_eq!(entry_count(&w.store).await, 3);
}

#[tokio::test]
async fn same_article_in_two_feeds_with_tracking_parameters_is_one_entry() {
    let w = world().await;
    let tribun = app::poll_once(&w.settings, &w.store, Some("tribun-jabar"))
        .await
        .unwrap();
    assert_eq!(stored(&tribun[0]), (3, 3, 0));
    let antara = app::poll_once(&w.settings, &w.store, Some("antara-jabar"))
        .await
        .unwrap();
    // Antara repeats Tribun's bridge article with utm_* parameters and a fragment.
    assert_eq!(stored(&antara[0]), (3, 2, 1));

    let entries = w.store.newest_entries(100).await.unwrap();
    let bridges: Vec<_> = entries
        .iter()
        .filter(|e| e.title.starts_with("Jembatan Gantung"))
        .collect();
    assert_eq!(bridges.len(), 1);
    assert_eq!(bridges[0].source.feed_name, "tribun-jabar");
    assert_eq!(
        bridges[0].url,
        w.server
            .url("/2026/11/25/jembatan-gantung-di-cikalong-kembali-dibuka")
    );
    // Tracking parameters are gone from stored URLs.
    assert!(entries.iter().all(|e| !e.url.contains("utm_")));
}

#[tokio::test]
async fn a_failed_store_leaves_the_feed_state_so_the_next_poll_retries() {
    let w = world().await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
         CREATE TRIGGER refuse_items BEFORE INSERT ON items
           FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(w.store.pool())
    .await
    .unwrap();

    let failed = app::poll_once(&w.settings, &w.store, Some("tribun-jabar"))
        .await
        .unwrap();
    match &failed[0].outcome {
        PollOutcome::Failed { kind, message } => {
            assert_eq!(kind, "store");
            assert!(message.contains("disk full"), "{message}");
        }
        other => panic!("expected a store failure, got {other}"),
    }
    let status = common::feed_status(&w.store, "tribun-jabar").await;
    assert_eq!(status.validators.etag, None, "validators must not be saved");
    assert_eq!(status.last_success_at, None);
    assert_eq!(status.last_error_kind.as_deref(), Some("store"));
    assert_eq!(status.consecutive_failures, 1);
    assert_eq!(entry_count(&w.store).await, 0);

    sqlx::raw_sql("DROP TRIGGER refuse_items ON items")
        .execute(w.store.pool())
        .await
        .unwrap();
    let retried = app::poll_once(&w.settings, &w.store, Some("tribun-jabar"))
        .await
        .unwrap();
    assert_eq!(stored(&retried[0]), (3, 3, 0));
    assert_eq!(
        w.server.not_modified("/tribun/rss"),
        0,
        "the retry refetched in full"
    );
    let status = common::feed_status(&w.store, "tribun-jabar").await;
    assert!(status.validators.etag.is_some());
    assert_eq!(status.last_error_kind, None);
    assert_eq!(status.consecutive_failures, 0);
}

#[tokio::test]
async fn a_broken_feed_is_recorded_and_the_others_still_poll() {
    let w = world().await;
    w.server.set(
        "/antara/rss",
        Route::feed("<html><body>Checking your browser…</body></html>"),
    );
    w.server.set(
        "/detik/atom",
        Route {
            status: axum::http::StatusCode::FORBIDDEN,
            ..Route::feed("forbidden")
        },
    );
    let reports = app::poll_once(&w.settings, &w.store, None).await.unwrap();
    let kinds: Vec<String> = reports
        .iter()
        .map(|r| match &r.outcome {
            PollOutcome::Failed { kind, .. } => kind.clone(),
            _ => "ok".to_string(),
        })
        .collect();
    assert_eq!(kinds, ["ok", "not_a_feed", "http_status", "ok"]);
    assert_eq!(entry_count(&w.store).await, 3 + 1);
    let detik = common::feed_status(&w.store, "detik-jatim").await;
    assert!(detik.last_error.unwrap().contains("403"));
}

#[tokio::test]
async fn emitted_feed_parses_back_with_unique_ids_stable_across_restarts() {
    let w = world().await;
    // Tribun first, so its copy of the shared article (with the image) is the one kept.
    app::poll_once(&w.settings, &w.store, Some("tribun-jabar"))
        .await
        .unwrap();
    app::poll_once(&w.settings, &w.store, None).await.unwrap();
    let first = app::render_atom(&w.settings, &w.store).await.unwrap();

    let parsed = feed_rs::parser::parse(first.as_slice()).expect("valid feed");
    assert_eq!(parsed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(parsed.entries.len(), DISTINCT_ITEMS);
    let ids: HashSet<_> = parsed.entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), DISTINCT_ITEMS, "entry ids are unique");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("tag:kabar.localhost,2026:item:"))
    );
    // Newest first.
    let published: Vec<_> = parsed
        .entries
        .iter()
        .map(|e| e.published.unwrap())
        .collect();
    assert!(published.windows(2).all(|w| w[0] >= w[1]), "{published:?}");

    let xml = String::from_utf8(first.clone()).unwrap();
    assert!(
        !xml.contains("<script") && !xml.contains("&lt;script"),
        "script survived"
    );
    assert!(!xml.contains("onclick"), "event handler survived");
    assert!(
        xml.contains(&format!("src=&quot;{}", w.server.url("/foto/jembatan.jpg"))),
        "relative image resolved against the item URL: {}",
        xml.lines()
            .filter(|l| l.contains("jembatan.jpg"))
            .collect::<String>()
    );
    assert_structure(&xml, DISTINCT_ITEMS);

    // A restart: a new connection pool, migrations and feed sync run again.
    drop(w.store);
    let store = app::open_store(&w.settings).await.unwrap();
    let again = app::render_atom(&w.settings, &store).await.unwrap();
    assert_eq!(
        first, again,
        "same items render to the same bytes after a restart"
    );
    drop(w.db);
}

/// Checks the elements RFC 4287 requires, with their cardinalities, element by element.
fn assert_structure(xml: &str, entries: usize) {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                path.push(e.name().as_ref().to_string());
                *counts.entry(path.join("/")).or_default() += 1;
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_string();
                *counts
                    .entry(format!("{}/{name}", path.join("/")))
                    .or_default() += 1;
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let count = |p: &str| counts.get(p).copied().unwrap_or(0);
    for once in ["feed/id", "feed/title", "feed/updated"] {
        assert_eq!(count(once), 1, "{once}");
    }
    // RFC 4287 allows several feed links (self, paging); exactly one is rel="self".
    assert!(count("feed/link") >= 1);
    // (Each entry's atom:source carries its portal feed's own self link.)
    assert_eq!(xml.matches("<link rel=\"self\"").count(), 1 + entries);
    assert_eq!(count("feed/entry"), entries);
    for each in [
        "feed/entry/id",
        "feed/entry/title",
        "feed/entry/updated",
        "feed/entry/published",
        "feed/entry/link",
        "feed/entry/content",
        "feed/entry/category",
        "feed/entry/source",
        "feed/entry/source/id",
        "feed/entry/source/title",
    ] {
        assert_eq!(count(each), entries, "one {each} per entry");
    }
    assert!(
        count("feed/entry/author") >= entries,
        "every entry has an author"
    );
}

#[tokio::test]
async fn the_daemon_serves_the_combined_feed_and_health_over_http() {
    let w = world().await;
    app::poll_once(&w.settings, &w.store, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(kabar::daemon::run(
        w.settings.clone(),
        w.store.clone(),
        listener,
        kabar::daemon::Controls::new(shutdown.clone()),
    ));

    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{addr}/feed.atom"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let body = response.bytes().await.unwrap();
    let feed = feed_rs::parser::parse(body.as_ref()).unwrap();
    assert_eq!(feed.entries.len(), DISTINCT_ITEMS);
    assert!(
        feed.links
            .iter()
            .any(|l| l.rel.as_deref() == Some("self") && l.href == "http://kabar.test/feed.atom")
    );

    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    shutdown.cancel();
    daemon.await.unwrap().expect("daemon stops cleanly");
}

#[tokio::test]
async fn max_entries_bounds_the_combined_feed() {
    let w = world().await;
    app::poll_once(&w.settings, &w.store, None).await.unwrap();
    let mut settings = w.settings.clone();
    settings.output.max_entries = 3;
    let xml = app::render_atom(&settings, &w.store).await.unwrap();
    let feed = feed_rs::parser::parse(xml.as_slice()).unwrap();
    assert_eq!(feed.entries.len(), 3);
    // The newest three: Antara's posko item (10:30 WIB), the bridge (09:12), Suara (09:30).
    let titles: Vec<_> = feed
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert!(titles[0].starts_with("Pemprov Jabar"), "{titles:?}");
}

#[tokio::test]
async fn indonesian_zone_less_mislabelled_and_future_dates_come_out_right() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_fixture("/radar/rss", "jawapos-dates.xml");
    let text = format!(
        "{}clock_offset = \"-7h\"\n",
        common::config_text(
            &db.url,
            &[("radar-uji", server.url("/radar/rss"), "jawa-timur")]
        )
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    let before = chrono::Utc::now();
    app::poll_once(&settings, &store, None).await.unwrap();
    let entries = store.newest_entries(10).await.unwrap();
    let published = |title: &str| {
        entries
            .iter()
            .find(|e| e.title == title)
            .unwrap_or_else(|| panic!("{title} stored"))
            .published
            .to_rfc3339()
    };
    // "14:00 GMT" was WIB clock time: -7h gives 07:00 UTC.
    assert_eq!(
        published("Tanggal berlabel GMT padahal WIB"),
        "2026-11-25T07:00:00+00:00"
    );
    // The offset applies to every date of the feed: 20.04 WIB is 13:04 UTC, less 7h.
    assert_eq!(
        published("Tanggal berbahasa Indonesia"),
        "2026-11-25T06:04:00+00:00"
    );
    // Zone-less dates are Asia/Jakarta time (21:35 WIB = 14:35 UTC), less 7h.
    assert_eq!(published("Tanggal tanpa zona"), "2026-11-25T07:35:00+00:00");
    // 2099 is clamped to the time the item was first seen.
    let future = entries
        .iter()
        .find(|e| e.title == "Tanggal jauh di masa depan")
        .unwrap();
    assert!(future.published >= before && future.published <= chrono::Utc::now());
}

#[tokio::test]
async fn reclean_applies_changed_rules_to_stored_items_keeping_ids() {
    let w = world().await;
    app::poll_once(&w.settings, &w.store, Some("tribun-jabar"))
        .await
        .unwrap();
    let before = w.store.newest_entries(10).await.unwrap();
    let atom_before = app::render_atom(&w.settings, &w.store).await.unwrap();

    // An admin adds a rule for this host and re-cleans.
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("lokal.toml"),
        "hosts = [\"127.0.0.1\"]\n[[rule]]\nname = \"pasokan\"\nremove_line = '^pedagang menyebut'\n",
    )
    .unwrap();
    let text = common::config_text(
        &w.db.url,
        &[("tribun-jabar", w.server.url("/tribun/rss"), "jawa-barat")],
    )
    .replacen(
        "[output]",
        &format!(
            "[cleaning]\nrules_dir = \"{}\"\n\n[output]",
            rules.path().display()
        ),
        1,
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let report = app::reclean(&settings, &w.store, None, None).await.unwrap();
    assert_eq!(
        report,
        app::RecleanReport {
            examined: 3,
            changed: 1
        }
    );

    let after = w.store.newest_entries(10).await.unwrap();
    assert_eq!(before.len(), after.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.key, new.key);
        if old.title.starts_with("Harga Cabai") {
            assert!(old.content_html.contains("Pedagang menyebut"));
            assert!(!new.content_html.contains("Pedagang menyebut"));
            assert!(new.updated > old.updated, "a changed item is updated");
        } else {
            assert_eq!(old, new, "an unchanged item is untouched");
        }
    }
    // Re-cleaning again with the same rules changes nothing.
    let again = app::reclean(&settings, &w.store, Some("tribun-jabar"), None)
        .await
        .unwrap();
    assert_eq!(again.changed, 0);
    let ids = |xml: &[u8]| -> Vec<String> {
        feed_rs::parser::parse(xml)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    let atom_after = app::render_atom(&settings, &w.store).await.unwrap();
    let (mut a, mut b) = (ids(&atom_before), ids(&atom_after));
    a.sort();
    b.sort();
    assert_eq!(a, b, "entry ids survive re-cleaning");
}

#[tokio::test]
async fn pruned_items_leave_tombstones_and_do_not_come_back() {
    let w = world().await;
    w.server.set(
        "/tribun/rss",
        Route::feed(w.server.fixture("tribun-jabar.xml")).without_etag(),
    );
    let only = Some("tribun-jabar");
    app::poll_once(&w.settings, &w.store, only).await.unwrap();
    assert_eq!(entry_count(&w.store).await, 3);

    let text = common::config_text(
        &w.db.url,
        &[("tribun-jabar", w.server.url("/tribun/rss"), "jawa-barat")],
    ) + "[retention]\nmax_items_per_feed = 1\n";
    let settings = kabar::config::from_toml(&text).unwrap();
    assert_eq!(app::prune(&settings, &w.store).await.unwrap(), 2);
    assert_eq!(w.store.tombstone_count().await.unwrap(), 2);
    let kept = w.store.newest_entries(10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].title.starts_with("Jembatan Gantung"),
        "the newest stays"
    );

    // The feed still lists all three: the pruned two stay pruned.
    let again = app::poll_once(&settings, &w.store, only).await.unwrap();
    assert_eq!(stored(&again[0]), (3, 0, 3));
    assert_eq!(entry_count(&w.store).await, 1);
    // Pruning again finds nothing more.
    assert_eq!(app::prune(&settings, &w.store).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_sharing_many_items_in_opposite_orders_store_concurrently() {
    // The same stories in eight feeds, half listing them oldest first and two
    // newest first, polled at once: their inserts overlap in opposite orders.
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    let items: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "<item><title>Berita {i}</title><link>https://bersama.example/berita/{i}</link><description>Isi berita {i}.</description></item>"
            )
        })
        .collect();
    let feed = |items: &[String]| {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Bersama</title>{}</channel></rss>",
            items.concat()
        )
    };
    let reversed: Vec<String> = items.iter().rev().cloned().collect();
    let mut feeds = Vec::new();
    for n in 0..8 {
        let path = format!("/bersama-{n}/rss");
        let body = if n % 2 == 0 {
            feed(&items)
        } else {
            feed(&reversed)
        };
        server.set(&path, Route::feed(body));
        feeds.push((format!("bersama-{n}"), server.url(&path)));
    }
    let feeds: Vec<(&str, String, &str)> = feeds
        .iter()
        .map(|(name, url)| (name.as_str(), url.clone(), "uji"))
        .collect();
    let text = common::config_with_defaults(
        &db.url,
        &feeds,
        "concurrency = 8\nper_host_concurrency = 8\nper_host_interval = \"0s\"",
    );
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    let reports = app::poll_once(&settings, &store, None).await.unwrap();
    let mut new = 0;
    for report in &reports {
        new += stored(report).1;
    }
    assert_eq!(
        new, 400,
        "each story stored once, by whichever poll came first"
    );
    assert_eq!(entry_count(&store).await, 400);
}

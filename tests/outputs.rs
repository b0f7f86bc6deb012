//! Outputs as readers get them: named outputs and their filters, region
//! outputs, RFC 5005 paging that stays stable while items arrive, and WebSub.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{FixtureServer, Route, TestDb};
use kabar::app;
use kabar::config::Settings;
use kabar::store::Store;
use tokio_util::sync::CancellationToken;

fn config(db: &str, server: &FixtureServer, extra: &str) -> String {
    format!(
        r#"[database]
url = "{db}"
[output]
title = "Kabar Uji"
base_url = "http://kabar.test/"
{extra}
[defaults]
per_host_interval = "0s"
[[feeds]]
name = "tribun-jabar"
url = "{tribun}"
region = "jawa-barat"
tags = ["tribun"]
[[feeds]]
name = "antara-jabar"
url = "{antara}"
region = "jawa-barat"
tags = ["antara"]
[[feeds]]
name = "detik-jatim"
url = "{detik}"
region = "jawa-timur"
tags = ["detik"]
[[outputs]]
name = "jabar-tanpa-jembatan"
title = "Jawa Barat tanpa jembatan"
regions = ["jawa-barat"]
exclude = ["jembatan"]
[[outputs]]
name = "hanya-tribun"
path = "/khusus/tribun.atom"
feeds = ["tribun-jabar"]
[[outputs]]
name = "tag-detik"
tags = ["detik"]
[[outputs]]
name = "banjir"
include = ["BANJIR", "rob"]
"#,
        tribun = server.url("/tribun/rss"),
        antara = server.url("/antara/rss"),
        detik = server.url("/detik/atom"),
    )
}

async fn setup(extra: &str) -> (TestDb, FixtureServer, Settings, Store, String) {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_fixture("/tribun/rss", "tribun-jabar.xml");
    server.set_fixture("/antara/rss", "antara-jabar.xml");
    server.set_fixture("/detik/atom", "detik-jatim.atom");
    let text = config(&db.url, &server, extra);
    let settings = kabar::config::from_toml(&text).unwrap();
    let store = app::open_store(&settings).await.unwrap();
    app::poll_once(&settings, &store, Some("tribun-jabar"))
        .await
        .unwrap();
    app::poll_once(&settings, &store, None).await.unwrap();
    (db, server, settings, store, text)
}

fn titles(xml: &[u8]) -> Vec<String> {
    feed_rs::parser::parse(xml)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.title.unwrap().content)
        .collect()
}

#[tokio::test]
async fn each_filter_includes_and_excludes_what_it_should() {
    let (_db, _server, settings, store, _) = setup("").await;
    let render = |name: &'static str| {
        let (settings, store) = (settings.clone(), store.clone());
        async move { titles(&app::render_output(&settings, &store, name).await.unwrap()) }
    };
    let all = render("feed").await;
    assert_eq!(all.len(), 7);

    let jabar = render("jabar-tanpa-jembatan").await;
    assert_eq!(jabar.len(), 4, "{jabar:?}");
    assert!(jabar.iter().all(|t| !t.contains("Jembatan")), "{jabar:?}");
    assert!(
        jabar
            .iter()
            .all(|t| !t.contains("Kereta") && !t.contains("Lumajang")),
        "{jabar:?}"
    );

    let tribun = render("hanya-tribun").await;
    assert_eq!(tribun.len(), 3, "{tribun:?}");

    let detik = render("tag-detik").await;
    assert_eq!(detik.len(), 2, "{detik:?}");
    assert!(
        detik
            .iter()
            .all(|t| t.contains("Kereta") || t.contains("Lumajang"))
    );

    // Keywords match title or text, case-insensitively; any one of them suffices.
    let banjir = render("banjir").await;
    assert_eq!(
        banjir,
        ["Pemprov Jabar Siapkan Posko Siaga Banjir di Lima Kabupaten"]
    );

    let region = render("region-jawa-timur").await;
    assert_eq!(region.len(), 2);

    let unknown = app::render_output(&settings, &store, "tidak-ada")
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("hanya-tribun"), "{unknown}");
}

async fn serve(settings: Settings, store: Store) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(kabar::daemon::run(
        settings,
        store,
        listener,
        kabar::daemon::Controls::new(shutdown.clone()),
    ));
    (base, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_and_region_outputs_are_served_as_atom_and_json() {
    let (_db, _server, settings, store, _) = setup("").await;
    let (base, shutdown) = serve(settings, store).await;
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move { reqwest::get(url).await.unwrap() }
    };
    let tribun = get("/khusus/tribun.atom").await;
    assert_eq!(tribun.status(), 200);
    assert_eq!(titles(&tribun.bytes().await.unwrap()).len(), 3);
    let json: serde_json::Value =
        serde_json::from_str(&get("/khusus/tribun.json").await.text().await.unwrap()).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 3);
    let region = get("/feeds/region/jawa-barat.atom").await;
    assert_eq!(titles(&region.bytes().await.unwrap()).len(), 5);
    assert_eq!(get("/feeds/region/papua.atom").await.status(), 404);
    assert_eq!(get("/feed.atom?before=rusak").await.status(), 400);
    shutdown.cancel();
}

fn link(xml: &[u8], rel: &str) -> Option<String> {
    feed_rs::parser::parse(xml)
        .unwrap()
        .links
        .into_iter()
        .find(|l| l.rel.as_deref() == Some(rel))
        .map(|l| l.href)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_next_visits_every_entry_once_while_items_arrive() {
    let (_db, server, settings, store, _) = setup("max_entries = 2").await;
    let before: HashSet<String> = feed_rs::parser::parse(
        app::render_output(
            &kabar::config::from_toml(&config(
                &settings.database.url,
                &server,
                "max_entries = 100",
            ))
            .unwrap(),
            &store,
            "feed",
        )
        .await
        .unwrap()
        .as_slice(),
    )
    .unwrap()
    .entries
    .into_iter()
    .map(|e| e.id)
    .collect();
    assert_eq!(before.len(), 7);

    let (base, shutdown) = serve(settings.clone(), store.clone()).await;
    let mut seen = Vec::new();
    let mut url = format!("{base}/feed.atom");
    for page in 0.. {
        let xml = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        let feed = feed_rs::parser::parse(xml.as_ref()).unwrap();
        assert!(feed.entries.len() <= 2);
        seen.extend(feed.entries.iter().map(|e| e.id.clone()));
        assert!(link(&xml, "first").unwrap().ends_with("/feed.atom"));
        if page > 0 {
            assert!(
                link(&xml, "prev").is_some(),
                "pages after the first link back"
            );
        }
        if page == 0 {
            // New items arrive in the middle of the walk.
            let fresh = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Baru</title>
<item><title>Kabar terbaru satu</title><link>https://baru.example/1</link><pubDate>Sat, 28 Nov 2026 08:00:00 +0700</pubDate></item>
<item><title>Kabar terbaru dua</title><link>https://baru.example/2</link><pubDate>Sat, 28 Nov 2026 08:05:00 +0700</pubDate></item>
</channel></rss>"#;
            server.set("/tribun/rss", Route::feed(fresh));
            app::poll_once(&settings, &store, Some("tribun-jabar"))
                .await
                .unwrap();
        }
        match link(&xml, "next") {
            // The server's links use the configured public base URL; follow them here.
            Some(next) => url = next.replace("http://kabar.test", &base),
            None => break,
        }
        assert!(page < 10, "paging terminates");
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no entry twice: {seen:?}");
    assert_eq!(
        unique, before,
        "every entry that was there when the walk began"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_advertise_the_hub_and_changes_ping_it() {
    let hub = FixtureServer::start().await;
    hub.set("/hub", Route::status(202, ""));
    let (_db, _server, settings, store, text) =
        setup(&format!("websub_hub = \"{}\"", hub.url("/hub"))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kabar.toml");
    std::fs::write(&path, &text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let controls = kabar::daemon::Controls {
        shutdown: shutdown.clone(),
        reload: std::sync::Arc::new(tokio::sync::Notify::new()),
        config_path: Some(path),
    };
    let reload = controls.reload.clone();
    tokio::spawn(kabar::daemon::run(settings, store, listener, controls));

    let xml = reqwest::get(format!("{base}/feed.atom"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(link(&xml, "hub").unwrap(), hub.url("/hub"));

    // A change of what the outputs show (here a reload) pings the hub for every output form.
    reload.notify_one();
    let outputs = 1 + 4 + 2; // default, named, regions
    for _ in 0..100 {
        if hub.hits("/hub") >= outputs * 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hub.hits("/hub"), outputs * 2);
    shutdown.cancel();
}

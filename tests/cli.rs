//! The `kabar` binary as an admin runs it: check-config, poll, render.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{FixtureServer, TestDb, config_text};

/// Runs the kabar binary off the async runtime, with a clean environment for its own variables.
async fn kabar(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kabar"));
        for (name, _) in std::env::vars() {
            if name.starts_with("KABAR_") {
                command.env_remove(name);
            }
        }
        command.args(&args).envs(envs).output().expect("run kabar")
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("kabar.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn check_config_reports_every_problem_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        r#"
[database]
url = "postgres://kabar@127.0.0.1/kabar"
pool_size = 3

[[feeds]]
name = "kompas-regional"
url = "https://regional.kompas.com/rss"
region = "nasional"
schedule = "0 9 * * 9"

[[feeds]]
name = "kompas-regional"
url = "https://surabaya.kompas.com/rss"
"#,
    );
    let out = kabar(&["--config", &config, "check-config"], &[]).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for expected in [
        "database.pool_size: unknown key",
        "feeds[0].schedule: feed \"kompas-regional\"",
        "0 9 * * 9",
        "feeds[1].name: duplicate feed name",
        "feeds[1].region",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn environment_overrides_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[feeds]]\nname = \"a\"\nurl = \"https://a.example/rss\"\nregion = \"aceh\"\n",
    );
    let without = kabar(&["--config", &config, "check-config"], &[]).await;
    assert!(!without.status.success());
    assert!(text(&without.stderr).contains("database.url: missing"));

    let with = kabar(
        &["check-config"],
        &[
            ("KABAR_CONFIG", config.as_str()),
            ("KABAR_DATABASE__URL", "postgres://kabar@127.0.0.1/kabar"),
        ],
    )
    .await;
    assert!(with.status.success(), "{}", text(&with.stderr));
    assert!(text(&with.stdout).contains("valid, 1 feeds"));
}

#[tokio::test]
async fn missing_config_file_is_named() {
    let out = kabar(
        &["--config", "/nonexistent/kabar.toml", "check-config"],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/kabar.toml"));
}

#[tokio::test]
async fn poll_stores_once_however_often_it_runs_and_render_writes_the_feed() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    server.set_fixture("/tribun/rss", "tribun-jabar.xml");
    server.set_fixture("/detik/atom", "detik-jatim.atom");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(
            &db.url,
            &[
                ("tribun-jabar", server.url("/tribun/rss"), "jawa-barat"),
                ("detik-jatim", server.url("/detik/atom"), "jawa-timur"),
            ],
        ),
    );

    let migrate = kabar(&["--config", &config, "migrate"], &[]).await;
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));

    let first = kabar(&["--config", &config, "poll"], &[]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let summary = text(&first.stdout);
    assert!(
        summary.contains("tribun-jabar  fetched 3, new 3, duplicates 0"),
        "{summary}"
    );
    assert!(
        summary.contains("detik-jatim   fetched 2, new 2, duplicates 0"),
        "{summary}"
    );
    assert!(summary.contains("2 feeds polled, 0 failed"), "{summary}");

    for _ in 0..2 {
        let again = kabar(&["--config", &config, "poll"], &[]).await;
        assert!(again.status.success());
        let summary = text(&again.stdout);
        assert!(summary.contains("tribun-jabar  not modified"), "{summary}");
    }

    let one = kabar(&["--config", &config, "poll", "--feed", "detik-jatim"], &[]).await;
    assert!(one.status.success());
    assert!(text(&one.stdout).contains("1 feeds polled"));
    assert_eq!(server.hits("/tribun/rss"), 3);

    let unknown = kabar(
        &["--config", &config, "poll", "--feed", "tribun-jatim"],
        &[],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("no feed named \"tribun-jatim\""));

    let out_file = dir.path().join("out").join("kabar.atom");
    std::fs::create_dir_all(out_file.parent().unwrap()).unwrap();
    let render = kabar(
        &[
            "--config",
            &config,
            "render",
            "-o",
            out_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(render.status.success(), "{}", text(&render.stderr));
    let bytes = std::fs::read(&out_file).unwrap();
    let feed = feed_rs::parser::parse(bytes.as_slice()).unwrap();
    assert_eq!(feed.entries.len(), 5);
    // Nothing but the feed is left in the output directory.
    assert_eq!(
        std::fs::read_dir(out_file.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
}

#[tokio::test]
async fn poll_exits_non_zero_when_a_feed_fails() {
    let db = TestDb::create().await;
    let server = FixtureServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(&db.url, &[("hilang", server.url("/tidak-ada/rss"), "bali")]),
    );
    let out = kabar(&["--config", &config, "poll"], &[]).await;
    assert!(!out.status.success());
    let summary = text(&out.stdout);
    assert!(summary.contains("hilang  error (http_status)"), "{summary}");
    assert!(summary.contains("404"), "{summary}");
}

#[tokio::test]
async fn clean_explains_which_rule_removed_what() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[database]\nurl = \"postgres://kabar@127.0.0.1/kabar\"\n[[feeds]]\nname = \"radar\"\nurl = \"https://radaruji.jawapos.example/feed\"\nregion = \"jawa-timur\"\nclock_offset = \"-7h\"\n",
    );
    let feed = dir.path().join("feed.xml");
    std::fs::write(
        &feed,
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Radar Uji</title>
<item><title>Pasar Malam Dibuka - Radar Surabaya</title><link>https://radarsurabaya.jawapos.com/a/1</link>
<pubDate>Wed, 25 Nov 2026 20:00:00 GMT</pubDate>
<description><![CDATA[<p>RADARSURABAYA.ID - Pasar malam dibuka lagi.</p><p>ADVERTISEMENT</p><p>Editor: Sari</p>]]></description></item>
</channel></rss>"#,
    )
    .unwrap();
    let out = kabar(
        &[
            "--config",
            &config,
            "clean",
            feed.to_str().unwrap(),
            "--feed",
            "radar",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for expected in [
        "1. Pasar Malam Dibuka\n",
        "published: 2026-11-25T13:00:00Z",
        "[default/advertisement] ADVERTISEMENT",
        "[default/editor] Editor: Sari",
        "[jawapos/dateline] RADARSURABAYA.ID -",
        "     Pasar malam dibuka lagi.",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}

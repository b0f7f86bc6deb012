//! Three `kabar run` processes on one database, polling feeds on three
//! loopback hosts: each feed is fetched once per due time, no item is stored
//! twice, each host sees one request at a time, and the feeds of a process
//! killed in the middle of a poll are taken over once its leases expire.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{FixtureServer, Route, TestDb, config_with_defaults, free_port};
use sqlx::Row;

/// The feeds' schedule period (`@every 4s`) and the lease, in seconds.
const PERIOD: u64 = 4;
const LEASE: u64 = 4;
const HOSTS: usize = 3;
const FEEDS_PER_HOST: usize = 3;

/// An RSS feed with two items of its own, one item every feed carries, and `extra`.
fn feed_body(feed: &str, extra: &[&str]) -> String {
    let mut items = format!(
        "<item><title>Pasar {feed} ramai</title><link>https://berita.example/{feed}/pasar</link><description>Isi {feed}.</description></item>\
         <item><title>Jalan {feed} diperbaiki</title><link>https://berita.example/{feed}/jalan</link><description>Isi {feed}.</description></item>\
         <item><title>Banjir di hulu</title><link>https://berita.example/bersama/banjir</link><description>Isi bersama.</description></item>"
    );
    for link in extra {
        items.push_str(&format!(
            "<item><title>Kabar baru {feed}</title><link>{link}</link><description>Isi baru.</description></item>"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>{feed}</title>{items}</channel></rss>"
    )
}

struct Instance {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Instance {
    // A failing assertion must not leave daemons running after the test.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_instance(dir: &Path, index: usize, config: &str) -> Instance {
    let path = dir.join(format!("kabar-{index}.toml"));
    let text = format!("[http]\nlisten = \"127.0.0.1:{}\"\n\n{config}", free_port());
    std::fs::write(&path, text).unwrap();
    let log = dir.join(format!("kabar-{index}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_kabar"))
        .args(["--config", path.to_str().unwrap(), "run"])
        .env_remove("KABAR_DATABASE__URL")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "kabar=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Instance { child, log }
}

fn window(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs() / PERIOD
}

/// The number of requests for `path` in each schedule period that saw any.
fn requests_per_period(server: &FixtureServer, path: &str, after: SystemTime) -> Vec<usize> {
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for at in server.arrivals_at(path).into_iter().filter(|t| *t > after) {
        *counts.entry(window(at)).or_default() += 1;
    }
    counts.into_values().collect()
}

async fn wait_for(what: &str, seconds: u64, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn logs(instances: &[Instance]) -> String {
    instances
        .iter()
        .map(|i| std::fs::read_to_string(&i.log).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_poll_each_feed_once_per_due_time_and_take_over_a_killed_one() {
    let db = TestDb::create().await;
    let mut servers = Vec::new();
    let mut feeds = Vec::new();
    for h in 0..HOSTS {
        let server = FixtureServer::start().await;
        for f in 0..FEEDS_PER_HOST {
            let name = format!("h{h}-f{f}");
            let path = format!("/f{f}/rss");
            server.set(&path, Route::feed(feed_body(&name, &[])).without_etag());
            feeds.push((name, server.url(&path), "uji"));
        }
        servers.push(server);
    }
    let feed_refs: Vec<(&str, String, &str)> = feeds
        .iter()
        .map(|(n, u, r)| (n.as_str(), u.clone(), *r))
        .collect();
    let config = config_with_defaults(
        &db.url,
        &feed_refs,
        &format!(
            "schedule = \"@every {PERIOD}s\"\ntick_jitter = \"0s\"\nlease = \"{LEASE}s\"\nper_host_interval = \"100ms\"\nshutdown_timeout = \"5s\""
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let started = SystemTime::now();
    // Started together: the migrations run once, under sqlx's lock.
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| spawn_instance(dir.path(), i, &config))
        .collect();

    // Phase 1: every feed polled over a few periods.
    let all_polled_twice = async || {
        servers
            .iter()
            .all(|s| (0..FEEDS_PER_HOST).all(|f| s.arrivals_at(&format!("/f{f}/rss")).len() >= 2))
    };
    wait_for("every feed to be polled twice", 60, all_polled_twice).await;
    for (h, server) in servers.iter().enumerate() {
        for f in 0..FEEDS_PER_HOST {
            let per_period = requests_per_period(server, &format!("/f{f}/rss"), started);
            assert!(
                per_period.iter().all(|n| *n == 1),
                "h{h}-f{f} requests per period: {per_period:?}\n{}",
                logs(&instances)
            );
        }
        assert_eq!(
            server.max_in_flight(),
            1,
            "host {h} saw one request at a time across instances"
        );
    }

    // Phase 2: a slow poll with a new item; kill the process running it.
    let new_link = "https://berita.example/h0-f0/baru";
    let before = servers[0].arrivals_at("/f0/rss").len();
    servers[0].set(
        "/f0/rss",
        Route {
            delay: Some(Duration::from_secs(30)),
            ..Route::feed(feed_body("h0-f0", &[new_link])).without_etag()
        },
    );
    let store = db.store().await;
    let mut owner = String::new();
    // The slow request takes longer than this test waits, so the victim's
    // poll cannot have finished when it is killed.
    wait_for("the slow poll to be in flight", 30, async || {
        let row = sqlx::query(
            "SELECT lease_owner FROM feeds WHERE name = 'h0-f0' AND leased_until > now()",
        )
        .fetch_optional(store.pool())
        .await
        .unwrap();
        match row {
            Some(row) if servers[0].arrivals_at("/f0/rss").len() > before => {
                owner = row.get("lease_owner");
                true
            }
            _ => false,
        }
    })
    .await;
    let pid: u32 = owner.split(':').nth(1).unwrap().parse().unwrap();
    let victim = instances
        .iter()
        .position(|i| i.child.id() == pid)
        .unwrap_or_else(|| panic!("lease owner {owner} is one of ours"));
    let mut killed = instances.remove(victim);
    killed.child.kill().unwrap(); // SIGKILL: no drain, no lease released
    killed.child.wait().unwrap();
    let killed_at = SystemTime::now();
    servers[0].set(
        "/f0/rss",
        Route::feed(feed_body("h0-f0", &[new_link])).without_etag(),
    );

    wait_for(
        "a survivor to take over and store the new item",
        60,
        async || {
            sqlx::query("SELECT 1 FROM items WHERE url = $1")
                .bind(new_link)
                .fetch_optional(store.pool())
                .await
                .unwrap()
                .is_some()
        },
    )
    .await;
    let taken_over = common::feed_status(&store, "h0-f0").await;
    assert!(
        taken_over.last_success_at.unwrap() > chrono::DateTime::<chrono::Utc>::from(killed_at),
        "the killed poll was redone by a survivor"
    );
    // Every feed, the killed process's included, keeps being polled.
    let resumed = killed_at + Duration::from_secs(LEASE);
    wait_for(
        "every feed to be polled after the takeover",
        60,
        async || {
            servers.iter().all(|s| {
                (0..FEEDS_PER_HOST).all(|f| {
                    s.arrivals_at(&format!("/f{f}/rss"))
                        .iter()
                        .any(|t| *t > resumed)
                })
            })
        },
    )
    .await;
    for (h, server) in servers.iter().enumerate() {
        for f in 0..FEEDS_PER_HOST {
            let per_period = requests_per_period(server, &format!("/f{f}/rss"), started);
            // A poll of the killed process's host cut off between its request
            // and its commit is redone, possibly in the same period.
            let allowed = if h == 0 { 2 } else { 1 };
            assert!(
                per_period.iter().all(|n| *n <= allowed),
                "h{h}-f{f} requests per period: {per_period:?}\n{}",
                logs(&instances)
            );
        }
    }

    // No item stored twice: the nine feeds' own items, the shared one, the new one.
    let counts = sqlx::query("SELECT count(*) AS all, count(DISTINCT url) AS distinct FROM items")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (all, distinct): (i64, i64) = (counts.get("all"), counts.get("distinct"));
    assert_eq!(all, (HOSTS * FEEDS_PER_HOST * 2 + 2) as i64);
    assert_eq!(all, distinct);

    // The survivors stop cleanly and give their leases up.
    for instance in &mut instances {
        let status = Command::new("kill")
            .args(["-TERM", &instance.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    for instance in &mut instances {
        let exit = instance.child.wait().unwrap();
        assert!(exit.success(), "exit status {exit:?}");
    }
    let leased: i64 = sqlx::query("SELECT count(*) FROM feeds WHERE leased_until > now()")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(leased, 0, "{}", logs(&instances));
}

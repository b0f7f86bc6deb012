//! A synthetic feed farm for benchmarks: serves N deterministic RSS feeds of
//! Indonesian-like news on loopback, with strong ETags and 304s, optional gzip
//! and a mode where feeds gain items over time. See README "Benchmarks".
//!
//! ```sh
//! cargo run --release --example feedfarm -- --feeds 1000 --port 8900
//! curl 'http://127.0.0.1:8900/config.toml?db=postgresql://postgres@127.0.0.1/kabar_bench'
//! ```

#[path = "../bench/synth.rs"]
mod synth;

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use synth::FarmSpec;

#[derive(Debug, Parser)]
#[command(about = "Serves deterministic synthetic RSS feeds for kabar's benchmarks")]
struct Args {
    /// Number of feeds, served at /feed/0.xml .. /feed/{N-1}.xml.
    #[arg(long, default_value_t = 100)]
    feeds: usize,
    /// Items per feed.
    #[arg(long, default_value_t = 50)]
    items: usize,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Share of item URLs drawn from a pool shared across feeds.
    #[arg(long, default_value_t = 0.1)]
    repeat_share: f64,
    /// Seed of every generated word; equal seeds give identical feeds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Send gzip to clients that accept it (compressed once per feed version).
    #[arg(long)]
    gzip: bool,
    /// Every SECS seconds each feed gains --grow-items new items (oldest drop off).
    #[arg(long, value_name = "SECS")]
    grow_every: Option<u64>,
    /// Items gained per growth step.
    #[arg(long, default_value_t = 5)]
    grow_items: usize,
}

/// One version of one feed, ready to send.
struct Version {
    generation: u64,
    etag: HeaderValue,
    body: bytes::Bytes,
    gzip: OnceLock<bytes::Bytes>,
}

struct Farm {
    spec: FarmSpec,
    gzip: bool,
    grow_every: Option<Duration>,
    started: Instant,
    feeds: Vec<Mutex<Arc<Version>>>,
    ok: AtomicU64,
    not_modified: AtomicU64,
}

impl Farm {
    fn generation(&self) -> u64 {
        match self.grow_every {
            Some(step) if !step.is_zero() => {
                (self.started.elapsed().as_secs_f64() / step.as_secs_f64()) as u64
            }
            _ => 0,
        }
    }

    fn version(&self, i: usize) -> Arc<Version> {
        let generation = self.generation();
        let mut slot = self.feeds[i].lock().expect("feed lock");
        if slot.generation != generation {
            *slot = Arc::new(make_version(&self.spec, i, generation));
        }
        slot.clone()
    }
}

fn make_version(spec: &FarmSpec, i: usize, generation: u64) -> Version {
    let body = synth::feed_xml(spec, i, generation);
    Version {
        generation,
        etag: HeaderValue::from_str(&format!("\"s{:x}-f{i}-g{generation}\"", spec.seed))
            .expect("ASCII etag"),
        body: bytes::Bytes::from(body),
        gzip: OnceLock::new(),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.feeds > 0, "--feeds must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.repeat_share),
        "--repeat-share must be between 0 and 1"
    );
    let spec = FarmSpec {
        feeds: args.feeds,
        items: args.items,
        repeat_share: args.repeat_share,
        seed: args.seed,
        new_per_generation: args.grow_items,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, spec))
}

async fn serve(args: Args, spec: FarmSpec) -> anyhow::Result<()> {
    // Every feed is generated before the port opens, so no measurement pays for it.
    let started = Instant::now();
    let feeds = (0..spec.feeds)
        .map(|i| Mutex::new(Arc::new(make_version(&spec, i, 0))))
        .collect();
    eprintln!(
        "feedfarm: generated {} feeds in {:.1} s",
        spec.feeds,
        started.elapsed().as_secs_f64()
    );
    let farm = Arc::new(Farm {
        spec,
        gzip: args.gzip,
        grow_every: args.grow_every.map(Duration::from_secs),
        started: Instant::now(),
        feeds,
        ok: AtomicU64::new(0),
        not_modified: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/feed/{file}", get(feed))
        .route("/feeds.txt", get(feeds_txt))
        .route("/config.toml", get(config_toml))
        .route("/stats", get(stats))
        .with_state(farm);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    // Scripts wait for this line instead of sleeping.
    println!("LISTENING http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn feed(
    State(farm): State<Arc<Farm>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(i) = file
        .strip_suffix(".xml")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|i| *i < farm.feeds.len())
    else {
        return (StatusCode::NOT_FOUND, "no such feed\n").into_response();
    };
    let version = farm.version(i);
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.as_bytes() == version.etag.as_bytes());
    if matches {
        farm.not_modified.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, version.etag.clone())],
        )
            .into_response();
    }
    farm.ok.fetch_add(1, Ordering::Relaxed);
    let wants_gzip = farm.gzip
        && headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|c| c.trim().starts_with("gzip")));
    let content_type = HeaderValue::from_static("application/rss+xml; charset=utf-8");
    if wants_gzip {
        let body = version
            .gzip
            .get_or_init(|| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(&version.body).expect("write to memory");
                bytes::Bytes::from(encoder.finish().expect("finish in memory"))
            })
            .clone();
        return (
            [
                (header::CONTENT_TYPE, content_type),
                (header::ETAG, version.etag.clone()),
                (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                (header::VARY, HeaderValue::from_static("accept-encoding")),
            ],
            body,
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, version.etag.clone()),
        ],
        version.body.clone(),
    )
        .into_response()
}

async fn feeds_txt(State(farm): State<Arc<Farm>>, headers: HeaderMap) -> String {
    let base = base_url(&headers);
    (0..farm.feeds.len())
        .map(|i| format!("{base}/feed/{i}.xml\n"))
        .collect()
}

async fn stats(State(farm): State<Arc<Farm>>) -> String {
    format!(
        "feeds {}\ngeneration {}\nok {}\nnot_modified {}\n",
        farm.feeds.len(),
        farm.generation(),
        farm.ok.load(Ordering::Relaxed),
        farm.not_modified.load(Ordering::Relaxed)
    )
}

/// `http://HOST` as the client addressed us (the farm only binds loopback).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A kabar config polling every farm feed: `?db=URL` (required), optional
/// `listen=ADDR`, `schedule=CRON`, `concurrency=N`, `max_entries=N`.
async fn config_toml(
    State(farm): State<Arc<Farm>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(db) = query.get("db") else {
        return (
            StatusCode::BAD_REQUEST,
            "missing ?db=postgresql://… (the database kabar should use)\n",
        )
            .into_response();
    };
    let toml_string = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let concurrency: usize = query
        .get("concurrency")
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let base = base_url(&headers);
    let mut out = String::with_capacity(farm.feeds.len() * 100 + 1024);
    out.push_str("# kabar config for the synthetic feed farm (examples/feedfarm.rs).\n\n");
    out.push_str(&format!("[database]\nurl = {}\n\n", toml_string(db)));
    if let Some(listen) = query.get("listen") {
        out.push_str(&format!("[http]\nlisten = {}\n\n", toml_string(listen)));
    }
    out.push_str(&format!(
        "[output]\nbase_url = \"http://127.0.0.1/\"\nmax_entries = {}\n\n",
        query
            .get("max_entries")
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(200)
    ));
    out.push_str(
        "[defaults]\n\
         # BENCHMARK ONLY: every farm feed is on one loopback host, so the per-host\n\
         # politeness limits (1 request in flight, 1 s apart, by default) are raised\n\
         # here; otherwise the benchmark would measure the politeness delay. Never\n\
         # point a config like this at real portals.\n",
    );
    out.push_str(&format!(
        "per_host_concurrency = {}\nper_host_interval = \"0s\"\nconcurrency = {concurrency}\ntick_jitter = \"0s\"\n",
        concurrency.clamp(1, 64)
    ));
    out.push_str(&format!(
        "schedule = {}\n\n",
        toml_string(
            query
                .get("schedule")
                .map(String::as_str)
                .unwrap_or("*/15 * * * *")
        )
    ));
    for i in 0..farm.feeds.len() {
        out.push_str(&format!(
            "[[feeds]]\nname = \"farm-{i}\"\nurl = \"{base}/feed/{i}.xml\"\nregion = \"{}\"\n\n",
            synth::region(i)
        ));
    }
    ([(header::CONTENT_TYPE, "application/toml")], out).into_response()
}

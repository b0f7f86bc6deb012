//! Composition root: builds the store, fetcher and poller from settings, and runs
//! the daemon, one-shot polls and renders. The only module that wires everything.

use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::domain::ContentVersion;
use crate::domain::EntryFilter;
use crate::fetch::{FetchError, FetchLimits, Fetcher};
use crate::http::{Format, Published, PublishedOutput};
use crate::metrics::Metrics;
use crate::politeness::HostGate;
use crate::poll::{PollMode, PollReport, PollRules, Poller};
use crate::store::Page;
use crate::store::{Store, StoreError};

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(#[from] crate::parse::ParseError),
    #[error("no output named {name:?}; outputs: {known}")]
    UnknownOutput { name: String, known: String },
    #[error("no feed named {name:?} in the config; configured feeds: {known}")]
    UnknownFeed { name: String, known: String },
}

/// Connects to the database, applies migrations and syncs the configured feeds.
pub async fn open_store(settings: &Settings) -> Result<Store, AppError> {
    let store = Store::connect(&settings.database.url, settings.database.max_connections).await?;
    prepare_store(&store, settings).await?;
    Ok(store)
}

/// Applies migrations and syncs the configured feeds into an open store.
pub async fn prepare_store(store: &Store, settings: &Settings) -> Result<(), AppError> {
    store.migrate().await?;
    let sources: Vec<_> = settings.feeds.iter().map(|f| f.source.clone()).collect();
    store.sync_feeds(&sources).await?;
    Ok(())
}

pub fn fetcher(settings: &Settings) -> Result<Fetcher, AppError> {
    Ok(Fetcher::new(&FetchLimits {
        connect_timeout: settings.fetch.connect_timeout,
        timeout: settings.fetch.timeout,
        stall_timeout: settings.fetch.stall_timeout,
        max_body_bytes: settings.fetch.max_body_bytes,
    })?)
}

/// A poller with the settings' HTTP limits, rules and date margin, for one-shot commands.
pub fn poller(settings: &Settings, store: &Store) -> Result<Poller, AppError> {
    poller_with(settings, store, &Observers::default())
}

/// What the daemon's polls report to, kept across reloads.
#[derive(Debug, Clone, Default)]
pub struct Observers {
    pub metrics: Metrics,
    pub version: ContentVersion,
    pub failing: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// A poller that reports to `observers`.
pub fn poller_with(
    settings: &Settings,
    store: &Store,
    observers: &Observers,
) -> Result<Poller, AppError> {
    Ok(Poller::new(
        fetcher(settings)?,
        store.clone(),
        PollRules {
            rules: settings.rules.clone(),
            metrics: observers.metrics.clone(),
            version: observers.version.clone(),
            failing: observers.failing.clone(),
            future_margin: settings.future_margin,
            pacing: settings.pacing.clone(),
            hosts: HostGate::new(settings.per_host_concurrency, settings.per_host_interval),
        },
    ))
}

/// What the HTTP server publishes for these settings: the default output
/// (everything), the named outputs, and one output per region with feeds.
pub fn published(settings: &Settings) -> Published {
    let authority = &settings.output.id_authority;
    let mut outputs = vec![PublishedOutput {
        name: "feed".to_string(),
        atom_path: "/feed.atom".to_string(),
        json_path: "/feed.json".to_string(),
        id: settings.output.id.clone(),
        title: settings.output.title.clone(),
        filter: EntryFilter::default(),
    }];
    for named in &settings.outputs {
        outputs.push(PublishedOutput {
            name: named.name.clone(),
            json_path: format!("{}.json", named.path.trim_end_matches(".atom")),
            atom_path: named.path.clone(),
            id: format!("tag:{authority},2026:output:{}", named.name),
            title: named.title.clone(),
            filter: named.filter.clone(),
        });
    }
    let mut regions: Vec<&str> = settings
        .feeds
        .iter()
        .map(|f| f.source.region.as_str())
        .collect();
    regions.sort();
    regions.dedup();
    for region in regions {
        let segment: String = url::form_urlencoded::byte_serialize(region.as_bytes()).collect();
        outputs.push(PublishedOutput {
            name: format!("region-{region}"),
            atom_path: format!("/feeds/region/{segment}.atom"),
            json_path: format!("/feeds/region/{segment}.json"),
            id: format!("tag:{authority},2026:region:{segment}"),
            title: format!("{}: {region}", settings.output.title),
            filter: EntryFilter {
                regions: vec![region.to_string()],
                ..EntryFilter::default()
            },
        });
    }
    Published {
        base_url: settings.output.base_url.clone(),
        id_authority: authority.clone(),
        hub: settings.output.websub_hub.as_ref().map(|u| u.to_string()),
        outputs,
        max_entries: settings.output.max_entries,
        cache_control: crate::http::cache::cache_control(settings.output.max_age),
        sources_title: format!("{}: sumber", settings.output.title),
        sources: settings
            .feeds
            .iter()
            .map(|f| crate::emit::opml::OpmlSource {
                name: f.source.name.clone(),
                url: f.source.url.clone(),
                region: f.source.region.clone(),
                tags: f.source.tags.clone(),
                site_link: None,
                title: None,
            })
            .collect(),
        reload_error: None,
    }
}

/// Renders the first page of the output called `name` (`feed` for the
/// default one, `region-REGION` for a region) as Atom, as it would be served now.
pub async fn render_output(
    settings: &Settings,
    store: &Store,
    name: &str,
) -> Result<Vec<u8>, AppError> {
    let published = published(settings);
    let output = published
        .outputs
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| AppError::UnknownOutput {
            name: name.to_string(),
            known: published
                .outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let entries = store
        .entries(&output.filter, Page::Newest, published.max_entries)
        .await?;
    Ok(crate::http::render(
        &published,
        output,
        Format::Atom,
        Page::Newest,
        None,
        &entries,
    ))
}

/// Polls every configured feed (or only `only`) once, now, at most
/// `settings.concurrency` at a time; returns one report per feed in config order.
pub async fn poll_once(
    settings: &Settings,
    store: &Store,
    only: Option<&str>,
) -> Result<Vec<PollReport>, AppError> {
    poll_once_with_progress(settings, store, only, &NoProgress).await
}

/// Told how a long command advances; the CLI draws a progress bar with it.
pub trait Progress: Send + Sync {
    /// The work has `total` steps (0 when unknown).
    fn start(&self, total: u64);
    /// One step is done; `label` names it (a feed, a batch).
    fn advance(&self, steps: u64, label: &str);
    fn finish(&self);
}

/// Progress nobody watches.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64, _: &str) {}
    fn finish(&self) {}
}

/// `poll_once`, telling `progress` as each feed is done.
pub async fn poll_once_with_progress(
    settings: &Settings,
    store: &Store,
    only: Option<&str>,
    progress: &dyn Progress,
) -> Result<Vec<PollReport>, AppError> {
    let feeds: Vec<_> = match only {
        Some(name) => vec![
            settings
                .feed(name)
                .ok_or_else(|| unknown_feed(settings, name))?,
        ],
        None => settings.feeds.iter().collect(),
    };
    progress.start(feeds.len() as u64);
    let poller = poller(settings, store)?.batching_not_modified();
    // One query for every feed's state instead of one per poll.
    let names: Vec<&str> = feeds.iter().map(|f| f.source.name.as_str()).collect();
    let mut states = store.feed_states(&names).await?;
    let mut polls = JoinSet::new();
    let mut reports = Vec::with_capacity(feeds.len());
    let mut record = |(index, report): (usize, PollReport)| {
        progress.advance(1, &format!("{}: {}", report.feed, report.outcome));
        reports.push((index, report));
    };
    for (index, feed) in feeds.into_iter().enumerate() {
        // At most `concurrency` polls exist at once: a task is only spawned
        // when one has ended, so ten thousand feeds do not hold ten thousand
        // poll futures in memory.
        while polls.len() >= settings.concurrency {
            let joined = polls.join_next().await.expect("the set is not empty");
            record(joined.expect("a poll task panicked"));
        }
        let poller = poller.clone();
        let source = feed.source.clone();
        let state = states.remove(&source.name);
        let next_due = feed
            .schedule
            .next_after(&chrono::Local::now())
            .map(|t| t.with_timezone(&chrono::Utc));
        polls.spawn(async move {
            let report = match state {
                Some(state) => {
                    poller
                        .poll_with_state(&source, state, next_due, PollMode::Now)
                        .await
                }
                None => poller.poll(&source, next_due, PollMode::Now).await,
            };
            (index, report)
        });
    }
    while let Some(joined) = polls.join_next().await {
        record(joined.expect("a poll task panicked"));
    }
    // A failure here leaves those feeds as they were before this run.
    poller.flush_not_modified().await?;
    reports.sort_by_key(|(index, _)| *index);
    progress.finish();
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}

/// Reads a feed from a file or an http(s) URL and explains, item by item, how
/// the current rules clean it. With `feed`, that feed's encoding, time zone,
/// clock offset and kind apply; otherwise a plain feed in the default time zone.
pub async fn inspect_source(
    settings: &Settings,
    source: &str,
    feed: Option<&str>,
) -> Result<String, AppError> {
    let feed = feed
        .map(|name| {
            settings
                .feed(name)
                .ok_or_else(|| unknown_feed(settings, name))
        })
        .transpose()?;
    let (body, base_url, content_type) =
        if source.starts_with("http://") || source.starts_with("https://") {
            match fetcher(settings)?
                .fetch(source, &crate::fetch::Validators::default())
                .await?
            {
                crate::fetch::FetchOutcome::Fetched(fetched) => {
                    (fetched.body, fetched.final_url, fetched.content_type)
                }
                crate::fetch::FetchOutcome::NotModified { .. } => {
                    (Vec::new(), source.to_string(), None)
                }
            }
        } else {
            let body = std::fs::read(source).map_err(|e| AppError::Read {
                path: source.to_string(),
                source: e,
            })?;
            // Relative links in a saved feed resolve against the feed's configured URL.
            let base = feed
                .map(|f| f.source.url.clone())
                .unwrap_or_else(|| "http://localhost/".to_string());
            (body, base, None)
        };
    let input = crate::parse::ParseInput {
        body: &body,
        base_url: &base_url,
        content_type: content_type.as_deref(),
        encoding_override: feed.and_then(|f| f.source.encoding.as_deref()),
        kind: feed.map(|f| f.source.kind).unwrap_or_default(),
        timezone: feed
            .map(|f| f.source.timezone)
            .unwrap_or_else(crate::dates::jakarta),
    };
    let mut parsed = crate::parse::parse_source(&input)?.feed;
    if let Some(feed) = feed {
        crate::poll::fix_dates(
            &mut parsed,
            &feed.source,
            chrono::Utc::now(),
            chrono::Duration::from_std(settings.future_margin).unwrap_or(chrono::Duration::MAX),
        );
    }
    Ok(crate::inspect::explain(&parsed, &settings.rules))
}

/// What a re-clean did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecleanReport {
    pub examined: usize,
    pub changed: usize,
}

/// Items re-cleaned per database round trip; bounds memory whatever the table size.
const RECLEAN_BATCH: usize = 500;

/// Re-applies the current rules to stored items (of `feed`, published since
/// `since`) from their raw form, without refetching. Keys and ids stay; an
/// item's `updated` changes only if its cleaned form did.
pub async fn reclean(
    settings: &Settings,
    store: &Store,
    feed: Option<&str>,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<RecleanReport, AppError> {
    reclean_with_progress(settings, store, feed, since, &NoProgress).await
}

/// `reclean`, telling `progress` after each batch.
pub async fn reclean_with_progress(
    settings: &Settings,
    store: &Store,
    feed: Option<&str>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    progress: &dyn Progress,
) -> Result<RecleanReport, AppError> {
    progress.start(0);
    if let Some(name) = feed {
        settings
            .feed(name)
            .ok_or_else(|| unknown_feed(settings, name))?;
    }
    let mut report = RecleanReport::default();
    let mut after = None;
    loop {
        let page = store
            .raw_items_page(feed, since, after, RECLEAN_BATCH)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key);
        let items: Vec<_> = page
            .iter()
            .filter_map(|record| {
                let url = url::Url::parse(&record.url).ok()?;
                Some(crate::poll::build_item(
                    &record.raw,
                    url,
                    record.key,
                    &settings.rules,
                ))
            })
            .collect();
        report.examined += page.len();
        report.changed += store.update_cleaned(&items, chrono::Utc::now()).await?;
        progress.advance(page.len() as u64, &format!("{} changed", report.changed));
    }
    progress.finish();
    Ok(report)
}

fn unknown_feed(settings: &Settings, name: &str) -> AppError {
    AppError::UnknownFeed {
        name: name.to_string(),
        known: settings
            .feeds
            .iter()
            .map(|f| f.source.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Applies the retention settings once: prunes old items (leaving tombstones)
/// and forgets tombstones older than twice the retention age (at least 30
/// days), by which time no feed still lists those items.
pub async fn prune(settings: &Settings, store: &Store) -> Result<u64, AppError> {
    let now = chrono::Utc::now();
    let age = settings.retention.max_age;
    let older_than = age
        .and_then(|a| chrono::Duration::from_std(a).ok())
        .map(|a| now - a);
    let keep_tombstones = age
        .map(|a| a.saturating_mul(2))
        .unwrap_or(std::time::Duration::from_secs(365 * 24 * 3600))
        .max(std::time::Duration::from_secs(30 * 24 * 3600));
    let forget_before =
        now - chrono::Duration::from_std(keep_tombstones).unwrap_or(chrono::Duration::MAX);
    Ok(store
        .prune(
            older_than,
            settings.retention.max_items_per_feed,
            forget_before,
        )
        .await?)
}

/// The combined Atom feed as it would be served now.
pub async fn render_atom(settings: &Settings, store: &Store) -> Result<Vec<u8>, AppError> {
    render_output(settings, store, "feed").await
}

/// Binds the configured HTTP address.
pub async fn bind(settings: &Settings) -> Result<TcpListener, AppError> {
    let addr = settings.http.listen;
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

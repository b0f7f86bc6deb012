//! Composition root: builds the store, fetcher and poller from settings, and runs
//! the daemon, one-shot polls and renders. The only module that wires everything.

use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Settings;
use crate::emit::{self, OutputInfo};
use crate::fetch::{FetchError, FetchLimits, Fetcher};
use crate::http::{self, AppState};
use crate::poll::{PollReport, Poller};
use crate::scheduler;
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
        max_body_bytes: settings.fetch.max_body_bytes,
    })?)
}

/// How the combined feed describes itself, from the output settings.
pub fn output_info(settings: &Settings) -> OutputInfo {
    let self_url = settings
        .output
        .base_url
        .join("feed.atom")
        .map(|u| u.to_string())
        .unwrap_or_else(|_| settings.output.base_url.to_string());
    // The JSON Feed names its own address in `feed_url`, as Atom does with `rel="self"`.
    let self_url_json = settings
        .output
        .base_url
        .join("feed.json")
        .ok()
        .map(|u| u.to_string());
    OutputInfo {
        id: settings.output.id.clone(),
        title: settings.output.title.clone(),
        self_url,
        self_url_json,
        id_authority: settings.output.id_authority.clone(),
    }
}

/// Polls every configured feed (or only `only`) once, now, at most
/// `settings.concurrency` at a time; returns one report per feed in config order.
pub async fn poll_once(
    settings: &Settings,
    store: &Store,
    only: Option<&str>,
) -> Result<Vec<PollReport>, AppError> {
    let feeds: Vec<_> = match only {
        Some(name) => vec![settings.feed(name).ok_or_else(|| {
            AppError::UnknownFeed {
                name: name.to_string(),
                known: settings
                    .feeds
                    .iter()
                    .map(|f| f.source.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?],
        None => settings.feeds.iter().collect(),
    };
    let poller = Poller::new(fetcher(settings)?, store.clone(), settings.rules.clone());
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));
    let mut polls = JoinSet::new();
    for (index, feed) in feeds.into_iter().enumerate() {
        let poller = poller.clone();
        let source = feed.source.clone();
        let next_due = feed
            .schedule
            .next_after(&chrono::Local::now())
            .map(|t| t.with_timezone(&chrono::Utc));
        let permits = permits.clone();
        polls.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (index, poller.poll(&source, next_due).await)
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = polls.join_next().await {
        reports.push(joined.expect("a poll task panicked"));
    }
    reports.sort_by_key(|(index, _)| *index);
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}

/// The combined Atom feed as it would be served now.
pub async fn render_atom(settings: &Settings, store: &Store) -> Result<Vec<u8>, AppError> {
    let entries = store.newest_entries(settings.output.max_entries).await?;
    Ok(emit::atom::render(&output_info(settings), &entries))
}

/// Runs the daemon on an already bound listener until `shutdown` is cancelled:
/// the scheduler polls feeds while the HTTP server serves the combined feed.
pub async fn run(
    settings: Settings,
    store: Store,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let poller = Poller::new(fetcher(&settings)?, store.clone(), settings.rules.clone());
    let state = AppState {
        store: store.clone(),
        output: Arc::new(output_info(&settings)),
        max_entries: settings.output.max_entries,
    };
    info!(
        feeds = settings.feeds.len(),
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "kabar running"
    );
    let scheduler = tokio::spawn(scheduler::run(
        poller,
        store,
        settings.feeds.clone(),
        settings.concurrency,
        shutdown.clone(),
    ));
    let served = http::serve(listener, state, shutdown.clone()).await;
    // The server only returns on shutdown or failure; either way stop polling.
    shutdown.cancel();
    let _ = scheduler.await;
    served.map_err(AppError::Serve)
}

/// Binds the configured HTTP address.
pub async fn bind(settings: &Settings) -> Result<TcpListener, AppError> {
    let addr = settings.http.listen;
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

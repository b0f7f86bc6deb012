//! One poll of one feed: fetch -> parse -> clean -> dedup -> store. The only place the stages meet.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::clean::{RuleBook, clean_item};
use crate::dedup::identify;
use crate::domain::{FeedSource, Item, ItemKey, ParsedFeed, RawItem};
use crate::fetch::{FetchOutcome, Fetcher};
use crate::parse::parse_feed;
use crate::store::{PollSuccess, Store};

/// What one poll of one feed came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub feed: String,
    pub outcome: PollOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// The feed was fetched and parsed and its items stored.
    Stored {
        /// Items in the feed.
        fetched: usize,
        new: usize,
        /// Items already stored (from this feed or another) or repeated within the feed.
        duplicate: usize,
        /// Items with neither a link nor a permalink guid, which cannot be keyed.
        skipped: usize,
    },
    /// The server answered 304 Not Modified.
    NotModified,
    /// The poll failed; nothing of it was stored. `kind` is the class recorded on the feed.
    Failed { kind: String, message: String },
}

impl fmt::Display for PollOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollOutcome::Stored {
                fetched,
                new,
                duplicate,
                skipped,
            } => {
                write!(f, "fetched {fetched}, new {new}, duplicates {duplicate}")?;
                if *skipped > 0 {
                    write!(f, ", skipped {skipped} without link")?;
                }
                Ok(())
            }
            PollOutcome::NotModified => write!(f, "not modified"),
            PollOutcome::Failed { kind, message } => write!(f, "error ({kind}): {message}"),
        }
    }
}

/// Polls feeds with one HTTP client and one store.
#[derive(Debug, Clone)]
pub struct Poller {
    fetcher: Fetcher,
    store: Store,
    rules: Arc<RuleBook>,
}

impl Poller {
    pub fn new(fetcher: Fetcher, store: Store, rules: Arc<RuleBook>) -> Poller {
        Poller {
            fetcher,
            store,
            rules,
        }
    }

    /// Polls `feed` once. Failures are recorded on the feed and reported, never raised:
    /// one broken feed must not stop the others.
    #[tracing::instrument(name = "poll", skip_all, fields(feed = %feed.name))]
    pub async fn poll(&self, feed: &FeedSource, next_due: Option<DateTime<Utc>>) -> PollReport {
        let outcome = self.poll_inner(feed, next_due).await;
        match &outcome {
            PollOutcome::Failed { kind, message } => {
                warn!(kind = %kind, "poll failed: {message}");
            }
            other => info!("{other}"),
        }
        PollReport {
            feed: feed.name.clone(),
            outcome,
        }
    }

    async fn poll_inner(&self, feed: &FeedSource, next_due: Option<DateTime<Utc>>) -> PollOutcome {
        let state = match self.store.feed_state(&feed.name).await {
            Ok(state) => state,
            Err(e) => return failed("store", e.to_string()),
        };
        let polled_at = Utc::now();
        let record_failure = |kind: &'static str, message: String| async move {
            if let Err(e) = self
                .store
                .record_failure(state.id, polled_at, kind, &message, next_due)
                .await
            {
                warn!("cannot record the failure on the feed: {e}");
            }
            failed(kind, message)
        };
        let fetched = match self.fetcher.fetch(&feed.url, &state.validators).await {
            Ok(FetchOutcome::NotModified) => {
                return match self
                    .store
                    .record_not_modified(state.id, polled_at, next_due)
                    .await
                {
                    Ok(()) => PollOutcome::NotModified,
                    Err(e) => failed("store", e.to_string()),
                };
            }
            Ok(FetchOutcome::Fetched(body)) => body,
            Err(e) => return record_failure(e.kind(), e.to_string()).await,
        };
        let parsed = match parse_feed(&fetched.body, &fetched.final_url) {
            Ok(parsed) => parsed,
            Err(e) => return record_failure("parse", format!("{}: {e}", feed.url)).await,
        };
        let fetched_count = parsed.items.len();
        let (items, skipped, repeated) = prepare_items(&parsed, &self.rules);
        let stored = self
            .store
            .record_success(
                state.id,
                PollSuccess {
                    polled_at,
                    meta: &parsed.meta,
                    items: &items,
                    validators: &fetched.validators,
                    next_due,
                },
            )
            .await;
        match stored {
            Ok(counts) => PollOutcome::Stored {
                fetched: fetched_count,
                new: counts.new,
                duplicate: counts.duplicate + repeated,
                skipped,
            },
            Err(e) => record_failure("store", e.to_string()).await,
        }
    }
}

/// Cleans one raw item into the item to store.
pub fn build_item(raw: &RawItem, url: url::Url, key: ItemKey, rules: &RuleBook) -> Item {
    let cleaned = clean_item(raw, &url, rules);
    Item {
        key,
        url: url.to_string(),
        title: cleaned.title,
        guid: raw.guid.clone(),
        published: raw.published,
        updated: raw.updated,
        summary: cleaned.summary,
        content_html: cleaned.content_html,
        authors: cleaned.authors,
        categories: raw.categories.clone(),
        image: raw.image.clone(),
        contributor: cleaned.metadata.contributor,
        source_note: cleaned.metadata.source_note,
        original_url: cleaned.metadata.original_url,
        dateline: cleaned.metadata.dateline,
        raw: raw.clone(),
    }
}

fn failed(kind: &str, message: String) -> PollOutcome {
    PollOutcome::Failed {
        kind: kind.to_string(),
        message,
    }
}

/// Cleans and keys every parsed item. Returns the items to store, how many
/// had no usable URL, and how many repeated a key already seen in this feed.
fn prepare_items(parsed: &ParsedFeed, rules: &RuleBook) -> (Vec<Item>, usize, usize) {
    let mut items = Vec::with_capacity(parsed.items.len());
    let mut seen = HashSet::new();
    let (mut skipped, mut repeated) = (0, 0);
    for raw in &parsed.items {
        let Some((url, key)) = identify(raw.link.as_deref(), raw.guid.as_deref()) else {
            skipped += 1;
            continue;
        };
        if !seen.insert(key) {
            repeated += 1;
            continue;
        }
        items.push(build_item(raw, url, key, rules));
    }
    (items, skipped, repeated)
}

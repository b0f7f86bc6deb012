//! One poll of one feed: fetch -> parse -> clean -> dedup -> store. The only place the stages meet.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use crate::clean::{RuleBook, clean_item};
use crate::dedup::identify;
use crate::domain::{ContentVersion, FeedSource, Item, ItemKey, ParsedFeed, RawItem};
use crate::fetch::{FetchError, FetchOutcome, Fetcher};
use crate::metrics::Metrics;
use crate::pacing::{Failure, PacingPolicy};
use crate::parse::{ParseInput, parse_source};
use crate::politeness::HostGate;
use crate::store::{FailureRecord, FeedState, NotModifiedRecord, PollSuccess, Store};

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
    /// Not polled: the feed is disabled until its config changes.
    Disabled { reason: String },
    /// Not polled: backoff, Retry-After or the publisher's hint allow no poll before `until`.
    Deferred { until: DateTime<Utc> },
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
            PollOutcome::Disabled { reason } => write!(f, "disabled: {reason}"),
            PollOutcome::Deferred { until } => write!(f, "deferred until {until}"),
        }
    }
}

/// What the fetch of one poll cost, for metrics.
#[derive(Debug, Default)]
struct FetchStats {
    seconds: Option<f64>,
    bytes: u64,
    repairs: u64,
}

/// Whether a poll waits for the feed's backoff and publisher hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// A scheduled tick: skipped while the feed is not yet allowed.
    Scheduled,
    /// An admin asked for it now (`kabar poll`): only disabled feeds are skipped.
    Now,
}

/// What every poll shares besides the client and the store.
#[derive(Debug, Clone)]
pub struct PollRules {
    pub rules: Arc<RuleBook>,
    pub metrics: Metrics,
    /// Bumped when a poll stores new items, so cached outputs are re-rendered.
    pub version: ContentVersion,
    /// Feeds whose last poll failed, for the `feeds_failing` gauge.
    pub failing: Arc<std::sync::Mutex<HashSet<String>>>,
    /// How far ahead of now an item's date may be before it is taken as wrong.
    pub future_margin: std::time::Duration,
    pub pacing: PacingPolicy,
    pub hosts: HostGate,
}

/// Polls feeds with one HTTP client and one store.
#[derive(Debug, Clone)]
pub struct Poller {
    fetcher: Fetcher,
    store: Store,
    shared: PollRules,
    /// When set, 304s are collected here and written together by
    /// [`flush_not_modified`](Self::flush_not_modified) instead of one
    /// commit each: a warm cycle of thousands of feeds is mostly 304s.
    not_modified: Option<Arc<std::sync::Mutex<Vec<NotModifiedRecord>>>>,
}

impl Poller {
    pub fn new(fetcher: Fetcher, store: Store, shared: PollRules) -> Poller {
        Poller {
            fetcher,
            store,
            shared,
            not_modified: None,
        }
    }

    /// This poller, collecting 304s for one write at the end (`kabar poll`).
    /// If that write never happens, the feeds simply keep their previous
    /// poll times; nothing stored is lost.
    pub fn batching_not_modified(mut self) -> Poller {
        self.not_modified = Some(Arc::default());
        self
    }

    /// Writes the 304s collected so far in one statement; returns how many.
    pub async fn flush_not_modified(&self) -> Result<usize, crate::store::StoreError> {
        let Some(batch) = &self.not_modified else {
            return Ok(0);
        };
        let records = std::mem::take(&mut *batch.lock().expect("304 batch lock poisoned"));
        self.store.record_not_modified(&records).await?;
        Ok(records.len())
    }

    /// The per-host gate every poll of this poller goes through.
    pub fn host_gate(&self) -> &HostGate {
        &self.shared.hosts
    }

    /// Polls `feed` once. Failures are recorded on the feed and reported, never raised:
    /// one broken feed must not stop the others.
    #[tracing::instrument(name = "poll", skip_all, fields(feed = %feed.name))]
    pub async fn poll(
        &self,
        feed: &FeedSource,
        next_due: Option<DateTime<Utc>>,
        mode: PollMode,
    ) -> PollReport {
        self.poll_from(feed, None, next_due, mode).await
    }

    /// [`poll`](Self::poll) with the feed's stored state already read, e.g.
    /// by [`Store::feed_states`] for many feeds in one query.
    #[tracing::instrument(name = "poll", skip_all, fields(feed = %feed.name))]
    pub async fn poll_with_state(
        &self,
        feed: &FeedSource,
        state: FeedState,
        next_due: Option<DateTime<Utc>>,
        mode: PollMode,
    ) -> PollReport {
        self.poll_from(feed, Some(state), next_due, mode).await
    }

    async fn poll_from(
        &self,
        feed: &FeedSource,
        state: Option<FeedState>,
        next_due: Option<DateTime<Utc>>,
        mode: PollMode,
    ) -> PollReport {
        let mut stats = FetchStats::default();
        let outcome = self
            .poll_inner(feed, state, next_due, mode, &mut stats)
            .await;
        self.record_metrics(feed, &outcome, &stats);
        match &outcome {
            PollOutcome::Failed { kind, message } => {
                warn!(kind = %kind, "poll failed: {message}");
            }
            PollOutcome::Deferred { .. } => debug!("{outcome}"),
            other => info!("{other}"),
        }
        PollReport {
            feed: feed.name.clone(),
            outcome,
        }
    }

    fn record_metrics(&self, feed: &FeedSource, outcome: &PollOutcome, stats: &FetchStats) {
        let (label, new, duplicate) = match outcome {
            PollOutcome::Stored { new, duplicate, .. } => ("stored", *new, *duplicate),
            PollOutcome::NotModified => ("not_modified", 0, 0),
            PollOutcome::Failed { .. } => ("failed", 0, 0),
            PollOutcome::Disabled { .. } | PollOutcome::Deferred { .. } => ("skipped", 0, 0),
        };
        let metrics = &self.shared.metrics;
        metrics.record_poll(
            &feed.name,
            label,
            stats.seconds,
            stats.bytes,
            new as u64,
            duplicate as u64,
        );
        if stats.repairs > 0 {
            metrics.record_repairs(&feed.name, stats.repairs);
        }
        if matches!(label, "stored" | "not_modified") {
            metrics.set_last_success(&feed.name, Utc::now().timestamp());
        }
        if new > 0 {
            self.shared.version.bump();
        }
        let mut failing = self
            .shared
            .failing
            .lock()
            .expect("failing set lock poisoned");
        match label {
            "failed" => {
                failing.insert(feed.name.clone());
            }
            "stored" | "not_modified" => {
                failing.remove(&feed.name);
            }
            _ => {}
        }
        metrics.set_feeds_failing(failing.len());
    }

    async fn poll_inner(
        &self,
        feed: &FeedSource,
        state: Option<FeedState>,
        next_due: Option<DateTime<Utc>>,
        mode: PollMode,
        stats: &mut FetchStats,
    ) -> PollOutcome {
        let state = match state {
            Some(state) => state,
            None => match self.store.feed_state(&feed.name).await {
                Ok(state) => state,
                Err(e) => return failed("store", e.to_string()),
            },
        };
        if let Some(reason) = &state.disabled_reason {
            return PollOutcome::Disabled {
                reason: reason.clone(),
            };
        }
        let deferred = state.not_before.filter(|t| *t > Utc::now());
        if let Some(until) = deferred.filter(|_| mode == PollMode::Scheduled) {
            if let Err(e) = self.store.record_skipped_tick(state.id).await {
                warn!("cannot count the skipped tick: {e}");
            }
            return PollOutcome::Deferred { until };
        }
        let fetched = {
            let _pass = self.shared.hosts.enter(&feed.host_key()).await;
            let started = std::time::Instant::now();
            let result = self.fetcher.fetch(&feed.url, &state.validators).await;
            stats.seconds = Some(started.elapsed().as_secs_f64());
            result
        };
        let polled_at = Utc::now();
        let fetched = match fetched {
            Ok(FetchOutcome::NotModified { cache_hint }) => {
                let not_before = self.shared.pacing.after_success(&[cache_hint], polled_at);
                let record = NotModifiedRecord {
                    feed_id: state.id,
                    polled_at,
                    next_due,
                    not_before,
                };
                if let Some(batch) = &self.not_modified {
                    batch.lock().expect("304 batch lock poisoned").push(record);
                    return PollOutcome::NotModified;
                }
                return match self.store.record_not_modified(&[record]).await {
                    Ok(()) => PollOutcome::NotModified,
                    Err(e) => failed("store", e.to_string()),
                };
            }
            Ok(FetchOutcome::Fetched(body)) => {
                stats.bytes = body.body.len() as u64;
                body
            }
            Err(e) => {
                let (status, retry_after) = match &e {
                    FetchError::Status {
                        status,
                        retry_after,
                        ..
                    } => (Some(*status), *retry_after),
                    _ => (None, None),
                };
                let failure = Failure {
                    kind: e.kind(),
                    status,
                    retry_after,
                };
                return self
                    .fail(&state, feed, polled_at, next_due, failure, e.to_string())
                    .await;
            }
        };
        let input = ParseInput {
            body: &fetched.body,
            base_url: &fetched.final_url,
            content_type: fetched.content_type.as_deref(),
            encoding_override: feed.encoding.as_deref(),
            kind: feed.kind,
            timezone: feed.timezone,
        };
        let output = match parse_source(&input) {
            Ok(output) => output,
            Err(e) => {
                let failure = Failure {
                    kind: e.kind(),
                    status: None,
                    retry_after: None,
                };
                let message = format!("{}: {e}", feed.url);
                return self
                    .fail(&state, feed, polled_at, next_due, failure, message)
                    .await;
            }
        };
        stats.repairs = output.repairs.total() as u64;
        if !output.repairs.is_empty() {
            info!(
                ampersands = output.repairs.ampersands,
                forbidden_chars = output.repairs.forbidden_chars,
                entities = output.repairs.entities,
                "repaired broken XML before parsing"
            );
        }
        if output.replaced_invalid_bytes {
            info!(charset = %output.charset, "replaced bytes invalid in the feed's charset");
        }
        let mut parsed = output.feed;
        let margin =
            chrono::Duration::from_std(self.shared.future_margin).unwrap_or(chrono::Duration::MAX);
        fix_dates(&mut parsed, feed, polled_at, margin);
        let fetched_count = parsed.items.len();
        let (items, skipped, repeated) = prepare_items(&parsed, &self.shared.rules);
        let not_before = self
            .shared
            .pacing
            .after_success(&[fetched.cache_hint, parsed.meta.refresh_hint], polled_at);
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
                    not_before,
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
            Err(e) => {
                let failure = Failure {
                    kind: "store",
                    status: None,
                    retry_after: None,
                };
                self.fail(&state, feed, polled_at, next_due, failure, e.to_string())
                    .await
            }
        }
    }

    /// Records a failure with its backoff (or disabling) and reports it.
    async fn fail(
        &self,
        state: &FeedState,
        feed: &FeedSource,
        polled_at: DateTime<Utc>,
        next_due: Option<DateTime<Utc>>,
        failure: Failure<'_>,
        message: String,
    ) -> PollOutcome {
        let consecutive = u32::try_from(state.consecutive_failures).unwrap_or(0) + 1;
        let failing_since = state.failing_since.unwrap_or(polled_at);
        let next = self.shared.pacing.after_failure(
            &feed.name,
            consecutive,
            failing_since,
            polled_at,
            failure,
        );
        if let Some(reason) = &next.disable {
            warn!("feed disabled: {reason}");
        }
        let record = FailureRecord {
            polled_at,
            kind: failure.kind,
            message: &message,
            next_due,
            not_before: Some(next.not_before),
            disable: next.disable.as_deref(),
        };
        if let Err(e) = self.store.record_failure(state.id, &record).await {
            warn!("cannot record the failure on the feed: {e}");
        }
        failed(failure.kind, message)
    }
}

/// Applies the feed's clock offset to every date, then clamps dates further in
/// the future than `margin` to `now` (and says so): a wrong date must not pin an
/// item to the top of the combined feed.
pub fn fix_dates(
    parsed: &mut ParsedFeed,
    feed: &FeedSource,
    now: DateTime<Utc>,
    margin: chrono::Duration,
) {
    let limit = now
        .checked_add_signed(margin)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    for item in &mut parsed.items {
        for date in [&mut item.published, &mut item.updated]
            .into_iter()
            .flatten()
        {
            *date = date.checked_add_signed(feed.clock_offset).unwrap_or(*date);
            if *date > limit {
                warn!(
                    item = item.link.as_deref().unwrap_or("(no link)"),
                    claimed = %date,
                    "item dated in the future; using the time it was first seen"
                );
                *date = now;
            }
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

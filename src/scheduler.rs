//! Runs every feed on its schedule, sharing the work with any other kabar
//! instance on the same database: each second it claims due feeds with a
//! lease, polls them within a global limit, renews the leases of polls in
//! flight, and on stop drains polls up to a deadline and gives its leases up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::FeedSettings;
use crate::pacing;
use crate::poll::{PollMode, Poller};
use crate::store::{Claim, Store};

/// How the scheduler runs; built from settings by the caller.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub concurrency: usize,
    pub tick_jitter: Duration,
    /// After `stop` is cancelled, polls in flight get this long to finish;
    /// the rest are cancelled, and their transactions roll back.
    pub drain: Duration,
    /// How long a claim holds without renewal (`defaults.lease`).
    pub lease: Duration,
    /// This instance's name on its leases; unique per process.
    pub owner: String,
}

/// The scheduler's loop writes the time here every second; the watchdog only
/// tells systemd "alive" while this moves.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<std::sync::atomic::AtomicI64>);

impl Heartbeat {
    pub fn beat(&self) {
        self.0
            .store(Utc::now().timestamp(), std::sync::atomic::Ordering::Release);
    }

    /// Seconds since the last beat.
    pub fn age(&self) -> i64 {
        Utc::now().timestamp() - self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A name for this process's leases: host name, process id and start time,
/// so that `kabar status` and the database say which instance holds what.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    let started = Utc::now().timestamp_micros() % 1_000_000;
    format!("{host}:{}:{started:06}", std::process::id())
}

/// The next tick of `feed`'s schedule after now, spread by the tick jitter.
/// Every instance computes the same time for the same feed and tick.
fn next_due(feed: &FeedSettings, tick_jitter: Duration) -> Option<DateTime<Utc>> {
    // Schedules are evaluated in the machine's local time, as crontab does.
    let tick = feed.schedule.next_after(&Local::now())?.with_timezone(&Utc);
    let jitter = pacing::tick_jitter(&feed.source.name, tick, tick_jitter);
    Some(tick + chrono::Duration::from_std(jitter).unwrap_or_default())
}

/// Polls in flight: feed id -> host, for renewing their leases.
type InFlight = Arc<Mutex<HashMap<i64, String>>>;

/// Polls `feeds` on their schedules until `stop` is cancelled, then drains.
pub async fn run(
    poller: Poller,
    store: Store,
    feeds: Vec<FeedSettings>,
    options: SchedulerOptions,
    heartbeat: Heartbeat,
    stop: CancellationToken,
) {
    let feeds: Arc<HashMap<String, FeedSettings>> = Arc::new(
        feeds
            .into_iter()
            .map(|f| (f.source.name.clone(), f))
            .collect(),
    );
    let names: Vec<String> = feeds.keys().cloned().collect();
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let in_flight: InFlight = Arc::default();
    let mut polls = JoinSet::new();
    let mut planned = false;
    let mut last_renewal = tokio::time::Instant::now();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(joined) = polls.join_next(), if !polls.is_empty() => {
                if let Err(e) = joined {
                    warn!("a poll task ended abnormally: {e}");
                }
            }
            _ = second.tick() => {
                heartbeat.beat();
                if !planned {
                    planned = plan(&store, &feeds, options.tick_jitter).await;
                }
                if last_renewal.elapsed() >= options.lease / 3 {
                    renew(&store, &options, &in_flight).await;
                    last_renewal = tokio::time::Instant::now();
                }
                let free = permits.available_permits();
                if !planned || free == 0 {
                    continue;
                }
                let claims = match store.claim_due(&options.owner, &names, free, options.lease).await {
                    Ok(claims) => claims,
                    Err(e) => {
                        warn!("cannot claim due feeds: {e}");
                        continue;
                    }
                };
                for claim in claims {
                    let Some(feed) = feeds.get(&claim.name).cloned() else { continue };
                    let permit = permits
                        .clone()
                        .try_acquire_owned()
                        .expect("no more claims than free permits");
                    in_flight
                        .lock()
                        .expect("in-flight lock poisoned")
                        .insert(claim.feed_id, claim.host.clone());
                    polls.spawn(poll_claimed(
                        poller.clone(),
                        store.clone(),
                        feed,
                        claim,
                        options.clone(),
                        in_flight.clone(),
                        permit,
                    ));
                }
            }
        }
    }
    let drained = tokio::time::timeout(options.drain, async {
        while polls.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            polls = polls.len(),
            "polls still running after the drain deadline were cancelled; nothing of them was stored"
        );
        polls.abort_all();
        while polls.join_next().await.is_some() {}
    }
    // Cancelled polls' feeds stay due, for another instance or the next start.
    if let Err(e) = store.release_all_leases(&options.owner).await {
        warn!("cannot give up leases; other instances take them over when they expire: {e}");
    }
    info!("scheduler stopped");
}

/// Records every feed's next due time; false when the database refused.
async fn plan(store: &Store, feeds: &HashMap<String, FeedSettings>, tick_jitter: Duration) -> bool {
    let plans: Vec<(String, DateTime<Utc>)> = feeds
        .values()
        .filter_map(|feed| match next_due(feed, tick_jitter) {
            Some(due) => Some((feed.source.name.clone(), due)),
            None => {
                warn!(feed = %feed.source.name, schedule = feed.schedule.expression(), "schedule never fires again");
                None
            }
        })
        .collect();
    match store.plan_due(&plans).await {
        Ok(()) => true,
        Err(e) => {
            warn!("cannot plan due times, retrying: {e}");
            false
        }
    }
}

async fn renew(store: &Store, options: &SchedulerOptions, in_flight: &InFlight) {
    let (ids, hosts): (Vec<i64>, Vec<String>) = in_flight
        .lock()
        .expect("in-flight lock poisoned")
        .iter()
        .map(|(id, host)| (*id, host.clone()))
        .unzip();
    if ids.is_empty() {
        return;
    }
    if let Err(e) = store
        .renew_leases(&options.owner, &ids, &hosts, options.lease)
        .await
    {
        warn!("cannot renew leases of polls in flight: {e}");
    }
}

async fn poll_claimed(
    poller: Poller,
    store: Store,
    feed: FeedSettings,
    claim: Claim,
    options: SchedulerOptions,
    in_flight: InFlight,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    if claim.host_changed_hands {
        debug!(host = %claim.host, "host taken over from another instance");
        poller.host_gate().quiet_from_now(&claim.host);
    }
    let following = next_due(&feed, options.tick_jitter);
    // A poll in flight is allowed to finish: its transaction is all or nothing.
    poller
        .poll(&feed.source, following, PollMode::Scheduled)
        .await;
    if let Err(e) = store
        .release_lease(&options.owner, claim.feed_id, following)
        .await
    {
        warn!(feed = %claim.name, "cannot release the feed's lease; it expires on its own: {e}");
    }
    in_flight
        .lock()
        .expect("in-flight lock poisoned")
        .remove(&claim.feed_id);
}

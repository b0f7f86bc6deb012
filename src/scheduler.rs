//! Runs every feed on its schedule, sharing the work with any other kabar
//! instance on the same database: each second it claims due feeds with a
//! lease, polls them within a global limit, renews the leases of polls in
//! flight, and on stop drains polls up to a deadline and gives its leases up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
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
    let host = host_name().unwrap_or_else(|| "localhost".to_string());
    let started = Utc::now().timestamp_micros() % 1_000_000;
    format!("{host}:{}:{started:06}", std::process::id())
}

/// The machine's host name, from gethostname(2): the systemd unit's
/// `ProcSubset=pid` hides `/proc/sys/kernel/hostname`.
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the call;
    // gethostname writes at most that many bytes.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// The next tick of `feed`'s schedule after `after`, spread by the tick
/// jitter. Every instance computes the same time for the same feed and tick.
fn next_due(
    feed: &FeedSettings,
    after: DateTime<Utc>,
    tick_jitter: Duration,
) -> Option<DateTime<Utc>> {
    // Schedules are evaluated in the machine's local time, as crontab does.
    let tick = feed
        .schedule
        .next_after(&after.with_timezone(&Local))?
        .with_timezone(&Utc);
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
    let feeds: HashMap<String, FeedSettings> = feeds
        .into_iter()
        .map(|f| (f.source.name.clone(), f))
        .collect();
    let names: Vec<String> = feeds.keys().cloned().collect();
    let in_flight: InFlight = Arc::default();
    let mut polls = JoinSet::new();
    let mut planned = false;
    // Its own task, so that renewals keep their rhythm while this loop waits
    // on the database, and go on while polls drain after `stop`.
    let renewals_stop = CancellationToken::new();
    let renewals = tokio::spawn(renew_leases(
        store.clone(),
        options.clone(),
        in_flight.clone(),
        renewals_stop.clone(),
    ));
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
                // Finished polls are joined as they end (the branch above), so
                // the set holds exactly the polls in flight.
                let free = options.concurrency.saturating_sub(polls.len());
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
                    let tracked = InFlightPoll::track(&in_flight, &claim);
                    polls.spawn(poll_claimed(
                        poller.clone(),
                        store.clone(),
                        feed,
                        claim,
                        options.clone(),
                        tracked,
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
    renewals_stop.cancel();
    if let Err(e) = renewals.await {
        warn!("the lease renewal task ended abnormally: {e}");
    }
    // Cancelled polls' feeds stay due, for another instance or the next start.
    if let Err(e) = store.release_all_leases(&options.owner).await {
        warn!("cannot give up leases; other instances take them over when they expire: {e}");
    }
    info!("scheduler stopped");
}

/// Records every feed's next due time; false when the database refused.
async fn plan(store: &Store, feeds: &HashMap<String, FeedSettings>, tick_jitter: Duration) -> bool {
    let now = Utc::now();
    let mut plans: Vec<(String, DateTime<Utc>)> = feeds
        .values()
        .filter_map(|feed| match next_due(feed, now, tick_jitter) {
            Some(due) => Some((feed.source.name.clone(), due)),
            None => {
                warn!(feed = %feed.source.name, schedule = feed.schedule.expression(), "schedule never fires again");
                None
            }
        })
        .collect();
    // Rows are locked in one order by every instance: no deadlock between them.
    plans.sort();
    match store.plan_due(&plans).await {
        Ok(()) => true,
        Err(e) => {
            warn!("cannot plan due times, retrying: {e}");
            false
        }
    }
}

/// Renews the leases of polls in flight every third of the lease, until
/// `stop`, and says when one was lost (renewed too late, so another instance
/// may have claimed the feed).
async fn renew_leases(
    store: Store,
    options: SchedulerOptions,
    in_flight: InFlight,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(options.lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let (ids, hosts): (Vec<i64>, Vec<String>) = in_flight
            .lock()
            .expect("in-flight lock poisoned")
            .iter()
            .map(|(id, host)| (*id, host.clone()))
            .unzip();
        if ids.is_empty() {
            continue;
        }
        match store
            .renew_leases(&options.owner, &ids, &hosts, options.lease)
            .await
        {
            Ok(renewed) if renewed.len() < ids.len() => warn!(
                lost = ids.len() - renewed.len(),
                "leases of polls in flight ran out before renewal; another instance may poll those feeds too (is the database slow, or defaults.lease too short?)"
            ),
            Ok(_) => {}
            Err(e) => warn!("cannot renew leases of polls in flight: {e}"),
        }
    }
}

/// A claimed feed's entry in the in-flight table, removed however its poll
/// ends (even by a panic), so its lease is never renewed for ever.
struct InFlightPoll {
    in_flight: InFlight,
    feed_id: i64,
}

impl InFlightPoll {
    fn track(in_flight: &InFlight, claim: &Claim) -> InFlightPoll {
        in_flight
            .lock()
            .expect("in-flight lock poisoned")
            .insert(claim.feed_id, claim.host.clone());
        InFlightPoll {
            in_flight: in_flight.clone(),
            feed_id: claim.feed_id,
        }
    }
}

impl Drop for InFlightPoll {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&self.feed_id);
        }
    }
}

async fn poll_claimed(
    poller: Poller,
    store: Store,
    feed: FeedSettings,
    claim: Claim,
    options: SchedulerOptions,
    tracked: InFlightPoll,
) {
    if claim.host_changed_hands {
        debug!(host = %claim.host, "host taken over from another instance");
        poller.host_gate().quiet_from_now(&claim.host);
    }
    // After the due time as the database saw it, not only this machine's
    // clock: a clock running behind must not plan the same tick again.
    let after = claim.due.map_or(Utc::now(), |due| due.max(Utc::now()));
    let following = next_due(&feed, after, options.tick_jitter);
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
    drop(tracked);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_carry_the_host_name_and_process_id() {
        let name = instance_name();
        let parts: Vec<&str> = name.split(':').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert_eq!(Some(parts[0].to_string()), host_name());
        assert_eq!(parts[1], std::process::id().to_string());
    }
}

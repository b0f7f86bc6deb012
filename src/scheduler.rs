//! Runs every feed on its cron schedule: one loop per feed (so polls of a feed never
//! overlap), a global limit on polls in flight, and a drain deadline on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{Local, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::FeedSettings;
use crate::pacing;
use crate::poll::{PollMode, Poller};
use crate::store::Store;

/// How the scheduler runs; built from settings by the caller.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub concurrency: usize,
    pub tick_jitter: Duration,
    /// After `stop` is cancelled, polls in flight get this long to finish;
    /// the rest are cancelled, and their transactions roll back.
    pub drain: Duration,
}

/// The scheduler's loop writes the time here every second; the watchdog only
/// tells systemd "alive" while this moves.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<AtomicI64>);

impl Heartbeat {
    pub fn beat(&self) {
        self.0.store(Utc::now().timestamp(), Ordering::Release);
    }

    /// Seconds since the last beat.
    pub fn age(&self) -> i64 {
        Utc::now().timestamp() - self.0.load(Ordering::Acquire)
    }
}

/// Polls `feeds` on their schedules until `stop` is cancelled, then drains.
pub async fn run(
    poller: Poller,
    store: Store,
    feeds: Vec<FeedSettings>,
    options: SchedulerOptions,
    heartbeat: Heartbeat,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let mut loops = JoinSet::new();
    for feed in feeds {
        loops.spawn(feed_loop(
            poller.clone(),
            store.clone(),
            feed,
            permits.clone(),
            options.tick_jitter,
            stop.clone(),
        ));
    }
    let mut beat = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = beat.tick() => heartbeat.beat(),
            joined = loops.join_next() => match joined {
                Some(Err(e)) => warn!("a feed loop ended abnormally: {e}"),
                Some(Ok(())) => {}
                None => {
                    // No feeds left to run; keep beating until told to stop.
                    stop.cancelled().await;
                    break;
                }
            },
        }
    }
    let drained = tokio::time::timeout(options.drain, async {
        while loops.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            polls = loops.len(),
            "polls still running after the drain deadline were cancelled; nothing of them was stored"
        );
        loops.abort_all();
        while loops.join_next().await.is_some() {}
    } else {
        info!("scheduler stopped");
    }
}

async fn feed_loop(
    poller: Poller,
    store: Store,
    feed: FeedSettings,
    permits: Arc<Semaphore>,
    tick_jitter: Duration,
    stop: CancellationToken,
) {
    let name = feed.source.name.clone();
    let Ok(state) = store.feed_state(&name).await else {
        warn!(feed = %name, "feed is not in the database; not scheduling it");
        return;
    };
    loop {
        // Schedules are evaluated in the machine's local time, as crontab does.
        let Some(next) = feed.schedule.next_after(&Local::now()) else {
            warn!(feed = %name, schedule = feed.schedule.expression(), "schedule never fires again");
            return;
        };
        let next_utc = next.with_timezone(&Utc);
        if let Err(e) = store.set_next_due(state.id, Some(next_utc)).await {
            warn!(feed = %name, "cannot record next due time: {e}");
        }
        debug!(feed = %name, next = %next_utc, "scheduled");
        // Feeds sharing a schedule start spread over the jitter window, not all in one second.
        let wait = (next_utc - Utc::now()).to_std().unwrap_or_default()
            + pacing::tick_jitter(&name, next_utc, tick_jitter);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let following = feed
            .schedule
            .next_after(&Local::now())
            .map(|t| t.with_timezone(&Utc));
        // A poll in flight is allowed to finish: its transaction is all or nothing.
        poller
            .poll(&feed.source, following, PollMode::Scheduled)
            .await;
        drop(permit);
    }
}

//! Runs every feed on its cron schedule: one loop per feed (so polls of a feed never
//! overlap) and a global limit on polls in flight.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Local, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::FeedSettings;
use crate::pacing;
use crate::poll::{PollMode, Poller};
use crate::store::Store;

/// Polls `feeds` on their schedules until `shutdown` is cancelled, then waits
/// for the polls in flight to finish.
pub async fn run(
    poller: Poller,
    store: Store,
    feeds: Vec<FeedSettings>,
    concurrency: usize,
    tick_jitter: Duration,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut loops = JoinSet::new();
    for feed in feeds {
        loops.spawn(feed_loop(
            poller.clone(),
            store.clone(),
            feed,
            permits.clone(),
            tick_jitter,
            shutdown.clone(),
        ));
    }
    while let Some(result) = loops.join_next().await {
        if let Err(e) = result {
            warn!("a feed loop ended abnormally: {e}");
        }
    }
}

async fn feed_loop(
    poller: Poller,
    store: Store,
    feed: FeedSettings,
    permits: Arc<Semaphore>,
    tick_jitter: Duration,
    shutdown: CancellationToken,
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
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
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

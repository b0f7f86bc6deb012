//! The long-running service: scheduler and HTTP server together, systemd
//! readiness and watchdog, reload on request, and a graceful shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::app::{self, AppError, Observers};
use crate::config::{self, Settings};
use crate::http::{self, AppState};
use crate::notify;
use crate::scheduler::{self, Heartbeat, SchedulerOptions};
use crate::store::Store;

/// How the daemon is steered from outside.
#[derive(Debug, Clone)]
pub struct Controls {
    /// Cancelled on SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
    /// Notified on SIGHUP.
    pub reload: Arc<Notify>,
    /// The config file to re-read on reload.
    pub config_path: Option<PathBuf>,
}

impl Controls {
    /// Controls with no reload source, for tests and embedding.
    pub fn new(shutdown: CancellationToken) -> Controls {
        Controls {
            shutdown,
            reload: Arc::new(Notify::new()),
            config_path: None,
        }
    }
}

/// A running scheduler and the token that stops it.
struct RunningScheduler {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What stays the same across this process's schedulers (one per reload).
struct Instance {
    heartbeat: Heartbeat,
    /// The name on this process's leases.
    owner: String,
}

fn start_scheduler(
    settings: &Settings,
    store: &Store,
    observers: &Observers,
    instance: &Instance,
) -> Result<RunningScheduler, AppError> {
    let poller = app::poller_with(settings, store, observers)?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(scheduler::run(
        poller,
        store.clone(),
        settings.feeds.clone(),
        SchedulerOptions {
            concurrency: settings.concurrency,
            tick_jitter: settings.tick_jitter,
            drain: settings.shutdown_timeout,
            lease: settings.lease,
            owner: instance.owner.clone(),
        },
        instance.heartbeat.clone(),
        stop.clone(),
    ));
    Ok(RunningScheduler { stop, task })
}

impl RunningScheduler {
    /// Stops starting polls and waits for those in flight (up to the drain deadline).
    async fn stop(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            warn!("the scheduler ended abnormally: {e}");
        }
    }
}

/// Runs the daemon on an already bound listener (migrations already applied)
/// until `controls.shutdown` is cancelled.
pub async fn run(
    settings: Settings,
    store: Store,
    listener: TcpListener,
    controls: Controls,
) -> Result<(), AppError> {
    let observers = Observers::default();
    let heartbeat = Heartbeat::default();
    heartbeat.beat();
    let state = AppState::new(
        store.clone(),
        app::published(&settings),
        observers.version.clone(),
        observers.metrics.clone(),
    );
    let http_stop = CancellationToken::new();
    let listen = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = tokio::spawn(http::serve(listener, state.clone(), http_stop.clone()));
    let instance = Instance {
        heartbeat: heartbeat.clone(),
        owner: scheduler::instance_name(),
    };
    let mut scheduler = start_scheduler(&settings, &store, &observers, &instance)?;
    let watchdog = tokio::spawn(watchdog(heartbeat.clone(), controls.shutdown.clone()));
    let hub_pinger = tokio::spawn(ping_hub(state.clone(), controls.shutdown.clone()));
    // Items stored by another process (kabar poll, another instance) stale our renders too.
    let listener = tokio::spawn({
        let (store, version) = (store.clone(), observers.version.clone());
        async move { store.listen_for_changes(move || version.bump()).await }
    });
    // Reloads hand the pruner their settings, so retention changes apply at once.
    let (retention_tx, retention_rx) = tokio::sync::watch::channel(settings.clone());
    let pruner = tokio::spawn(prune_daily(
        retention_rx,
        store.clone(),
        observers.version.clone(),
        controls.shutdown.clone(),
    ));
    info!(feeds = settings.feeds.len(), listen = %listen, instance = %instance.owner, "kabar running");
    // A note from an earlier run no longer describes this config.
    note_reload(&store, None).await;
    notify::ready();
    report_status(&settings, &listen);

    let mut settings = settings;
    loop {
        tokio::select! {
            _ = controls.shutdown.cancelled() => break,
            _ = controls.reload.notified() => {
                let Some(path) = &controls.config_path else {
                    warn!("reload requested, but no config file is known; ignoring");
                    continue;
                };
                notify::reloading();
                match config::load(path) {
                    Err(e) => {
                        error!("reload refused, the running config stays: {e}");
                        state.set_reload_error(Some(e.to_string()));
                        note_reload(&store, Some(&e.to_string())).await;
                    }
                    Ok(new) => {
                        scheduler = reload(&settings, new.clone(), &store, &state, &observers, &instance, scheduler).await?;
                        retention_tx.send_replace(new.clone());
                        report_status(&new, &listen);
                        settings = new;
                    }
                }
                notify::ready();
            }
        }
    }

    notify::stopping();
    info!("stopping: letting polls in flight finish");
    scheduler.stop().await;
    http_stop.cancel();
    watchdog.abort();
    pruner.abort();
    hub_pinger.abort();
    listener.abort();
    match server.await {
        Ok(result) => result.map_err(AppError::Serve),
        Err(e) => {
            error!("the HTTP server ended abnormally: {e}");
            Ok(())
        }
    }
}

/// Applies a new, valid config: feeds added, removed or rescheduled, rules
/// and output settings changed. Polls in flight finish first; the HTTP
/// listener keeps serving throughout.
async fn reload(
    old: &Settings,
    new: Settings,
    store: &Store,
    state: &AppState,
    observers: &Observers,
    instance: &Instance,
    scheduler: RunningScheduler,
) -> Result<RunningScheduler, AppError> {
    if old.database.url != new.database.url || old.http.listen != new.http.listen {
        warn!("database.url and http.listen take effect only after a restart");
    }
    let sources: Vec<_> = new.feeds.iter().map(|f| f.source.clone()).collect();
    if let Err(e) = store.sync_feeds(&sources).await {
        error!("reload refused, the running config stays: {e}");
        state.set_reload_error(Some(e.to_string()));
        return Ok(scheduler);
    }
    scheduler.stop().await;
    let restarted = start_scheduler(&new, store, observers, instance)?;
    state.publish(app::published(&new));
    // The note goes first: whoever sees /readyz turn 200 also sees it gone.
    note_reload(store, None).await;
    state.set_reload_error(None);
    info!(feeds = new.feeds.len(), "config reloaded");
    if old.rules.fingerprint() != new.rules.fingerprint() {
        // The items readers see now are re-cleaned with the new rules, in the background.
        let (store, state, new) = (store.clone(), state.clone(), new.clone());
        tokio::spawn(async move {
            let since = match store.newest_entries(new.output.max_entries).await {
                Ok(entries) => entries.last().map(|e| e.published),
                Err(e) => {
                    warn!("cannot re-clean after the rules changed: {e}");
                    return;
                }
            };
            match app::reclean(&new, &store, None, since).await {
                Ok(report) => {
                    info!(
                        examined = report.examined,
                        changed = report.changed,
                        "re-cleaned after a rules change"
                    );
                    state.version.bump();
                }
                Err(e) => warn!("re-cleaning after a rules change failed: {e}"),
            }
        });
    }
    Ok(restarted)
}

/// The one-line status systemd shows for the unit.
fn report_status(settings: &Settings, listen: &str) {
    notify::status(&format!(
        "polling {} feeds, serving {listen}",
        settings.feeds.len()
    ));
}

/// Leaves a refused reload (or clears it) where `kabar status` shows it.
async fn note_reload(store: &Store, error: Option<&str>) {
    let message = error.map(|e| format!("last reload refused, running config kept: {e}"));
    if let Err(e) = store.set_daemon_note("reload", message.as_deref()).await {
        warn!("cannot record the reload outcome for kabar status: {e}");
    }
}

/// After a poll (or re-clean, or reload) changed what the outputs show, pings
/// the WebSub hub for every output, at most every few seconds.
async fn ping_hub(state: AppState, shutdown: CancellationToken) {
    let client = reqwest::Client::new();
    let mut pinged = state.version.current();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let version = state.version.current();
        if version == pinged {
            continue;
        }
        let published = state
            .published
            .read()
            .expect("published lock poisoned")
            .clone();
        if let Some(hub) = &published.hub {
            let topics: Vec<String> = published
                .outputs
                .iter()
                .flat_map(|o| {
                    [
                        published.url(&o.atom_path, None),
                        published.url(&o.json_path, None),
                    ]
                })
                .collect();
            crate::websub::publish(&client, hub, &topics).await;
        }
        pinged = version;
    }
}

/// Applies retention at start, once a day, and at once when a reload changes
/// the `[retention]` settings.
async fn prune_daily(
    mut settings: tokio::sync::watch::Receiver<Settings>,
    store: Store,
    version: crate::domain::ContentVersion,
    shutdown: CancellationToken,
) {
    loop {
        let current = settings.borrow_and_update().clone();
        match app::prune(&current, &store).await {
            Ok(0) => {}
            Ok(pruned) => {
                info!(pruned, "pruned items beyond retention");
                version.bump();
            }
            Err(e) => warn!("pruning failed: {e}"),
        }
        let next_day = tokio::time::sleep(Duration::from_secs(24 * 3600));
        tokio::pin!(next_day);
        // False once the daemon dropped the sender (it is stopping).
        let mut watching = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut next_day => break,
                changed = settings.changed(), if watching => match changed {
                    Err(_) => watching = false,
                    Ok(()) if settings.borrow().retention != current.retention => {
                        info!("retention settings changed; pruning now");
                        break;
                    }
                    Ok(()) => {}
                },
            }
        }
    }
}

/// Tells systemd "alive" at half its watchdog interval, but only while the
/// scheduler's heartbeat moves: a stuck scheduler gets the service restarted.
async fn watchdog(heartbeat: Heartbeat, shutdown: CancellationToken) {
    let Some(interval) = notify::watchdog_interval() else {
        return;
    };
    let stale_after = (interval.as_secs() as i64 * 2).max(2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval.max(Duration::from_millis(100))) => {}
        }
        if heartbeat.age() <= stale_after {
            notify::watchdog();
        } else {
            warn!(
                age = heartbeat.age(),
                "scheduler heartbeat is stale; not telling systemd we are alive"
            );
        }
    }
}

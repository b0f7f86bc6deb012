//! The `kabar` command: parses arguments, sets up logging, and hands off to the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kabar::app::Progress;
use kabar::config::{self, Settings};
use kabar::{app, daemon, poll::PollOutcome};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "kabar",
    version,
    about = "Aggregates Indonesian regional news feeds into one clean Atom feed"
)]
struct Cli {
    /// Config file.
    #[arg(
        long,
        global = true,
        env = "KABAR_CONFIG",
        default_value = "config/kabar.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: poll feeds on their schedules and serve the combined feed.
    Run,
    /// Poll every feed (or one) once, now, and print a summary per feed.
    Poll {
        /// Poll only the feed with this name.
        #[arg(long)]
        feed: Option<String>,
    },
    /// Validate the config and print every problem found.
    CheckConfig,
    /// Show every feed's health, read from the database (the daemon need not run).
    Status {
        /// One JSON array of feed objects instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete items beyond the retention settings, leaving tombstones so they do not come back.
    Prune,
    /// Apply database migrations.
    Migrate,
    /// Show how the current rules clean a feed, item by item, and which rule removed what.
    Clean {
        /// A feed file, or an http(s) URL to fetch.
        source: String,
        /// Read it as this configured feed (its encoding, time zone, clock offset, kind).
        #[arg(long)]
        feed: Option<String>,
    },
    /// Re-apply the current rules to stored items, without refetching.
    Reclean {
        /// Only this feed's items.
        #[arg(long)]
        feed: Option<String>,
        /// Only items published at or after this date (e.g. 2026-11-01 or 2026-11-01T08:00:00+07:00).
        #[arg(long, value_parser = parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Write an output's Atom feed to a file (atomically) or standard output.
    Render {
        /// The output: `feed` (everything), a configured `[[outputs]]` name, or `region-REGION`.
        #[arg(long = "output", value_name = "NAME", default_value = "feed")]
        output_name: String,
        /// Output file; standard output when absent.
        #[arg(short = 'o', long = "file", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kabar: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kabar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Human-readable logs on a terminal; no colour codes under systemd (journald
/// sets JOURNAL_STREAM) or in files; JSON lines with KABAR_LOG_FORMAT=json.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("KABAR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("KABAR_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else if under_journald {
        // journald stamps each line itself.
        builder.with_ansi(false).without_time().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn load(path: &Path) -> anyhow::Result<Settings> {
    Ok(config::load(path)?)
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig => match config::load(&cli.config) {
            Ok(settings) => {
                println!(
                    "{}: valid, {} feeds",
                    cli.config.display(),
                    settings.feeds.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Migrate => {
            let settings = load(&cli.config)?;
            let store = kabar::store::Store::connect(
                &settings.database.url,
                settings.database.max_connections,
            )
            .await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Poll { feed } => {
            let settings = load(&cli.config)?;
            let store = app::open_store(&settings).await?;
            let progress = TerminalProgress::new("polling");
            let reports =
                app::poll_once_with_progress(&settings, &store, feed.as_deref(), &progress).await?;
            let width = reports.iter().map(|r| r.feed.len()).max().unwrap_or(0);
            let mut failures = 0;
            for report in &reports {
                if matches!(report.outcome, PollOutcome::Failed { .. }) {
                    failures += 1;
                }
                println!("{:width$}  {}", report.feed, report.outcome);
            }
            println!("{} feeds polled, {failures} failed", reports.len());
            Ok(if failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Status { json } => {
            let settings = load(&cli.config)?;
            let store = app::open_store(&settings).await?;
            let statuses = store.feed_statuses().await?;
            for (topic, message, at) in store.daemon_notes().await? {
                eprintln!(
                    "note from the daemon ({topic}, {}): {message}",
                    at.format("%Y-%m-%d %H:%M UTC")
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                print!("{}", kabar::status::table(&statuses, chrono::Utc::now()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Prune => {
            let settings = load(&cli.config)?;
            let store = app::open_store(&settings).await?;
            let progress = TerminalProgress::new("pruning");
            progress.start(0);
            let pruned = app::prune(&settings, &store).await?;
            progress.finish();
            println!("pruned {pruned} items");
            Ok(ExitCode::SUCCESS)
        }
        Command::Clean { source, feed } => {
            let settings = load(&cli.config)?;
            print!(
                "{}",
                app::inspect_source(&settings, &source, feed.as_deref()).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Reclean { feed, since } => {
            let settings = load(&cli.config)?;
            let store = app::open_store(&settings).await?;
            let progress = TerminalProgress::new("re-cleaning");
            let report =
                app::reclean_with_progress(&settings, &store, feed.as_deref(), since, &progress)
                    .await?;
            println!(
                "re-cleaned {} items, {} changed",
                report.examined, report.changed
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            output_name,
            output,
        } => {
            let settings = load(&cli.config)?;
            let store = app::open_store(&settings).await?;
            let bytes = app::render_output(&settings, &store, &output_name).await?;
            match output {
                Some(path) => write_atomically(&path, &bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(&bytes)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let settings = load(&cli.config)?;
            let store = app::open_store(&settings).await?;
            let listener = app::bind(&settings).await?;
            let controls = daemon::Controls {
                shutdown: CancellationToken::new(),
                reload: std::sync::Arc::new(tokio::sync::Notify::new()),
                config_path: Some(cli.config.clone()),
            };
            tokio::spawn(forward_signals(controls.clone()));
            daemon::run(settings, store, listener, controls).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A progress bar on a terminal (feed in hand, counts); nothing otherwise,
/// where the log lines tell the story.
struct TerminalProgress {
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
}

impl TerminalProgress {
    fn new(what: &'static str) -> TerminalProgress {
        use std::io::IsTerminal;
        TerminalProgress {
            bar: std::io::stderr()
                .is_terminal()
                .then(indicatif::ProgressBar::hidden),
            what,
        }
    }
}

impl app::Progress for TerminalProgress {
    fn start(&self, total: u64) {
        let Some(bar) = &self.bar else { return };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        let template = if total > 0 {
            bar.set_length(total);
            "{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}"
        } else {
            "{prefix} {spinner} {pos} {elapsed} {wide_msg}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(self.what);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
    }

    fn advance(&self, steps: u64, label: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(steps);
            bar.set_message(label.to_string());
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `--since`: a date in any form kabar reads in feeds; zone-less means WIB.
fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    kabar::dates::parse_timestamp(text, kabar::dates::jakarta()).ok_or_else(|| {
        format!("not a date: {text:?} (try 2026-11-01 or 2026-11-01T08:00:00+07:00)")
    })
}

/// Writes to a temporary file beside `path`, then renames it over `path`, so a
/// web server never serves a half-written feed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.kabar-tmp"));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)
}

/// SIGINT/SIGTERM cancel the daemon's shutdown token (polls in flight finish,
/// then the listener closes); SIGHUP asks it to reload its config.
async fn forward_signals(controls: daemon::Controls) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop kabar with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                controls.reload.notify_one();
            }
        }
    }
    tracing::info!("shutting down");
    controls.shutdown.cancel();
}

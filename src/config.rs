//! Loads the config file, applies `KABAR_*` environment overrides, and validates it into typed settings.
//!
//! Every problem is collected and reported at once, each with its key path,
//! so an admin fixes a config in one round instead of one error at a time.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use url::Url;

use crate::clean::RuleBook;
use crate::dates::parse_timezone;
use crate::domain::{EntryFilter, FeedSource, SourceKind};
use crate::pacing::PacingPolicy;
use crate::schedule::CronSchedule;

/// The prefix of environment variables that override config keys;
/// `KABAR_DATABASE__URL` overrides `database.url`.
const ENV_PREFIX: &str = "KABAR";
const ENV_SEPARATOR: &str = "__";

/// One thing wrong with a config, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `feeds[2].schedule`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config {path} is invalid:\n{}", list(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validated settings for the whole daemon.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub output: OutputSettings,
    pub fetch: FetchSettings,
    /// Polls in flight at once, across all feeds.
    pub concurrency: usize,
    /// Items dated further ahead than this are dated when first seen instead.
    pub future_margin: Duration,
    pub pacing: PacingPolicy,
    /// Requests in flight to one host, across all its feeds.
    pub per_host_concurrency: usize,
    /// Least time between the starts of two requests to one host.
    pub per_host_interval: Duration,
    /// Feeds sharing a schedule start within this much of the tick.
    pub tick_jitter: Duration,
    /// On shutdown or reload, polls in flight get this long to finish.
    pub shutdown_timeout: Duration,
    /// How long a claim on a due feed (and on its host) holds without renewal;
    /// another instance takes over a crashed instance's feeds after this.
    pub lease: Duration,
    pub feeds: Vec<FeedSettings>,
    /// Filtered outputs beside the default `/feed.atom`.
    pub outputs: Vec<NamedOutput>,
    /// Boilerplate rules: the shipped ones plus the rules directory's.
    pub rules: Arc<RuleBook>,
    pub retention: RetentionSettings,
    /// The rules directory in use, if any.
    pub rules_dir: Option<PathBuf>,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

impl fmt::Debug for DatabaseSettings {
    // The URL may carry a password; logs and panics must not show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_password(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The database URL with any password replaced, for logs.
pub fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable database url>".to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

/// How the combined feed describes itself.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    pub title: String,
    /// Feed-level Atom id.
    pub id: String,
    /// Authority (a domain or email the operator owns) in the `tag:` URIs of entry ids.
    pub id_authority: String,
    /// Public base URL of this kabar, used for `link rel="self"`.
    pub base_url: Url,
    pub max_entries: usize,
    /// `Cache-Control: max-age` readers are told.
    pub max_age: Duration,
    /// A WebSub hub to advertise and to ping when outputs change.
    pub websub_hub: Option<Url>,
}

/// Limits for one HTTP fetch.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Longest silence in the middle of a body.
    pub stall_timeout: Duration,
    /// Cap on the decoded response body, in bytes.
    pub max_body_bytes: usize,
}

/// One configured feed, validated.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub source: FeedSource,
    pub schedule: CronSchedule,
}

// ---- the file format, as admins write it ----

#[derive(Debug, Deserialize)]
struct RawConfig {
    database: Option<RawDatabase>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    cleaning: RawCleaning,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    feeds: Vec<RawFeed>,
    #[serde(default)]
    outputs: Vec<RawNamedOutput>,
}

#[derive(Debug, Deserialize)]
struct RawNamedOutput {
    name: Option<String>,
    path: Option<String>,
    title: Option<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    feeds: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// A filtered combined feed an admin configured, served as Atom at `path`
/// and as JSON Feed beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedOutput {
    pub name: String,
    /// Absolute path ending in `.atom`, e.g. `/jabar.atom`.
    pub path: String,
    pub title: String,
    pub filter: EntryFilter,
}

#[derive(Debug, Default, Deserialize)]
struct RawRetention {
    #[serde(default, with = "humantime_serde")]
    max_age: Option<Duration>,
    max_items_per_feed: Option<i64>,
}

/// How long items are kept; `None` keeps them for ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub max_age: Option<Duration>,
    pub max_items_per_feed: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawCleaning {
    rules_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct RawDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct RawHttp {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawOutput {
    title: Option<String>,
    id: Option<String>,
    id_authority: Option<String>,
    base_url: Option<String>,
    max_entries: Option<i64>,
    #[serde(default, with = "humantime_serde")]
    max_age: Option<Duration>,
    websub_hub: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDefaults {
    schedule: Option<String>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    max_body_bytes: Option<i64>,
    concurrency: Option<i64>,
    timezone: Option<String>,
    #[serde(default, with = "humantime_serde")]
    future_margin: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    stall_timeout: Option<Duration>,
    per_host_concurrency: Option<i64>,
    #[serde(default, with = "humantime_serde")]
    per_host_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    backoff_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    backoff_max: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    disable_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_hint: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    tick_jitter: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    shutdown_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    lease: Option<Duration>,
}

#[derive(Debug, Deserialize)]
struct RawFeed {
    name: Option<String>,
    url: Option<String>,
    region: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    schedule: Option<String>,
    kind: Option<String>,
    encoding: Option<String>,
    timezone: Option<String>,
    clock_offset: Option<String>,
}

pub const DEFAULT_SCHEDULE: &str = "*/15 * * * *";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_ID_AUTHORITY: &str = "kabar.localhost";

/// Loads and validates the config file at `path`, with environment overrides.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError::Read {
            path: path.to_path_buf(),
            message: "no such file (pass --config PATH or set KABAR_CONFIG)".to_string(),
        });
    }
    let overrides: config::Map<String, String> = std::env::vars()
        .filter(|(name, _)| {
            name.starts_with(&format!("{ENV_PREFIX}_")) && name.contains(ENV_SEPARATOR)
        })
        .collect();
    let source = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator(ENV_SEPARATOR)
                .source(Some(overrides)),
        )
        .build()
        .map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let config_dir = path.parent().unwrap_or(Path::new("."));
    from_source(source, Some(config_dir)).map_err(|problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// Validates a config given as TOML text (no environment overrides); for tests and tools.
/// A relative `cleaning.rules_dir` is taken from the working directory.
pub fn from_toml(text: &str) -> Result<Settings, Vec<ConfigProblem>> {
    let source = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .map_err(|e| {
            vec![ConfigProblem {
                key: "(file)".to_string(),
                message: e.to_string(),
            }]
        })?;
    from_source(source, None)
}

/// `config_dir`: where the config file is, for the default `rules/` beside it.
fn from_source(
    source: config::Config,
    config_dir: Option<&Path>,
) -> Result<Settings, Vec<ConfigProblem>> {
    let mut unknown = Vec::new();
    let raw: RawConfig = serde_ignored::deserialize(source, |path| unknown.push(path.to_string()))
        .map_err(|e| {
            vec![ConfigProblem {
                key: "(file)".to_string(),
                message: e.to_string(),
            }]
        })?;
    let mut problems: Vec<ConfigProblem> = unknown
        .into_iter()
        .map(|key| ConfigProblem {
            key: bracket_indices(&key),
            message: "unknown key".to_string(),
        })
        .collect();
    let settings = validate(raw, config_dir, &mut problems);
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

/// `feeds.2.nmae` / `database.?.pool` (serde_ignored's forms) -> `feeds[2].nmae` / `database.pool`.
fn bracket_indices(path: &str) -> String {
    let mut out = String::new();
    // serde_ignored writes `?` for the `Some` of an optional table; admins never see that level.
    for part in path.split('.').filter(|part| *part != "?") {
        if part.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// Turns the raw file into settings, pushing every problem found; the settings
/// returned are only meaningful when no problem was pushed.
fn validate(
    raw: RawConfig,
    config_dir: Option<&Path>,
    problems: &mut Vec<ConfigProblem>,
) -> Settings {
    let mut problem = |key: &str, message: String| {
        problems.push(ConfigProblem {
            key: key.to_string(),
            message,
        })
    };

    let database_url = match raw.database.as_ref().and_then(|d| d.url.clone()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
        Some(url) => {
            problem(
                "database.url",
                format!(
                    "expected a postgres:// or postgresql:// URL, got {:?}",
                    redact_password(&url)
                ),
            );
            String::new()
        }
        None => {
            problem(
                "database.url",
                "missing (set it in the file or with KABAR_DATABASE__URL)".to_string(),
            );
            String::new()
        }
    };
    let max_connections = raw
        .database
        .as_ref()
        .and_then(|d| d.max_connections)
        .unwrap_or(10);
    if max_connections == 0 {
        problem("database.max_connections", "must be at least 1".to_string());
    }

    let listen_text = raw
        .http
        .listen
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        problem(
            "http.listen",
            format!("expected an address like 127.0.0.1:8080, got {listen_text:?}"),
        );
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });

    let base_text = raw
        .output
        .base_url
        .unwrap_or_else(|| format!("http://{listen}/"));
    let base_url = match Url::parse(&base_text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            problem(
                "output.base_url",
                format!("expected an absolute http(s) URL, got {base_text:?}"),
            );
            Url::parse("http://127.0.0.1:8080/").expect("static URL")
        }
    };
    let id_authority = raw
        .output
        .id_authority
        .unwrap_or_else(|| DEFAULT_ID_AUTHORITY.to_string());
    if id_authority.is_empty() || id_authority.contains([',', ':', ' ', '/']) {
        problem(
            "output.id_authority",
            format!("expected a domain name or email address, got {id_authority:?}"),
        );
    }
    let feed_id = raw
        .output
        .id
        .unwrap_or_else(|| format!("tag:{id_authority},2026:feed"));
    if Url::parse(&feed_id).is_err() {
        problem(
            "output.id",
            format!("expected an absolute URI (e.g. tag:example.org,2026:feed), got {feed_id:?}"),
        );
    }
    let max_entries = raw.output.max_entries.unwrap_or(200);
    if !(1..=10_000).contains(&max_entries) {
        problem(
            "output.max_entries",
            format!("must be between 1 and 10000, got {max_entries}"),
        );
    }

    let default_schedule_text = raw
        .defaults
        .schedule
        .unwrap_or_else(|| DEFAULT_SCHEDULE.to_string());
    let default_schedule = CronSchedule::parse(&default_schedule_text)
        .map_err(|e| problem("defaults.schedule", e.to_string()))
        .ok();
    let timeout = raw.defaults.timeout.unwrap_or(Duration::from_secs(30));
    let connect_timeout = raw
        .defaults
        .connect_timeout
        .unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        problem("defaults.timeout", "must be longer than 0s".to_string());
    }
    if connect_timeout.is_zero() {
        problem(
            "defaults.connect_timeout",
            "must be longer than 0s".to_string(),
        );
    }
    let max_body_bytes = raw.defaults.max_body_bytes.unwrap_or(10 * 1024 * 1024);
    if max_body_bytes < 1024 {
        problem(
            "defaults.max_body_bytes",
            format!("must be at least 1024, got {max_body_bytes}"),
        );
    }
    let concurrency = raw.defaults.concurrency.unwrap_or(8);
    if !(1..=1024).contains(&concurrency) {
        problem(
            "defaults.concurrency",
            format!("must be between 1 and 1024, got {concurrency}"),
        );
    }

    let default_timezone_text = raw
        .defaults
        .timezone
        .unwrap_or_else(|| "Asia/Jakarta".to_string());
    let default_timezone = parse_timezone(&default_timezone_text).unwrap_or_else(|| {
        problem(
            "defaults.timezone",
            timezone_problem(&default_timezone_text),
        );
        crate::dates::jakarta()
    });
    let future_margin = raw
        .defaults
        .future_margin
        .unwrap_or(Duration::from_secs(15 * 60));
    let stall_timeout = raw
        .defaults
        .stall_timeout
        .unwrap_or(Duration::from_secs(20));
    if stall_timeout.is_zero() {
        problem(
            "defaults.stall_timeout",
            "must be longer than 0s".to_string(),
        );
    }
    let per_host_concurrency = raw.defaults.per_host_concurrency.unwrap_or(1);
    if !(1..=64).contains(&per_host_concurrency) {
        problem(
            "defaults.per_host_concurrency",
            format!("must be between 1 and 64, got {per_host_concurrency}"),
        );
    }
    let lease = raw.defaults.lease.unwrap_or(Duration::from_secs(30));
    // Leases are renewed every second while a poll runs; a few seconds of slack
    // keep a slow database round trip from handing a live poll to another instance.
    if !(Duration::from_secs(3)..=Duration::from_secs(3600)).contains(&lease) {
        problem(
            "defaults.lease",
            format!(
                "must be between 3s and 1h, got {}",
                humantime::format_duration(lease)
            ),
        );
    }
    let fallback = PacingPolicy::default();
    let pacing = PacingPolicy {
        backoff_base: raw.defaults.backoff_base.unwrap_or(fallback.backoff_base),
        backoff_max: raw.defaults.backoff_max.unwrap_or(fallback.backoff_max),
        disable_after: raw.defaults.disable_after.unwrap_or(fallback.disable_after),
        max_hint: raw.defaults.max_hint.unwrap_or(fallback.max_hint),
        max_retry_after: fallback.max_retry_after,
    };
    if pacing.backoff_base.is_zero() || pacing.backoff_base > pacing.backoff_max {
        problem(
            "defaults.backoff_base",
            "must be longer than 0s and not longer than defaults.backoff_max".to_string(),
        );
    }

    if raw.feeds.is_empty() {
        problem("feeds", "no [[feeds]] configured".to_string());
    }
    let mut names = HashSet::new();
    let mut feeds = Vec::new();
    for (index, feed) in raw.feeds.into_iter().enumerate() {
        let key = |field: &str| format!("feeds[{index}].{field}");
        let label = feed.name.clone().unwrap_or_else(|| format!("#{index}"));
        let name = match feed.name {
            Some(name) if !name.trim().is_empty() => {
                if !names.insert(name.clone()) {
                    problem(&key("name"), format!("duplicate feed name {name:?}"));
                }
                name
            }
            _ => {
                problem(&key("name"), "missing or empty".to_string());
                String::new()
            }
        };
        let url = match feed.url {
            Some(url) => match Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => url,
                _ => {
                    problem(
                        &key("url"),
                        format!("feed {label:?}: expected an absolute http(s) URL, got {url:?}"),
                    );
                    url
                }
            },
            None => {
                problem(&key("url"), format!("feed {label:?}: missing"));
                String::new()
            }
        };
        let region = match feed.region {
            Some(region) if !region.trim().is_empty() => region,
            _ => {
                problem(&key("region"), format!("feed {label:?}: missing or empty"));
                String::new()
            }
        };
        let schedule = match feed.schedule {
            Some(text) => CronSchedule::parse(&text)
                .map_err(|e| problem(&key("schedule"), format!("feed {label:?}: {e}")))
                .ok(),
            None => default_schedule.clone(),
        };
        let kind = match feed.kind.as_deref() {
            None | Some("feed") => SourceKind::Feed,
            Some("news-sitemap") => SourceKind::NewsSitemap,
            Some(other) => {
                problem(
                    &key("kind"),
                    format!("feed {label:?}: expected \"feed\" or \"news-sitemap\", got {other:?}"),
                );
                SourceKind::Feed
            }
        };
        if let Some(encoding) = feed
            .encoding
            .as_deref()
            .filter(|e| !crate::parse::encoding::is_known_label(e))
        {
            problem(
                &key("encoding"),
                format!(
                    "feed {label:?}: unknown character encoding {encoding:?} (e.g. \"windows-1252\", \"iso-8859-1\")"
                ),
            );
        }
        let timezone = match &feed.timezone {
            Some(text) => parse_timezone(text).unwrap_or_else(|| {
                problem(
                    &key("timezone"),
                    format!("feed {label:?}: {}", timezone_problem(text)),
                );
                default_timezone
            }),
            None => default_timezone,
        };
        let clock_offset = match &feed.clock_offset {
            Some(text) => parse_signed_duration(text).unwrap_or_else(|| {
                problem(
                    &key("clock_offset"),
                    format!("feed {label:?}: expected a duration such as \"-7h\" or \"30m\", got {text:?}"),
                );
                chrono::Duration::zero()
            }),
            None => chrono::Duration::zero(),
        };
        if let Some(schedule) = schedule {
            feeds.push(FeedSettings {
                source: FeedSource {
                    name,
                    url,
                    region,
                    tags: feed.tags,
                    kind,
                    encoding: feed.encoding,
                    timezone,
                    clock_offset,
                },
                schedule,
            });
        }
    }

    // rules/ beside the config file is used when present; an explicit rules_dir must exist.
    let rules_dir = match raw.cleaning.rules_dir {
        Some(dir) => {
            let dir = match config_dir {
                Some(base) if dir.is_relative() => base.join(dir),
                _ => dir,
            };
            if !dir.is_dir() {
                problem(
                    "cleaning.rules_dir",
                    format!("{} is not a directory", dir.display()),
                );
            }
            Some(dir)
        }
        None => config_dir.map(|d| d.join("rules")).filter(|d| d.is_dir()),
    };
    let rules = match RuleBook::load(rules_dir.as_deref()) {
        Ok(book) => book,
        Err(errors) => {
            for e in errors {
                problem("cleaning.rules", e.to_string());
            }
            RuleBook::builtin()
        }
    };

    let websub_hub = raw
        .output
        .websub_hub
        .as_deref()
        .and_then(|text| match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                problem(
                    "output.websub_hub",
                    format!("expected an absolute http(s) URL, got {text:?}"),
                );
                None
            }
        });
    let mut outputs = Vec::new();
    let mut output_names = HashSet::new();
    let feed_names: HashSet<&str> = feeds.iter().map(|f| f.source.name.as_str()).collect();
    for (index, output) in raw.outputs.into_iter().enumerate() {
        let key = |field: &str| format!("outputs[{index}].{field}");
        let name = output.name.unwrap_or_default();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problem(
                &key("name"),
                format!("expected letters, digits, '-' or '_', got {name:?}"),
            );
        } else if !output_names.insert(name.clone()) || name == "feed" {
            problem(&key("name"), format!("duplicate output name {name:?}"));
        }
        let path = output.path.unwrap_or_else(|| format!("/{name}.atom"));
        let reserved = ["/feed.atom", "/feeds/"];
        if !path.starts_with('/')
            || !path.ends_with(".atom")
            || path.contains("..")
            || path.contains('?')
            || reserved
                .iter()
                .any(|r| path == *r || (r.ends_with('/') && path.starts_with(r)))
        {
            problem(
                &key("path"),
                format!(
                    "expected a path like /jabar.atom (not /feed.atom or under /feeds/), got {path:?}"
                ),
            );
        }
        for feed in &output.feeds {
            if !feed_names.contains(feed.as_str()) {
                problem(&key("feeds"), format!("no feed named {feed:?}"));
            }
        }
        outputs.push(NamedOutput {
            title: output.title.unwrap_or_else(|| name.clone()),
            name,
            path,
            filter: EntryFilter {
                regions: output.regions,
                tags: output.tags,
                feeds: output.feeds,
                include: output.include,
                exclude: output.exclude,
            },
        });
    }

    let retention = RetentionSettings {
        max_age: match raw.retention.max_age {
            Some(age) if age.is_zero() => {
                problem(
                    "retention.max_age",
                    "must be longer than 0s (leave it out to keep items for ever)".to_string(),
                );
                None
            }
            Some(age) => Some(age),
            None => Some(Duration::from_secs(180 * 24 * 3600)),
        },
        max_items_per_feed: match raw.retention.max_items_per_feed {
            Some(n) if n < 1 => {
                problem(
                    "retention.max_items_per_feed",
                    format!("must be at least 1, got {n}"),
                );
                None
            }
            Some(n) => Some(n),
            None => Some(10_000),
        },
    };

    Settings {
        rules: Arc::new(rules),
        retention,
        outputs,
        rules_dir,
        database: DatabaseSettings {
            url: database_url,
            max_connections,
        },
        http: HttpSettings { listen },
        output: OutputSettings {
            title: raw
                .output
                .title
                .unwrap_or_else(|| "kabar: berita daerah".to_string()),
            id: feed_id,
            id_authority,
            base_url,
            max_entries: max_entries.clamp(1, 10_000) as usize,
            max_age: raw.output.max_age.unwrap_or(Duration::from_secs(300)),
            websub_hub,
        },
        fetch: FetchSettings {
            connect_timeout,
            timeout,
            stall_timeout,
            max_body_bytes: max_body_bytes.max(1024) as usize,
        },
        concurrency: concurrency.clamp(1, 1024) as usize,
        future_margin,
        pacing,
        per_host_concurrency: per_host_concurrency.clamp(1, 64) as usize,
        per_host_interval: raw
            .defaults
            .per_host_interval
            .unwrap_or(Duration::from_secs(1)),
        tick_jitter: raw.defaults.tick_jitter.unwrap_or(Duration::from_secs(30)),
        // Below the systemd unit's TimeoutStopSec=30s, so kabar ends its own polls first.
        shutdown_timeout: raw
            .defaults
            .shutdown_timeout
            .unwrap_or(Duration::from_secs(20)),
        lease,
        feeds,
    }
}

fn timezone_problem(text: &str) -> String {
    format!(
        "unknown time zone {text:?}; use Asia/Jakarta, Asia/Makassar, Asia/Jayapura, WIB, WITA, WIT, UTC or an offset like +07:00"
    )
}

/// `"-7h"`, `"30m"`, `"+1h 30m"`: a humantime duration with an optional sign.
fn parse_signed_duration(text: &str) -> Option<chrono::Duration> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude =
        chrono::Duration::from_std(humantime::parse_duration(rest.trim()).ok()?).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

impl Settings {
    /// The configured feed of that name.
    pub fn feed(&self, name: &str) -> Option<&FeedSettings> {
        self.feeds.iter().find(|f| f.source.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [database]
        url = "postgres://kabar@127.0.0.1/kabar"

        [[feeds]]
        name = "tribun-jabar"
        url = "https://jabar.tribunnews.com/rss"
        region = "jawa-barat"
    "#;

    #[test]
    fn minimal_config_gets_defaults() {
        let settings = from_toml(MINIMAL).unwrap();
        assert_eq!(settings.http.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.output.max_entries, 200);
        assert_eq!(settings.feeds.len(), 1);
        assert_eq!(settings.feeds[0].schedule.expression(), DEFAULT_SCHEDULE);
        assert_eq!(settings.output.id, "tag:kabar.localhost,2026:feed");
    }

    #[test]
    fn reports_every_problem_at_once_with_key_paths() {
        let text = r#"
            [database]
            url = "mysql://x"
            [http]
            listen = "everywhere"
            lisen = "typo"
            [[feeds]]
            name = "a"
            url = "https://a.example/rss"
            region = "aceh"
            schedule = "0 9 * *"
            [[feeds]]
            name = "a"
            url = "ftp://b.example/rss"
            region = "bali"
            colour = "red"
        "#;
        let problems = from_toml(text).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "http.lisen",
            "feeds[1].colour",
            "database.url",
            "http.listen",
            "feeds[0].schedule",
            "feeds[1].name",
            "feeds[1].url",
        ] {
            assert!(
                keys.contains(&expected),
                "missing {expected} in {problems:?}"
            );
        }
        let schedule = problems
            .iter()
            .find(|p| p.key == "feeds[0].schedule")
            .unwrap();
        assert!(schedule.message.contains("\"a\""), "{}", schedule.message);
        assert!(schedule.message.contains("0 9 * *"), "{}", schedule.message);
    }

    #[test]
    fn missing_database_url_and_feeds_are_problems() {
        let problems = from_toml("[http]\nlisten = \"127.0.0.1:9000\"\n").unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"database.url"));
        assert!(keys.contains(&"feeds"));
    }

    #[test]
    fn debug_hides_database_password() {
        let db = DatabaseSettings {
            url: "postgres://kabar:rahasia@db.example/kabar".to_string(),
            max_connections: 5,
        };
        let shown = format!("{db:?}");
        assert!(!shown.contains("rahasia"), "{shown}");
    }
}

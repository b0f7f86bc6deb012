//! The human form of feed health: the table `kabar status` prints. Pure.

use chrono::{DateTime, Utc};

use crate::store::FeedStatus;

/// A fixed-width table, failing and disabled feeds first.
pub fn table(statuses: &[FeedStatus], now: DateTime<Utc>) -> String {
    let header = [
        "NAME",
        "REGION",
        "STATE",
        "LAST SUCCESS",
        "FAILS",
        "NEXT DUE",
        "24H",
        "LAST ERROR",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for s in ordered(statuses) {
        let error = last_error(s);
        cells.push(vec![
            s.name.clone(),
            s.region.clone(),
            health(s).label().to_string(),
            ago(s.last_success_at, now),
            s.consecutive_failures.to_string(),
            s.next_due
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into()),
            s.items_last_24h.to_string(),
            error.chars().take(80).collect(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Feeds in report order: failing and disabled feeds first, so a problem is
/// on the first screen; then by whether still configured, then by name.
/// Shared by the text table and the HTML status page so both agree.
pub(crate) fn ordered(statuses: &[FeedStatus]) -> Vec<&FeedStatus> {
    let mut rows: Vec<&FeedStatus> = statuses.iter().collect();
    rows.sort_by_key(|s| {
        (
            s.state == "active" && s.consecutive_failures == 0,
            !s.active,
            s.name.clone(),
        )
    });
    rows
}

/// A feed's health as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Ok,
    Failing,
    Disabled,
    /// No longer in the config; its history is kept.
    Removed,
}

impl Health {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Failing => "failing",
            Health::Disabled => "disabled",
            Health::Removed => "removed",
        }
    }
}

pub(crate) fn health(s: &FeedStatus) -> Health {
    match (s.active, s.state.as_str()) {
        (false, _) => Health::Removed,
        (true, "disabled") => Health::Disabled,
        (true, _) if s.consecutive_failures > 0 => Health::Failing,
        _ => Health::Ok,
    }
}

/// Why the feed is disabled, else its last error with its kind; empty when neither.
pub(crate) fn last_error(s: &FeedStatus) -> String {
    match (&s.disabled_reason, &s.last_error_kind, &s.last_error) {
        (Some(reason), _, _) => reason.clone(),
        (None, Some(kind), Some(message)) => format!("{kind}: {message}"),
        _ => String::new(),
    }
}

/// "5 min ago" style age of `time` relative to `now`; "never" for `None`.
pub(crate) fn ago(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(time) = time else {
        return "never".to_string();
    };
    let minutes = (now - time).num_minutes().max(0);
    match minutes {
        0 => "just now".to_string(),
        m if m < 120 => format!("{m} min ago"),
        m if m < 48 * 60 => format!("{} h ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

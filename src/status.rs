//! The human form of feed health: the table `kabar status` prints. Pure.

use chrono::{DateTime, Utc};

use crate::store::FeedStatus;

/// A fixed-width table, failing and disabled feeds first.
pub fn table(statuses: &[FeedStatus], now: DateTime<Utc>) -> String {
    let mut rows: Vec<&FeedStatus> = statuses.iter().collect();
    rows.sort_by_key(|s| {
        (
            s.state == "active" && s.consecutive_failures == 0,
            !s.active,
            s.name.clone(),
        )
    });
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
    for s in rows {
        let state = match (s.active, s.state.as_str()) {
            (false, _) => "removed".to_string(),
            (true, "disabled") => "disabled".to_string(),
            (true, _) if s.consecutive_failures > 0 => "failing".to_string(),
            _ => "ok".to_string(),
        };
        let error = match (&s.disabled_reason, &s.last_error_kind, &s.last_error) {
            (Some(reason), _, _) => reason.clone(),
            (None, Some(kind), Some(message)) => format!("{kind}: {message}"),
            _ => String::new(),
        };
        cells.push(vec![
            s.name.clone(),
            s.region.clone(),
            state,
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

fn ago(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
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

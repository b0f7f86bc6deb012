//! Cron schedules written the way admins write crontab (five fields), evaluated with the `cron` crate.
//!
//! The `cron` crate wants six or seven fields (seconds first) and numbers the
//! days of the week from 1 = Sunday to 7 = Saturday, while crontab uses 0 or 7
//! for Sunday and 1 for Monday. It also requires the day of the month *and*
//! the day of the week to match, where crontab fires when *either* matches if
//! both are restricted. This module translates between the two so that an
//! admin's crontab line means exactly what it means in crontab.

use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use thiserror::Error;

/// A schedule expression that is not valid crontab.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid cron schedule {expression:?}: {reason}")]
pub struct ScheduleError {
    pub expression: String,
    pub reason: String,
}

/// A parsed five-field crontab schedule, or `@every` a fixed period.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    rule: Rule,
}

#[derive(Debug, Clone)]
enum Rule {
    /// One schedule, or two when crontab's "day of month OR day of week" rule applies;
    /// the next fire time is the earlier of their next times.
    Crontab(Vec<cron::Schedule>),
    /// Every multiple of this period since the Unix epoch, so that every kabar
    /// instance (and every restart) agrees on the ticks.
    Every(chrono::Duration),
}

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl CronSchedule {
    /// Parses a crontab expression: five fields (minute hour day-of-month month
    /// day-of-week), one of the macros `@hourly`, `@daily`, `@midnight`,
    /// `@weekly`, `@monthly`, `@yearly`, `@annually`, or `@every DURATION`
    /// (humantime, at least one second: `@every 90s`, `@every 5m`).
    pub fn parse(expression: &str) -> Result<CronSchedule, ScheduleError> {
        let fail = |reason: String| ScheduleError {
            expression: expression.to_string(),
            reason,
        };
        let trimmed = expression.trim();
        if let Some(period) = trimmed.strip_prefix("@every") {
            let period = humantime::parse_duration(period.trim())
                .map_err(|e| fail(format!("@every wants a duration such as 90s or 5m: {e}")))?;
            if period < std::time::Duration::from_secs(1) {
                return Err(fail("@every needs a period of at least 1s".to_string()));
            }
            let period = chrono::Duration::from_std(period)
                .map_err(|_| fail("@every period is too long".to_string()))?;
            return Ok(CronSchedule {
                expression: expression.to_string(),
                rule: Rule::Every(period),
            });
        }
        let expanded = match trimmed {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(fail(format!("unknown macro {other}")));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(fail(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        let day_of_week = translate_day_of_week(day_of_week).map_err(fail)?;
        // crontab treats a field starting with '*' as unrestricted for the OR rule.
        let both_restricted = !day_of_month.starts_with('*') && !day_of_week.starts_with('*');
        let variants: Vec<(&str, &str)> = if both_restricted {
            vec![(day_of_month, "*"), ("*", day_of_week.as_str())]
        } else {
            vec![(day_of_month, day_of_week.as_str())]
        };
        let alternatives = variants
            .into_iter()
            .map(|(dom, dow)| {
                let six = format!("0 {minute} {hour} {dom} {month} {dow}");
                cron::Schedule::from_str(&six).map_err(|e| fail(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CronSchedule {
            expression: expression.to_string(),
            rule: Rule::Crontab(alternatives),
        })
    }

    /// The expression as the admin wrote it.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first fire time strictly after `after`, in the same time zone.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        match &self.rule {
            Rule::Crontab(alternatives) => alternatives
                .iter()
                .filter_map(|schedule| schedule.after(after).next())
                .min(),
            Rule::Every(period) => {
                let period_ms = period.num_milliseconds();
                let now_ms = after.timestamp_millis();
                let next_ms = (now_ms.div_euclid(period_ms) + 1).checked_mul(period_ms)?;
                DateTime::from_timestamp_millis(next_ms).map(|t| t.with_timezone(&after.timezone()))
            }
        }
    }
}

/// Rewrites a crontab day-of-week field (0-7, Sunday = 0 or 7, names, ranges,
/// steps, lists) as an explicit list in the `cron` crate's numbering (1 = Sunday).
/// A field starting with `*` and carrying no step stays `*`.
fn translate_day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("invalid step {step:?} in day-of-week"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (first, last) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (day_number(a)?, day_number(b)?)
        } else {
            let day = day_number(range)?;
            // "5/2" in crontab means "from 5 to the end, every 2".
            if part.contains('/') {
                (day, 7)
            } else {
                (day, day)
            }
        };
        if first > last {
            return Err(format!("day-of-week range {range:?} runs backwards"));
        }
        for day in (first..=last).step_by(step as usize) {
            days[(day % 7) as usize] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|d| days[*d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A crontab day of week: 0-7 or a three-letter English name, case-insensitive.
fn day_number(text: &str) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day-of-week {n} is out of range 0-7"))
        };
    }
    let lower = text.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|name| *name == lower)
        .map(|i| i as u32)
        .ok_or_else(|| format!("unknown day-of-week {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Utc, Weekday};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str) -> DateTime<Utc> {
        CronSchedule::parse(expr)
            .unwrap()
            .next_after(&at(after))
            .unwrap()
    }

    #[test]
    fn monday_is_day_one_like_crontab() {
        // 2026-11-27 is a Friday.
        let fire = next("0 9 * * 1", "2026-11-27T00:00:00Z");
        assert_eq!(fire, at("2026-11-30T09:00:00Z"));
        assert_eq!(fire.weekday(), Weekday::Mon);
        let mut t = fire;
        for _ in 0..5 {
            t = CronSchedule::parse("0 9 * * 1")
                .unwrap()
                .next_after(&t)
                .unwrap();
            assert_eq!(t.weekday(), Weekday::Mon);
            assert_eq!((t.hour(), t.minute()), (9, 0));
        }
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        assert_eq!(
            next("30 6 * * 0", "2026-11-27T00:00:00Z"),
            at("2026-11-29T06:30:00Z")
        );
        assert_eq!(
            next("30 6 * * 7", "2026-11-27T00:00:00Z"),
            at("2026-11-29T06:30:00Z")
        );
        assert_eq!(
            next("30 6 * * SUN", "2026-11-27T00:00:00Z"),
            at("2026-11-29T06:30:00Z")
        );
    }

    #[test]
    fn weekday_ranges_and_names() {
        // Friday 23:00 -> next weekday 07:00 is Monday.
        assert_eq!(
            next("0 7 * * 1-5", "2026-11-27T23:00:00Z"),
            at("2026-11-30T07:00:00Z")
        );
        assert_eq!(
            next("0 7 * * mon-fri", "2026-11-27T23:00:00Z"),
            at("2026-11-30T07:00:00Z")
        );
        // Friday to Sunday written with 7.
        assert_eq!(
            next("0 7 * * 5-7", "2026-11-27T23:00:00Z"),
            at("2026-11-28T07:00:00Z")
        );
    }

    #[test]
    fn every_fifteen_minutes() {
        assert_eq!(
            next("*/15 * * * *", "2026-11-27T10:07:00Z"),
            at("2026-11-27T10:15:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-27T10:15:00Z"),
            at("2026-11-27T10:30:00Z")
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // crontab: the 1st of the month OR any Monday. After Fri 2026-11-27 the
        // next is Monday 2026-11-30, before the 1st of December.
        assert_eq!(
            next("0 8 1 * 1", "2026-11-27T00:00:00Z"),
            at("2026-11-30T08:00:00Z")
        );
        // After Monday the 30th, the 1st of December (a Tuesday) comes next.
        assert_eq!(
            next("0 8 1 * 1", "2026-11-30T09:00:00Z"),
            at("2026-12-01T08:00:00Z")
        );
    }

    #[test]
    fn macros() {
        assert_eq!(
            next("@hourly", "2026-11-27T10:07:00Z"),
            at("2026-11-27T11:00:00Z")
        );
        assert_eq!(
            next("@weekly", "2026-11-27T10:07:00Z"),
            at("2026-11-29T00:00:00Z")
        );
    }

    #[test]
    fn every_period_fires_on_multiples_since_the_epoch() {
        assert_eq!(
            next("@every 5s", "2026-11-27T10:07:03Z"),
            at("2026-11-27T10:07:05Z")
        );
        assert_eq!(
            next("@every 5s", "2026-11-27T10:07:05Z"),
            at("2026-11-27T10:07:10Z")
        );
        assert_eq!(
            next("@every 15m", "2026-11-27T10:07:00Z"),
            at("2026-11-27T10:15:00Z")
        );
        for bad in ["@every", "@every 0s", "@every 500ms", "@every soon"] {
            let err = CronSchedule::parse(bad).unwrap_err();
            assert!(err.reason.contains("@every"), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_wrong_field_count_and_bad_values() {
        for bad in [
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 9 * * 8",
            "0 9 * * xyz",
            "@reboot",
        ] {
            let err = CronSchedule::parse(bad).unwrap_err();
            assert_eq!(err.expression, bad);
        }
    }
}

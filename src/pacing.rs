//! When a feed may be polled next: backoff after failures, Retry-After, publisher hints, disabling, tick jitter. Pure.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Limits that shape a feed's polling rhythm; built from config by the caller.
#[derive(Debug, Clone)]
pub struct PacingPolicy {
    /// Wait after the first failure; doubles with each further one.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A feed failing this long (since its last success) is disabled.
    pub disable_after: Duration,
    /// Publisher hints (`ttl`, `sy:updatePeriod`, `Cache-Control`) longer than this are cut to it.
    pub max_hint: Duration,
    /// Longest wait a server's `Retry-After` may impose.
    pub max_retry_after: Duration,
}

impl Default for PacingPolicy {
    fn default() -> Self {
        PacingPolicy {
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(6 * 3600),
            disable_after: Duration::from_secs(7 * 24 * 3600),
            max_hint: Duration::from_secs(6 * 3600),
            max_retry_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// A failed poll, as pacing needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub kind: &'a str,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

/// What follows a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterFailure {
    /// No poll before this time.
    pub not_before: DateTime<Utc>,
    /// Set when the feed must stop being polled until its config changes.
    pub disable: Option<String>,
}

impl PacingPolicy {
    /// Decides the next poll after a failure. `consecutive` counts this failure;
    /// `failing_since` is when the run of failures began.
    pub fn after_failure(
        &self,
        feed: &str,
        consecutive: u32,
        failing_since: DateTime<Utc>,
        now: DateTime<Utc>,
        failure: Failure<'_>,
    ) -> AfterFailure {
        let wait = match failure.retry_after {
            // The server said when: that feed waits exactly that long (not its host's other feeds).
            Some(retry) if matches!(failure.status, Some(429 | 503)) => {
                retry.min(self.max_retry_after)
            }
            _ => self.backoff(feed, consecutive),
        };
        let disable = if failure.status == Some(410) {
            Some("the server answered 410 Gone: the feed was removed; give it a new url to poll it again".to_string())
        } else if (now - failing_since).to_std().unwrap_or_default() >= self.disable_after {
            Some(format!(
                "failing for {} without a success (disable_after); fix or change its url to poll it again",
                humantime::format_duration(self.disable_after)
            ))
        } else {
            None
        };
        AfterFailure {
            not_before: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
            disable,
        }
    }

    /// Exponential backoff with ±25% jitter, so feeds that failed together do not retry together.
    pub fn backoff(&self, feed: &str, consecutive: u32) -> Duration {
        let doublings = consecutive.saturating_sub(1).min(20);
        let raw = self
            .backoff_base
            .saturating_mul(1 << doublings)
            .min(self.backoff_max);
        let spread = spread(&(feed, consecutive)); // 0.0..1.0
        raw.mul_f64(0.75 + spread * 0.5).min(self.backoff_max)
    }

    /// The earliest next poll a successful poll's publisher hints allow, if any.
    pub fn after_success(
        &self,
        hints: &[Option<Duration>],
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let hint = hints.iter().flatten().max()?.min(&self.max_hint);
        (!hint.is_zero())
            .then(|| now + chrono::Duration::from_std(*hint).unwrap_or(chrono::Duration::zero()))
    }
}

/// A delay in `0..max` that spreads feeds sharing a schedule across the first
/// moments after a tick, the same for a given feed and tick.
pub fn tick_jitter(feed: &str, tick: DateTime<Utc>, max: Duration) -> Duration {
    max.mul_f64(spread(&(feed, tick.timestamp())))
}

/// A well-mixed number in 0.0..1.0 from `value`.
fn spread(value: &impl Hash) -> f64 {
    let mut hasher = StableHasher(0xcbf2_9ce4_8422_2325);
    value.hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a with a final avalanche (MurmurHash3's fmix64). Unlike
/// `DefaultHasher`, whose algorithm may change between Rust releases, it gives
/// the same number in every build, so kabar instances of different versions
/// sharing a database still agree on each feed's jittered tick.
struct StableHasher(u64);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        z ^ (z >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn failure(status: Option<u16>, retry_after: Option<u64>) -> Failure<'static> {
        Failure {
            kind: "http_status",
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let policy = PacingPolicy::default();
        for n in 1..=8u32 {
            let expected = 60.0 * f64::from(1u32 << (n - 1));
            let got = policy.backoff("tribun-jabar", n).as_secs_f64();
            assert!(
                got >= expected * 0.75 && got <= expected * 1.25,
                "{n}: {got}"
            );
        }
        assert!(policy.backoff("x", 40) <= policy.backoff_max);
        // Jitter differs between feeds.
        assert_ne!(policy.backoff("a", 3), policy.backoff("b", 3));
    }

    #[test]
    fn retry_after_applies_to_429_and_503() {
        let policy = PacingPolicy::default();
        let now = at("2026-11-27T10:00:00Z");
        for status in [429, 503] {
            let next = policy.after_failure("f", 1, now, now, failure(Some(status), Some(900)));
            assert_eq!(next.not_before, at("2026-11-27T10:15:00Z"));
            assert_eq!(next.disable, None);
        }
        // An absurd Retry-After is capped.
        let next = policy.after_failure("f", 1, now, now, failure(Some(429), Some(90 * 24 * 3600)));
        assert_eq!(next.not_before, at("2026-11-28T10:00:00Z"));
    }

    #[test]
    fn gone_and_long_failures_disable() {
        let policy = PacingPolicy::default();
        let now = at("2026-11-27T10:00:00Z");
        let gone = policy.after_failure("f", 1, now, now, failure(Some(410), None));
        assert!(gone.disable.unwrap().contains("410 Gone"));
        let week = policy.after_failure(
            "f",
            50,
            at("2026-11-20T09:00:00Z"),
            now,
            failure(Some(500), None),
        );
        assert!(week.disable.unwrap().contains("7days"));
        let day = policy.after_failure(
            "f",
            10,
            at("2026-11-26T09:00:00Z"),
            now,
            failure(Some(500), None),
        );
        assert_eq!(day.disable, None);
    }

    #[test]
    fn publisher_hints_are_lower_bounds_capped() {
        let policy = PacingPolicy::default();
        let now = at("2026-11-27T10:00:00Z");
        assert_eq!(policy.after_success(&[None, None], now), None);
        assert_eq!(
            policy.after_success(
                &[
                    Some(Duration::from_secs(1800)),
                    Some(Duration::from_secs(600))
                ],
                now
            ),
            Some(at("2026-11-27T10:30:00Z"))
        );
        assert_eq!(
            policy.after_success(&[Some(Duration::from_secs(7 * 24 * 3600))], now),
            Some(at("2026-11-27T16:00:00Z"))
        );
    }

    #[test]
    fn tick_jitter_is_stable_and_bounded() {
        let tick = at("2026-11-27T10:00:00Z");
        let max = Duration::from_secs(30);
        assert_eq!(tick_jitter("a", tick, max), tick_jitter("a", tick, max));
        assert!(tick_jitter("a", tick, max) < max);
    }

    #[test]
    fn tick_jitter_spreads_feeds_over_the_window() {
        let tick = at("2026-11-27T10:00:00Z");
        let max = Duration::from_secs(30);
        let jitters: Vec<Duration> = (0..200)
            .map(|i| tick_jitter(&format!("feed-{i}"), tick, max))
            .collect();
        let early = jitters.iter().filter(|j| **j < max / 4).count();
        let late = jitters.iter().filter(|j| **j > max * 3 / 4).count();
        assert!(
            (25..=75).contains(&early),
            "{early} of 200 in the first quarter"
        );
        assert!(
            (25..=75).contains(&late),
            "{late} of 200 in the last quarter"
        );
    }
}

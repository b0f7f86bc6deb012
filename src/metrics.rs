//! The daemon's Prometheus metrics: one registry, typed families, and methods named after what happened.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s output. Prometheus parses the
/// exposition by this header, so a handler must send exactly this.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the fetch-duration buckets, in seconds: a cached portal
/// answers in tens of milliseconds, a slow one takes seconds, and the fetch
/// timeout (30 s by default) caps the rest.
const FETCH_SECONDS_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    feed: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabels {
    feed: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutputLabels {
    output: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

/// The daemon's metrics. Cloning is cheap and every clone records into the
/// same registry, so the poller, the scheduler and the HTTP server each hold one.
///
/// Label values should come from bounded sets (configured feed names, route
/// templates, output names): every distinct value is a series kept until exit.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    polls: Family<PollLabels, Counter>,
    fetch_duration: Histogram,
    fetch_bytes: Family<FeedLabels, Counter>,
    items: Family<ItemLabels, Counter>,
    feeds_failing: Gauge,
    last_success: Family<FeedLabels, Gauge>,
    renders: Family<OutputLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    xml_repairs: Family<FeedLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut inner = Inner {
            registry: Registry::with_prefix("kabar"),
            polls: Family::default(),
            fetch_duration: Histogram::new(FETCH_SECONDS_BUCKETS),
            fetch_bytes: Family::default(),
            items: Family::default(),
            feeds_failing: Gauge::default(),
            last_success: Family::default(),
            renders: Family::default(),
            http_requests: Family::default(),
            xml_repairs: Family::default(),
        };
        // The encoder adds `_total` to counters and the unit to the name, so
        // names here carry neither (the crate asserts this in debug builds).
        let r = &mut inner.registry;
        r.register(
            "polls",
            "Polls by feed and outcome (stored, not_modified, failed, skipped)",
            inner.polls.clone(),
        );
        r.register_with_unit(
            "fetch_duration",
            "Time to fetch a feed body, over all feeds",
            Unit::Seconds,
            inner.fetch_duration.clone(),
        );
        r.register_with_unit(
            "fetch",
            "Feed body bytes fetched, after decompression",
            Unit::Bytes,
            inner.fetch_bytes.clone(),
        );
        r.register(
            "items",
            "Items seen by feed and result (new, duplicate)",
            inner.items.clone(),
        );
        r.register(
            "feeds_failing",
            "Feeds whose last poll failed",
            inner.feeds_failing.clone(),
        );
        r.register_with_unit(
            "feed_last_success_timestamp",
            "Unix time of the feed's last successful poll",
            Unit::Seconds,
            inner.last_success.clone(),
        );
        r.register(
            "output_renders",
            "Combined feeds rendered, by output",
            inner.renders.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            inner.http_requests.clone(),
        );
        r.register(
            "xml_repairs",
            "Fixes applied to malformed feed XML before parsing",
            inner.xml_repairs.clone(),
        );
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// Records one poll of `feed`. `outcome` is one of `stored`,
    /// `not_modified`, `failed`, `skipped`; `fetch_seconds` is absent when
    /// nothing was fetched (a skipped tick, or a failure before the request).
    pub fn record_poll(
        &self,
        feed: &str,
        outcome: &str,
        fetch_seconds: Option<f64>,
        bytes: u64,
        new: u64,
        duplicate: u64,
    ) {
        let m = &self.inner;
        m.polls
            .get_or_create(&PollLabels {
                feed: feed.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        // A NaN or negative duration would poison the histogram's sum forever.
        if let Some(seconds) = fetch_seconds.filter(|s| s.is_finite() && *s >= 0.0) {
            m.fetch_duration.observe(seconds);
        }
        // Series are created at zero on the feed's first poll, even when
        // nothing was fetched, so that increase() sees the first real increment.
        m.fetch_bytes
            .get_or_create(&FeedLabels {
                feed: feed.to_string(),
            })
            .inc_by(bytes);
        for (result, count) in [("new", new), ("duplicate", duplicate)] {
            m.items
                .get_or_create(&ItemLabels {
                    feed: feed.to_string(),
                    result: result.to_string(),
                })
                .inc_by(count);
        }
    }

    pub fn set_feeds_failing(&self, n: usize) {
        self.inner
            .feeds_failing
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_last_success(&self, feed: &str, unix_seconds: i64) {
        self.inner
            .last_success
            .get_or_create(&FeedLabels {
                feed: feed.to_string(),
            })
            .set(unix_seconds);
    }

    /// Records one rendering of the combined feed as `output` (e.g. `atom`).
    pub fn record_render(&self, output: &str) {
        self.inner
            .renders
            .get_or_create(&OutputLabels {
                output: output.to_string(),
            })
            .inc();
    }

    /// Records one answered request. `route` must be the matched route
    /// template (or a fixed name such as `unmatched`), never the raw path:
    /// scanners requesting random paths would otherwise create a series each.
    pub fn record_http(&self, route: &str, status: u16) {
        self.inner
            .http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// Records `n` XML repairs made while parsing `feed`.
    pub fn record_repairs(&self, feed: &str, n: u64) {
        self.inner
            .xml_repairs
            .get_or_create(&FeedLabels {
                feed: feed.to_string(),
            })
            .inc_by(n);
    }

    /// The whole registry in the OpenMetrics text format, ending in `# EOF`;
    /// serve it with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, and none of our metrics makes the
        // encoder fail; should a future one, a partial scrape beats a panic.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry) {
            tracing::warn!("cannot encode metrics: {e}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Sample lines as `name{labels}` -> value, and the HELP/TYPE lines seen.
    struct Exposition {
        samples: HashMap<String, String>,
        help: Vec<String>,
        types: HashMap<String, String>,
        eof: bool,
    }

    /// Labels within a sample are written in declaration order, so the
    /// sample key can be compared as text.
    fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition {
            samples: HashMap::new(),
            help: Vec::new(),
            types: HashMap::new(),
            eof: false,
        };
        for line in text.lines() {
            if line == "# EOF" {
                exposition.eof = true;
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').expect("HELP has a name and text");
                exposition.help.push(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE has a name and kind");
                exposition.types.insert(name.to_string(), kind.to_string());
            } else if line.starts_with('#') {
                // # UNIT lines: checked through the names they produce.
            } else {
                let (key, value) = line.rsplit_once(' ').expect("a sample has a value");
                let previous = exposition
                    .samples
                    .insert(key.to_string(), value.to_string());
                assert!(previous.is_none(), "sample {key} appears twice");
            }
        }
        exposition
    }

    fn check_sample(exposition: &Exposition, key: &str, expected: &str) {
        match exposition.samples.get(key) {
            Some(value) => assert_eq!(value, expected, "value of {key}"),
            None => panic!(
                "no sample {key}; samples: {:#?}",
                exposition.samples.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// A family without series is left out of the text, so every method is
    /// called once first.
    #[test]
    fn every_family_has_help_and_type() {
        let metrics = Metrics::new();
        metrics.record_poll("f", "stored", Some(0.1), 10, 1, 0);
        metrics.set_last_success("f", 1);
        metrics.record_render("atom");
        metrics.record_http("/feed.atom", 200);
        metrics.record_repairs("f", 1);
        let exposition = parse(&metrics.encode());
        for (family, kind) in [
            ("kabar_polls", "counter"),
            ("kabar_fetch_duration_seconds", "histogram"),
            ("kabar_fetch_bytes", "counter"),
            ("kabar_items", "counter"),
            ("kabar_feeds_failing", "gauge"),
            ("kabar_feed_last_success_timestamp_seconds", "gauge"),
            ("kabar_output_renders", "counter"),
            ("kabar_http_requests", "counter"),
            ("kabar_xml_repairs", "counter"),
        ] {
            assert!(
                exposition.help.iter().any(|h| h == family),
                "no HELP for {family}"
            );
            assert_eq!(
                exposition.types.get(family).map(String::as_str),
                Some(kind),
                "TYPE of {family}"
            );
        }
        assert!(exposition.eof, "OpenMetrics text must end with # EOF");
    }

    #[test]
    fn polls_count_outcomes_bytes_and_items_per_feed() {
        let metrics = Metrics::new();
        metrics.record_poll("tribun-jabar", "stored", Some(0.2), 1000, 3, 1);
        metrics.record_poll("tribun-jabar", "stored", Some(1.5), 500, 2, 4);
        metrics.record_poll("tribun-jabar", "not_modified", Some(0.03), 0, 0, 0);
        metrics.record_poll("antara-jabar", "failed", None, 0, 0, 0);
        metrics.record_poll("antara-jabar", "skipped", None, 0, 0, 0);
        let e = parse(&metrics.encode());
        for (key, value) in [
            (
                r#"kabar_polls_total{feed="tribun-jabar",outcome="stored"}"#,
                "2",
            ),
            (
                r#"kabar_polls_total{feed="tribun-jabar",outcome="not_modified"}"#,
                "1",
            ),
            (
                r#"kabar_polls_total{feed="antara-jabar",outcome="failed"}"#,
                "1",
            ),
            (
                r#"kabar_polls_total{feed="antara-jabar",outcome="skipped"}"#,
                "1",
            ),
            (r#"kabar_fetch_bytes_total{feed="tribun-jabar"}"#, "1500"),
            (r#"kabar_fetch_bytes_total{feed="antara-jabar"}"#, "0"),
            (
                r#"kabar_items_total{feed="tribun-jabar",result="new"}"#,
                "5",
            ),
            (
                r#"kabar_items_total{feed="tribun-jabar",result="duplicate"}"#,
                "5",
            ),
            (
                r#"kabar_items_total{feed="antara-jabar",result="new"}"#,
                "0",
            ),
        ] {
            check_sample(&e, key, value);
        }
    }

    #[test]
    fn fetch_durations_fall_into_cumulative_buckets() {
        let metrics = Metrics::new();
        // Binary fractions, so that the sum is exact; 0.25 is a bucket bound,
        // and bounds are inclusive.
        for seconds in [0.0078125, 0.25, 1.5, 45.0, 120.0] {
            metrics.record_poll("f", "stored", Some(seconds), 0, 0, 0);
        }
        // Not observed: nothing was fetched, or the duration is nonsense.
        metrics.record_poll("f", "failed", None, 0, 0, 0);
        metrics.record_poll("f", "failed", Some(f64::NAN), 0, 0, 0);
        metrics.record_poll("f", "failed", Some(-1.0), 0, 0, 0);
        let e = parse(&metrics.encode());
        for (le, count) in [
            ("0.01", "1"),
            ("0.1", "1"),
            ("0.25", "2"),
            ("2.5", "3"),
            ("30.0", "3"),
            ("60.0", "4"),
            ("+Inf", "5"),
        ] {
            check_sample(
                &e,
                &format!(r#"kabar_fetch_duration_seconds_bucket{{le="{le}"}}"#),
                count,
            );
        }
        check_sample(&e, "kabar_fetch_duration_seconds_count", "5");
        check_sample(&e, "kabar_fetch_duration_seconds_sum", "166.7578125");
    }

    #[test]
    fn gauges_hold_the_last_value_set() {
        let metrics = Metrics::new();
        metrics.set_feeds_failing(3);
        metrics.set_feeds_failing(2);
        metrics.set_last_success("tribun-jabar", 1_700_000_000);
        metrics.set_last_success("tribun-jabar", 1_700_000_900);
        let e = parse(&metrics.encode());
        check_sample(&e, "kabar_feeds_failing", "2");
        check_sample(
            &e,
            r#"kabar_feed_last_success_timestamp_seconds{feed="tribun-jabar"}"#,
            "1700000900",
        );
    }

    #[test]
    fn renders_requests_and_repairs_are_counted_by_label() {
        let metrics = Metrics::new();
        metrics.record_render("atom");
        metrics.record_render("atom");
        metrics.record_http("/feed.atom", 200);
        metrics.record_http("/feed.atom", 200);
        metrics.record_http("/feed.atom", 304);
        metrics.record_http("unmatched", 404);
        metrics.record_repairs("suara-jatim", 7);
        metrics.record_repairs("suara-jatim", 0);
        metrics.record_repairs("suara-jatim", 2);
        let e = parse(&metrics.encode());
        for (key, value) in [
            (r#"kabar_output_renders_total{output="atom"}"#, "2"),
            (
                r#"kabar_http_requests_total{route="/feed.atom",status="200"}"#,
                "2",
            ),
            (
                r#"kabar_http_requests_total{route="/feed.atom",status="304"}"#,
                "1",
            ),
            (
                r#"kabar_http_requests_total{route="unmatched",status="404"}"#,
                "1",
            ),
            (r#"kabar_xml_repairs_total{feed="suara-jatim"}"#, "9"),
        ] {
            check_sample(&e, key, value);
        }
    }

    #[test]
    fn clones_record_into_one_registry() {
        let metrics = Metrics::new();
        let clone = metrics.clone();
        clone.record_render("atom");
        metrics.record_render("atom");
        check_sample(
            &parse(&metrics.encode()),
            r#"kabar_output_renders_total{output="atom"}"#,
            "2",
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.record_repairs("odd \"name\"\\", 1);
        check_sample(
            &parse(&metrics.encode()),
            r#"kabar_xml_repairs_total{feed="odd \"name\"\\"}"#,
            "1",
        );
    }
}

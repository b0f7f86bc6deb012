//! The `/status` page: feed health as one self-contained HTML document (no JavaScript). Pure.
//!
//! Feed names and URLs come from the config and error messages from remote
//! servers, so every string from the data goes through [`escape`], and a URL
//! becomes a link only when it is plainly http(s). Void elements are written
//! self-closed and the CSS avoids `<`, `>` and `&`, so the page is also
//! well-formed XML, which lets the tests check its structure with quick-xml.

use std::collections::HashMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::status::{self, Health};
use crate::store::FeedStatus;

pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Days the per-feed sparkline covers.
pub const DAYS: usize = 14;

/// Items per day for one feed, oldest day first, exactly [`DAYS`] values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCounts {
    pub feed: String,
    pub counts: Vec<u32>,
}

/// Horizontal distance between the sparkline's bars; the bar is narrower, leaving a gap.
const BAR_STEP: u32 = 6;
const BAR_WIDTH: u32 = 4;
const SPARK_WIDTH: u32 = DAYS as u32 * BAR_STEP;
const SPARK_HEIGHT: u32 = 20;

/// A remote server's error can be a whole HTML page; the row stays readable
/// and `kabar status --json` has the full text.
const MAX_ERROR_CHARS: usize = 300;

/// Colour is never the only signal: every state is also written out.
const STYLE: &str = "\
body{font:15px/1.4 system-ui,sans-serif;margin:1rem;color:#1a1a1a;background:#fff}\
h1{font-size:1.3rem;margin:0 0 .4rem}\
.summary{margin:0 0 1rem}\
.banner{border:2px solid #b00020;background:#fde7ea;color:#5a0010;padding:.6rem .8rem;margin:0 0 1rem;border-radius:4px}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;min-width:100%}\
th,td{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;white-space:nowrap}\
td.num{text-align:right}\
td.error{white-space:normal;min-width:14rem;overflow-wrap:anywhere}\
.url{display:block;color:#666;font-size:.85em}\
.state{font-weight:600}\
.state-ok{color:#1b7a2e}.state-failing{color:#b00020}.state-disabled{color:#a35a00}.state-removed{color:#666}\
svg.spark rect{fill:#3a6ea5}svg.spark rect.zero{fill:#bbb}\
.none{color:#666}";

/// The whole page. `daily` is matched to feeds by name; a feed without counts
/// shows "no data" instead of a sparkline.
pub fn render(
    title: &str,
    statuses: &[FeedStatus],
    daily: &[DailyCounts],
    now: DateTime<Utc>,
    reload_error: Option<&str>,
) -> String {
    let daily: HashMap<&str, &[u32]> = daily
        .iter()
        .map(|d| (d.feed.as_str(), d.counts.as_slice()))
        .collect();
    let title = escape(title);
    let mut out = String::with_capacity(4096 + statuses.len() * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"id\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(out, "<title>{title}</title>\n<style>{STYLE}</style>");
    out.push_str("</head>\n<body>\n");
    let _ = writeln!(out, "<h1>{title}</h1>");
    summary(&mut out, statuses, now);
    if let Some(error) = reload_error {
        let _ = writeln!(
            out,
            "<div class=\"banner\" role=\"alert\"><strong>Config reload refused</strong>; \
             the running config is kept: {}</div>",
            escape(error)
        );
    }
    out.push_str("<div class=\"scroll\">\n<table>\n<thead><tr>");
    let sparkline_header = format!("Last {DAYS} days");
    for header in [
        "Feed",
        "Region",
        "State",
        "Last success",
        "Failures",
        "Next due",
        "Items 24 h",
        &sparkline_header,
        "Last error",
    ] {
        let _ = write!(out, "<th scope=\"col\">{header}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if statuses.is_empty() {
        out.push_str("<tr><td colspan=\"9\">No feeds.</td></tr>\n");
    }
    for s in status::ordered(statuses) {
        row(&mut out, s, daily.get(s.name.as_str()).copied(), now);
    }
    out.push_str("</tbody>\n</table>\n</div>\n</body>\n</html>\n");
    out
}

fn summary(out: &mut String, statuses: &[FeedStatus], now: DateTime<Utc>) {
    let count = |health: Health| {
        statuses
            .iter()
            .filter(|s| status::health(s) == health)
            .count()
    };
    let items: i64 = statuses.iter().map(|s| s.items_last_24h).sum();
    let _ = writeln!(
        out,
        "<p class=\"summary\">{} {}: {} ok, {} failing, {} disabled, {} removed; \
         {items} items in the last 24 h. As of {}.</p>",
        statuses.len(),
        if statuses.len() == 1 { "feed" } else { "feeds" },
        count(Health::Ok),
        count(Health::Failing),
        count(Health::Disabled),
        count(Health::Removed),
        time_element(now, &format!("{} UTC", now.format("%Y-%m-%d %H:%M"))),
    );
}

fn row(out: &mut String, s: &FeedStatus, daily: Option<&[u32]>, now: DateTime<Utc>) {
    let state = status::health(s).label();
    out.push_str("<tr>");
    if is_web_url(&s.url) {
        let _ = write!(
            out,
            "<td><a href=\"{}\" rel=\"noreferrer\">{}</a></td>",
            escape(&s.url),
            escape(&s.name)
        );
    } else {
        // A scheme such as `javascript:` must never become a link; show it as text.
        let _ = write!(
            out,
            "<td>{}<span class=\"url\">{}</span></td>",
            escape(&s.name),
            escape(&s.url)
        );
    }
    let _ = write!(out, "<td>{}</td>", escape(&s.region));
    let _ = write!(out, "<td class=\"state state-{state}\">{state}</td>");
    let last_success = match s.last_success_at {
        Some(t) => time_element(t, &status::ago(Some(t), now)),
        None => "never".to_string(),
    };
    let _ = write!(out, "<td>{last_success}</td>");
    let _ = write!(out, "<td class=\"num\">{}</td>", s.consecutive_failures);
    let next_due = match s.next_due {
        Some(t) => time_element(t, &format!("{} UTC", t.format("%Y-%m-%d %H:%M"))),
        None => "-".to_string(),
    };
    let _ = write!(out, "<td>{next_due}</td>");
    let _ = write!(out, "<td class=\"num\">{}</td>", s.items_last_24h);
    let _ = write!(out, "<td>{}</td>", sparkline(daily));
    let error = crate::text::truncate_words(&status::last_error(s), MAX_ERROR_CHARS);
    let _ = writeln!(out, "<td class=\"error\">{}</td></tr>", escape(&error));
}

/// A `<time>` carrying the exact instant, with `text` shown and the exact UTC time on hover.
fn time_element(t: DateTime<Utc>, text: &str) -> String {
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        escape(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        escape(&t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        escape(text)
    )
}

/// Items per day as bars: bars rather than a line, so a single day and a run
/// of zeros still draw something. Bars are right-aligned, so the newest day
/// is always at the right edge even when fewer than [`DAYS`] are known.
fn sparkline(counts: Option<&[u32]>) -> String {
    let counts = counts.unwrap_or_default();
    let counts = &counts[counts.len().saturating_sub(DAYS)..];
    if counts.is_empty() {
        return "<span class=\"none\">no data</span>".to_string();
    }
    // At least 1, so an all-zero series does not divide by zero.
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let numbers: Vec<String> = counts.iter().map(u32::to_string).collect();
    let label = escape(&format!(
        "Items per day, last {} days, oldest first: {}",
        counts.len(),
        numbers.join(", ")
    ));
    let mut svg = format!(
        "<svg class=\"spark\" width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\" \
         viewBox=\"0 0 {SPARK_WIDTH} {SPARK_HEIGHT}\" role=\"img\" aria-label=\"{label}\">\
         <title>{label}</title>"
    );
    let first_x = (DAYS - counts.len()) as u32 * BAR_STEP;
    for (i, &count) in counts.iter().enumerate() {
        let x = first_x + i as u32 * BAR_STEP;
        // A zero day is a 1 px grey stub: visible as "nothing", distinct from a small count.
        let (height, class) = if count == 0 {
            (1, " class=\"zero\"")
        } else {
            let scaled = (u64::from(count) * u64::from(SPARK_HEIGHT - 1)).div_ceil(u64::from(max));
            (scaled.max(2) as u32, "")
        };
        let y = SPARK_HEIGHT - height;
        let _ = write!(
            svg,
            "<rect{class} x=\"{x}\" y=\"{y}\" width=\"{BAR_WIDTH}\" height=\"{height}\"/>"
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Whether `url` may go in an `href`: only plain http(s), case-insensitively.
fn is_web_url(url: &str) -> bool {
    let starts = |prefix: &str| {
        url.as_bytes()
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    starts("http://") || starts("https://")
}

/// Escapes text for HTML element content and quoted attribute values alike.
/// Characters XML forbids (control characters) are dropped: they are parse
/// errors in HTML too, and a remote error message may carry them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if crate::text::is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use quick_xml::Reader;
    use quick_xml::XmlVersion;
    use quick_xml::events::{BytesStart, Event};

    use super::*;
    use crate::fetch::Validators;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    /// A healthy feed polled five minutes ago; tests change what they need.
    fn feed(name: &str) -> FeedStatus {
        FeedStatus {
            name: name.into(),
            url: format!("https://{name}.example/rss"),
            region: "Jawa Timur".into(),
            active: true,
            state: "active".into(),
            disabled_reason: None,
            not_before: None,
            skipped_ticks: 0,
            items_last_24h: 3,
            last_polled_at: Some(now() - Duration::minutes(5)),
            last_success_at: Some(now() - Duration::minutes(5)),
            last_error_kind: None,
            last_error: None,
            consecutive_failures: 0,
            next_due: Some(now() + Duration::minutes(10)),
            validators: Validators::default(),
            item_count: 40,
            polling_instance: None,
        }
    }

    fn failing(name: &str) -> FeedStatus {
        FeedStatus {
            consecutive_failures: 2,
            last_error_kind: Some("http".into()),
            last_error: Some("503 Service Unavailable".into()),
            ..feed(name)
        }
    }

    fn disabled(name: &str) -> FeedStatus {
        FeedStatus {
            state: "disabled".into(),
            disabled_reason: Some("410 Gone".into()),
            next_due: None,
            ..feed(name)
        }
    }

    fn removed(name: &str) -> FeedStatus {
        FeedStatus {
            active: false,
            ..feed(name)
        }
    }

    fn page(statuses: &[FeedStatus]) -> String {
        render("kabar status", statuses, &[], now(), None)
    }

    /// An element read back with quick-xml, with its attributes.
    #[derive(Debug)]
    struct Element {
        name: String,
        attributes: Vec<(String, String)>,
    }

    impl Element {
        fn new(e: &BytesStart) -> Element {
            let attributes = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let value = a
                        .normalized_value(XmlVersion::Explicit1_0)
                        .unwrap()
                        .into_owned();
                    (a.key.as_ref().to_string(), value)
                })
                .collect();
            Element {
                name: e.name().as_ref().to_string(),
                attributes,
            }
        }

        fn attr(&self, key: &str) -> Option<&str> {
            self.attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Reads `markup` as XML, failing on a mismatched or unclosed tag, and
    /// returns its elements in document order.
    fn well_formed(markup: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(markup);
        let mut open: Vec<String> = Vec::new();
        let mut elements = Vec::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    let element = Element::new(&e);
                    open.push(element.name.clone());
                    elements.push(element);
                }
                Event::Empty(e) => elements.push(Element::new(&e)),
                Event::End(e) => {
                    assert_eq!(open.pop().as_deref(), Some(e.name().as_ref()));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        elements
    }

    fn svg_fragments(html: &str) -> Vec<&str> {
        html.match_indices("<svg")
            .map(|(start, _)| {
                let end = start + html[start..].find("</svg>").unwrap() + "</svg>".len();
                &html[start..end]
            })
            .collect()
    }

    fn check_escape(input: &str, expected: &str) {
        assert_eq!(escape(input), expected, "escaping {input:?}");
    }

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        check_escape("Radar Jember", "Radar Jember");
        check_escape("<script>", "&lt;script&gt;");
        check_escape("a & b", "a &amp; b");
        check_escape(r#"say "hi" 'there'"#, "say &quot;hi&quot; &#39;there&#39;");
        check_escape("&amp;", "&amp;amp;");
        check_escape("bell\u{7}nul\u{0}", "bellnul");
        check_escape("Pontianak — Kalbar", "Pontianak — Kalbar");
    }

    #[test]
    fn is_a_well_formed_html5_document_in_indonesian() {
        let html = render(
            "kabar status",
            &[feed("a"), failing("b"), disabled("c"), removed("d")],
            &[DailyCounts {
                feed: "a".into(),
                counts: vec![1; DAYS],
            }],
            now(),
            Some("bad cron"),
        );
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"id\">"));
        assert!(!html.contains("<script"), "no JavaScript");
        let elements = well_formed(&html);
        assert_eq!(elements[0].name, "html");
        assert_eq!(elements[0].attr("lang"), Some("id"));
        let count = |name: &str| elements.iter().filter(|e| e.name == name).count();
        assert_eq!(count("tr"), 5, "a header row and one row per feed");
        assert_eq!(count("th"), 9);
        assert_eq!(count("td"), 4 * 9);
        assert!(
            elements
                .iter()
                .any(|e| e.name == "meta" && e.attr("name") == Some("viewport"))
        );
    }

    #[test]
    fn hostile_names_urls_and_errors_are_escaped() {
        let hostile = FeedStatus {
            name: r#"<script>alert("x")</script> & 'co'"#.into(),
            url: r#"https://x.example/?a=1&b="><script>"#.into(),
            region: r#""><b>bold</b>"#.into(),
            last_error_kind: Some("parse".into()),
            last_error: Some("<img src=x onerror=alert(1)> at line 3".into()),
            ..failing("x")
        };
        let html = render(
            "Status <&>",
            &[hostile],
            &[DailyCounts {
                feed: r#"<script>alert("x")</script> & 'co'"#.into(),
                counts: vec![0; DAYS],
            }],
            now(),
            Some("</div><script>alert(2)</script>"),
        );
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>"));
        assert!(
            html.contains(
                "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;</a>"
            )
        );
        assert!(html.contains(
            r#"<a href="https://x.example/?a=1&amp;b=&quot;&gt;&lt;script&gt;" rel="noreferrer">"#
        ));
        assert!(html.contains("parse: &lt;img src=x onerror=alert(1)&gt; at line 3"));
        assert!(html.contains("<title>Status &lt;&amp;&gt;</title>"));
        assert!(html.contains("&lt;/div&gt;&lt;script&gt;alert(2)&lt;/script&gt;</div>"));
        let link = well_formed(&html)
            .into_iter()
            .find(|e| e.name == "a")
            .unwrap();
        assert_eq!(
            link.attr("href"),
            Some(r#"https://x.example/?a=1&b="><script>"#)
        );
    }

    #[test]
    fn only_http_urls_become_links() {
        let statuses = [
            FeedStatus {
                url: "javascript:alert(1)".into(),
                ..feed("js")
            },
            FeedStatus {
                url: "data:text/html,<b>x</b>".into(),
                ..feed("data")
            },
            FeedStatus {
                url: "HTTPS://Radar.Example/rss".into(),
                ..feed("upper")
            },
            feed("plain"),
        ];
        let html = page(&statuses);
        let hrefs: Vec<String> = well_formed(&html)
            .iter()
            .filter_map(|e| e.attr("href").map(str::to_string))
            .collect();
        assert_eq!(
            hrefs,
            ["https://plain.example/rss", "HTTPS://Radar.Example/rss"]
        );
        assert!(html.contains("js<span class=\"url\">javascript:alert(1)</span>"));
        assert!(html.contains("data:text/html,&lt;b&gt;x&lt;/b&gt;"));
    }

    #[test]
    fn failing_and_disabled_feeds_come_first_like_the_text_table() {
        let statuses = [
            feed("a-ok"),
            removed("b-removed"),
            disabled("c-disabled"),
            failing("d-failing"),
        ];
        let html = page(&statuses);
        let position = |name: &str| html.find(&format!(">{name}</a>")).unwrap();
        let order = ["c-disabled", "d-failing", "a-ok", "b-removed"];
        assert!(order.windows(2).all(|w| position(w[0]) < position(w[1])));
        let table_order: Vec<&str> = status::ordered(&statuses)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(table_order, order);
        for state in ["ok", "failing", "disabled", "removed"] {
            assert!(html.contains(&format!("<td class=\"state state-{state}\">{state}</td>")));
        }
        assert!(html.contains("<td class=\"error\">410 Gone</td>"));
        assert!(html.contains("<td class=\"error\">http: 503 Service Unavailable</td>"));
    }

    #[test]
    fn summary_counts_feeds_by_state_and_items() {
        let statuses = [
            feed("a"),
            feed("b"),
            failing("c"),
            disabled("d"),
            removed("e"),
        ];
        let html = page(&statuses);
        assert!(html.contains(
            "5 feeds: 2 ok, 1 failing, 1 disabled, 1 removed; 15 items in the last 24 h."
        ));
        assert!(html.contains("datetime=\"2025-03-01T12:00:00Z\""));
    }

    #[test]
    fn times_are_relative_with_the_exact_instant_attached() {
        let never = FeedStatus {
            last_success_at: None,
            ..disabled("never")
        };
        let html = page(&[feed("a"), never]);
        assert!(html.contains(
            "<time datetime=\"2025-03-01T11:55:00Z\" title=\"2025-03-01 11:55:00 UTC\">5 min ago</time>"
        ));
        assert!(html.contains("<td>never</td>"));
        assert!(html.contains(">2025-03-01 12:10 UTC</time>"));
        assert!(html.contains("<td>-</td>"), "a disabled feed is not due");
    }

    #[test]
    fn sparkline_has_one_bar_per_day_and_names_the_numbers() {
        let counts: Vec<u32> = (0..DAYS as u32).collect();
        let html = render(
            "s",
            &[feed("a")],
            &[DailyCounts {
                feed: "a".into(),
                counts: counts.clone(),
            }],
            now(),
            None,
        );
        let svgs = svg_fragments(&html);
        assert_eq!(svgs.len(), 1);
        let elements = well_formed(svgs[0]);
        let svg = &elements[0];
        assert_eq!(svg.attr("width"), Some(SPARK_WIDTH.to_string().as_str()));
        assert_eq!(svg.attr("height"), Some(SPARK_HEIGHT.to_string().as_str()));
        let bars: Vec<&Element> = elements.iter().filter(|e| e.name == "rect").collect();
        assert_eq!(bars.len(), DAYS);
        let heights: Vec<u32> = bars
            .iter()
            .map(|b| b.attr("height").unwrap().parse().unwrap())
            .collect();
        assert_eq!(heights[0], 1, "the zero day is a stub");
        assert_eq!(
            heights[DAYS - 1],
            SPARK_HEIGHT - 1,
            "the busiest day is tallest"
        );
        assert!(heights.windows(2).all(|w| w[0] <= w[1]));
        assert!(svgs[0].contains(
            "<title>Items per day, last 14 days, oldest first: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13</title>"
        ));
    }

    #[test]
    fn all_zero_single_day_and_missing_sparklines() {
        let html = render(
            "s",
            &[feed("zero"), feed("one"), feed("none")],
            &[
                DailyCounts {
                    feed: "zero".into(),
                    counts: vec![0; DAYS],
                },
                DailyCounts {
                    feed: "one".into(),
                    counts: vec![7],
                },
            ],
            now(),
            None,
        );
        // Rows are ordered by name: none, one, zero.
        let svgs = svg_fragments(&html);
        assert_eq!(svgs.len(), 2);
        let one = well_formed(svgs[0]);
        let bar = one.iter().find(|e| e.name == "rect").unwrap();
        let last_x = ((DAYS as u32 - 1) * BAR_STEP).to_string();
        assert_eq!(
            bar.attr("x"),
            Some(last_x.as_str()),
            "the newest day is at the right"
        );
        assert_eq!(bar.attr("height"), Some("19"));
        let zero = well_formed(svgs[1]);
        let bars: Vec<&Element> = zero.iter().filter(|e| e.name == "rect").collect();
        assert_eq!(bars.len(), DAYS);
        assert!(bars.iter().all(|b| b.attr("class") == Some("zero")
            && b.attr("height") == Some("1")
            && b.attr("y") == Some("19")));
        assert!(!html.contains("NaN"));
        assert!(html.contains("<span class=\"none\">no data</span>"));
    }

    #[test]
    fn banner_shows_a_refused_reload_only_when_there_is_one() {
        let with = render(
            "s",
            &[feed("a")],
            &[],
            now(),
            Some("feeds[2].schedule: bad"),
        );
        assert!(with.contains(
            "<div class=\"banner\" role=\"alert\"><strong>Config reload refused</strong>; \
             the running config is kept: feeds[2].schedule: bad</div>"
        ));
        well_formed(&with);
        assert!(!page(&[feed("a")]).contains("class=\"banner\""));
    }

    #[test]
    fn one_feed_is_not_plural() {
        assert!(page(&[feed("a")]).contains("1 feed: 1 ok"));
    }

    #[test]
    fn no_feeds_still_renders_a_page() {
        let html = page(&[]);
        assert!(html.contains("0 feeds: 0 ok"));
        assert!(html.contains("<td colspan=\"9\">No feeds.</td>"));
        well_formed(&html);
    }

    #[test]
    fn long_errors_are_cut() {
        let html = page(&[FeedStatus {
            last_error: Some("kata ".repeat(200)),
            ..failing("long")
        }]);
        let cell = html.split("<td class=\"error\">").nth(1).unwrap();
        let text = &cell[..cell.find("</td>").unwrap()];
        assert!(text.chars().count() <= MAX_ERROR_CHARS + 1);
        assert!(text.ends_with('…'));
    }
}

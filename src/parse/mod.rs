//! Bytes of a feed or news sitemap -> the project's own `ParsedFeed`. Pure: no I/O, no config.
//!
//! One body goes through decoding (`encoding`), lenient XML repair (`repair`),
//! then feed-rs (RSS, Atom, JSON Feed) or the news sitemap reader (`sitemap`).
//! When that fails on an HTML page, `html` names the feed the page advertises.

pub mod encoding;
pub mod html;
pub mod repair;
pub mod sitemap;

use chrono::FixedOffset;
use feed_rs::model::{Entry, Feed, Link, Text};
use thiserror::Error;
use url::Url;

pub use crate::domain::SourceKind;
use crate::domain::{FeedMeta, ParsedFeed, RawItem};
pub use encoding::CharsetSource;
pub use repair::Repairs;

/// One fetched body and what is known about it.
#[derive(Debug, Clone, Copy)]
pub struct ParseInput<'a> {
    pub body: &'a [u8],
    /// Where the body was fetched from, after redirects; relative links resolve against it.
    pub base_url: &'a str,
    /// The HTTP Content-Type header, for its charset.
    pub content_type: Option<&'a str>,
    /// The feed's configured charset label; wins over every label in the body.
    pub encoding_override: Option<&'a str>,
    pub kind: SourceKind,
    /// Dates without a zone are read in this offset (the feed's time zone).
    pub timezone: FixedOffset,
}

/// A parsed source, with what it took to read it (for logs and metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseOutput {
    pub feed: ParsedFeed,
    /// The charset the body was decoded with (WHATWG name, e.g. `windows-1252`).
    pub charset: String,
    pub charset_source: CharsetSource,
    /// Whether bytes invalid in that charset were replaced with U+FFFD.
    pub replaced_invalid_bytes: bool,
    /// What the lenient XML repair changed; all zero for JSON and clean XML.
    pub repairs: Repairs,
}

/// Why a body could not be read; `kind()` names the class recorded on the feed.
#[derive(Debug, Error)]
pub enum ParseError {
    /// The server sent an HTML page (a home page, a bot-protection challenge).
    #[error("not a readable feed: the server sent an HTML page{}", advertised_hint(.advertised))]
    NotAFeed {
        /// The feed the page advertises, absolute.
        advertised: Option<String>,
    },
    #[error(
        "unknown character encoding {label:?} in the feed's encoding override; use a label such as \"windows-1252\", \"iso-8859-1\" or \"utf-8\""
    )]
    Encoding { label: String },
    #[error("not a readable feed: {message}")]
    Malformed { message: String },
}

fn advertised_hint(advertised: &Option<String>) -> String {
    match advertised {
        Some(url) => format!(" that advertises the feed {url}; point the feed's url there"),
        None => " that advertises no feed; check the feed's url in a browser".to_string(),
    }
}

impl ParseError {
    /// A short, stable name for the failure class, stored with the feed's last error.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::NotAFeed { .. } => "not_a_feed",
            ParseError::Encoding { .. } => "encoding",
            ParseError::Malformed { .. } => "parse",
        }
    }
}

/// Decodes, repairs and parses one fetched body.
pub fn parse_source(input: &ParseInput) -> Result<ParseOutput, ParseError> {
    let decoded = encoding::decode(input.body, input.content_type, input.encoding_override)
        .map_err(|encoding::UnknownLabel(label)| ParseError::Encoding { label })?;
    let is_json = input.kind == SourceKind::Feed && looks_like_json(&decoded.text);
    // JSON has no entities or CDATA; XML repair would only damage it.
    let (text, repairs) = if is_json {
        (
            std::borrow::Cow::Borrowed(decoded.text.as_ref()),
            Repairs::default(),
        )
    } else {
        repair::repair_xml(&decoded.text)
    };
    let parsed = match input.kind {
        SourceKind::Feed => feed_parser(input.base_url, input.timezone)
            .parse(text.as_bytes())
            .map(|feed| convert(feed, Url::parse(input.base_url).ok().as_ref()))
            .map_err(|e| ParseError::Malformed {
                message: feed_error_message(&e, &text),
            }),
        SourceKind::NewsSitemap => sitemap::parse_news_sitemap(&text, input.base_url),
    };
    let mut feed = parsed.map_err(|e| {
        if html::looks_like_html(&text) {
            ParseError::NotAFeed {
                advertised: html::advertised_feed(&text, input.base_url),
            }
        } else {
            e
        }
    })?;
    if let Some(hint) = syndication_hint(&text) {
        feed.meta.refresh_hint = feed.meta.refresh_hint.max(Some(hint));
    }
    Ok(ParseOutput {
        feed,
        charset: decoded.charset.to_string(),
        charset_source: decoded.source,
        replaced_invalid_bytes: decoded.replaced_invalid_bytes,
        repairs,
    })
}

/// The RSS syndication module's hint (`sy:updatePeriod` / `sy:updateFrequency`):
/// the feed changes `frequency` times per period, so polling more often is waste.
fn syndication_hint(text: &str) -> Option<std::time::Duration> {
    static PERIOD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"<(?:\w+:)?updatePeriod>\s*(hourly|daily|weekly|monthly|yearly)\s*<")
            .expect("static regex")
    });
    static FREQUENCY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"<(?:\w+:)?updateFrequency>\s*(\d{1,6})\s*<").expect("static regex")
    });
    let period = PERIOD.captures(text)?;
    let seconds: u64 = match &period[1] {
        "hourly" => 3600,
        "daily" => 86_400,
        "weekly" => 7 * 86_400,
        "monthly" => 30 * 86_400,
        _ => 365 * 86_400,
    };
    let frequency: u64 = FREQUENCY
        .captures(text)
        .and_then(|c| c[1].parse().ok())
        .filter(|f| *f > 0)
        .unwrap_or(1);
    Some(std::time::Duration::from_secs(seconds / frequency))
}

/// Parses a feed body (RSS, Atom, JSON Feed) with no header or override known;
/// zone-less dates are read as WIB.
/// `base_url` (the URL it was fetched from, after redirects) resolves relative item links.
pub fn parse_feed(body: &[u8], base_url: &str) -> Result<ParsedFeed, ParseError> {
    parse_source(&ParseInput {
        body,
        base_url,
        content_type: None,
        encoding_override: None,
        kind: SourceKind::Feed,
        timezone: crate::dates::jakarta(),
    })
    .map(|output| output.feed)
}

/// The one place the feed-rs parser is configured (a timestamp parser for
/// Indonesian dates plugs in here).
fn feed_parser(base_url: &str, timezone: FixedOffset) -> feed_rs::parser::Parser {
    feed_rs::parser::Builder::new()
        .base_uri(Some(base_url))
        // Indonesian day and month names, WIB/WITA/WIT and zone-less dates.
        .timestamp_parser(move |text| crate::dates::parse_timestamp(text, timezone))
        // kabar cleans HTML itself, with its own allowlist and rules.
        .sanitize_content(false)
        .build()
}

/// feed-rs decides JSON by the first `{` or `<`; do the same.
fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
        .starts_with('{')
}

fn feed_error_message(error: &feed_rs::parser::ParseFeedError, text: &str) -> String {
    // The admin most likely configured a sitemap as a feed.
    if text.contains("<urlset") || text.contains(":urlset") {
        format!("{error}; this looks like a news sitemap, so configure the source as one")
    } else {
        error.to_string()
    }
}

fn convert(feed: Feed, base: Option<&Url>) -> ParsedFeed {
    let meta = FeedMeta {
        title: feed.title.map(|t| t.content.trim().to_string()),
        site_link: alternate_link(&feed.links, base),
        // feed-rs invents an id for RSS feeds; only an Atom/JSON id is the feed's own.
        id: match feed.feed_type {
            feed_rs::model::FeedType::Atom | feed_rs::model::FeedType::JSON => {
                Some(feed.id).filter(|id| !id.is_empty())
            }
            _ => None,
        },
        updated: feed.updated,
        // RSS ttl is in minutes.
        refresh_hint: feed
            .ttl
            .filter(|m| *m > 0)
            .map(|m| std::time::Duration::from_secs(u64::from(m) * 60)),
    };
    let items = feed
        .entries
        .into_iter()
        .map(|entry| convert_entry(entry, base))
        .collect();
    ParsedFeed { meta, items }
}

fn convert_entry(entry: Entry, base: Option<&Url>) -> RawItem {
    let link = alternate_link(&entry.links, base);
    let image = entry
        .media
        .iter()
        .flat_map(|m| m.content.iter())
        .find(|c| c.content_type.as_ref().is_none_or(|t| t.ty() == "image"))
        .and_then(|c| c.url.as_ref().map(|u| u.to_string()))
        .or_else(|| {
            entry
                .media
                .iter()
                .flat_map(|m| m.thumbnails.iter())
                .map(|t| t.image.uri.clone())
                .next()
        });
    RawItem {
        title: entry.title.map(text_content),
        link,
        guid: Some(entry.id).filter(|id| !id.is_empty()),
        published: entry.published,
        updated: entry.updated,
        summary: entry.summary.map(text_content),
        content: entry.content.and_then(|c| c.body),
        authors: entry
            .authors
            .into_iter()
            .filter_map(|p| p.name)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect(),
        categories: entry
            .categories
            .into_iter()
            .map(|c| c.label.unwrap_or(c.term).trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        image,
    }
}

fn text_content(text: Text) -> String {
    text.content
}

/// The `alternate` link (or the first link without a rel), made absolute.
fn alternate_link(links: &[Link], base: Option<&Url>) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .map(|l| resolve(&l.href, base))
}

fn resolve(href: &str, base: Option<&Url>) -> String {
    let href = href.trim();
    match base {
        Some(base) => base
            .join(href)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| href.to_string()),
        None => href.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Tribun Contoh</title>
  <link>https://contoh.tribunnews.com/</link>
  <item>
    <title>Jalan Desa Sukamaju Diperbaiki</title>
    <link>/2026/11/20/jalan-desa-sukamaju-diperbaiki</link>
    <guid isPermaLink="false">tribun-1001</guid>
    <pubDate>Fri, 20 Nov 2026 08:15:00 +0700</pubDate>
    <description><![CDATA[<p>Warga menyambut perbaikan jalan.</p>]]></description>
    <dc:creator>Asep Saepudin</dc:creator>
    <category>Regional</category>
    <enclosure url="https://img.contoh.example/jalan.jpg" type="image/jpeg" length="1000"/>
  </item>
</channel>
</rss>"#;

    #[test]
    fn reads_rss_item_fields() {
        let feed = parse_feed(RSS.as_bytes(), "https://contoh.tribunnews.com/rss").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Tribun Contoh"));
        assert_eq!(
            feed.meta.site_link.as_deref(),
            Some("https://contoh.tribunnews.com/")
        );
        assert_eq!(feed.meta.id, None);
        let item = &feed.items[0];
        assert_eq!(
            item.title.as_deref(),
            Some("Jalan Desa Sukamaju Diperbaiki")
        );
        assert_eq!(
            item.link.as_deref(),
            Some("https://contoh.tribunnews.com/2026/11/20/jalan-desa-sukamaju-diperbaiki")
        );
        assert_eq!(item.guid.as_deref(), Some("tribun-1001"));
        assert_eq!(
            item.published.unwrap().to_rfc3339(),
            "2026-11-20T01:15:00+00:00"
        );
        assert_eq!(item.authors, vec!["Asep Saepudin".to_string()]);
        assert_eq!(item.categories, vec!["Regional".to_string()]);
        assert_eq!(
            item.image.as_deref(),
            Some("https://img.contoh.example/jalan.jpg")
        );
        assert!(item.summary.as_deref().unwrap().contains("Warga menyambut"));
    }

    #[test]
    fn html_page_is_not_a_feed() {
        let err = parse_feed(
            b"<html><body>Akses ditolak</body></html>",
            "https://x.example/",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a readable feed"));
    }

    fn input(body: &[u8]) -> ParseInput<'_> {
        ParseInput {
            body,
            base_url: "https://jabar.kabar.example/rss",
            content_type: None,
            encoding_override: None,
            kind: SourceKind::Feed,
            timezone: crate::dates::jakarta(),
        }
    }

    fn rss_with(declaration: &str, title: &[u8]) -> Vec<u8> {
        [
            declaration.as_bytes(),
            b"<rss version=\"2.0\"><channel><title>Kabar Jabar</title><item><title>",
            title,
            b"</title><link>https://jabar.kabar.example/a</link></item></channel></rss>",
        ]
        .concat()
    }

    fn first_title(output: &ParseOutput) -> &str {
        output.feed.items[0].title.as_deref().unwrap()
    }

    #[test]
    fn windows_1252_feed_with_its_declaration_reads_correctly() {
        let body = rss_with(
            r#"<?xml version="1.0" encoding="windows-1252"?>"#,
            b"Rp 5.000 \x96 harga \x93cabai\x94 naik",
        );
        let output = parse_source(&input(&body)).unwrap();
        assert_eq!(first_title(&output), "Rp 5.000 – harga “cabai” naik");
        assert_eq!(output.charset, "windows-1252");
        assert_eq!(output.charset_source, CharsetSource::XmlDeclaration);
        assert!(!output.replaced_invalid_bytes);
    }

    #[test]
    fn header_labelled_utf8_but_windows_1252_reads_correctly() {
        let body = rss_with("", b"Rp 5.000 \x96 harga");
        let output = parse_source(&ParseInput {
            content_type: Some("application/rss+xml; charset=UTF-8"),
            ..input(&body)
        })
        .unwrap();
        assert_eq!(first_title(&output), "Rp 5.000 – harga");
        assert_eq!(output.charset_source, CharsetSource::Guessed);
    }

    #[test]
    fn utf16le_feed_with_bom_parses() {
        let text = String::from_utf8(rss_with(
            r#"<?xml version="1.0" encoding="UTF-16"?>"#,
            "Festival Danau Toba – Samosir".as_bytes(),
        ))
        .unwrap();
        let mut body = vec![0xFF, 0xFE];
        body.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let output = parse_source(&input(&body)).unwrap();
        assert_eq!(first_title(&output), "Festival Danau Toba – Samosir");
        assert_eq!(output.charset, "UTF-16LE");
        assert_eq!(output.charset_source, CharsetSource::Bom);
    }

    #[test]
    fn broken_xml_is_repaired_and_counted() {
        let body = rss_with("", b"Pemkot & DPRD\x01 Sepakat&nbsp;Anggaran");
        let output = parse_source(&input(&body)).unwrap();
        assert_eq!(first_title(&output), "Pemkot & DPRD Sepakat\u{A0}Anggaran");
        assert_eq!(
            output.repairs,
            Repairs {
                ampersands: 1,
                forbidden_chars: 1,
                entities: 1
            }
        );
    }

    #[test]
    fn json_feed_is_not_xml_repaired() {
        let body = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "Kabar & Cerita",
            "items": [{"id": "1", "url": "/a?x=1&y=2", "title": "Sawah &nbsp; hijau"}]}"#;
        let output = parse_source(&input(body)).unwrap();
        assert!(output.repairs.is_empty());
        assert_eq!(output.feed.meta.title.as_deref(), Some("Kabar & Cerita"));
        assert_eq!(first_title(&output), "Sawah &nbsp; hijau");
        assert_eq!(
            output.feed.items[0].link.as_deref(),
            Some("https://jabar.kabar.example/a?x=1&y=2")
        );
    }

    #[test]
    fn news_sitemap_source() {
        let body = br#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>https://jabar.kabar.example/b</loc><news:news><news:publication><news:name>Kabar Jabar</news:name></news:publication>
<news:title>Angkot & Ojek</news:title></news:news></url></urlset>"#;
        let sitemap = ParseInput {
            kind: SourceKind::NewsSitemap,
            ..input(body)
        };
        let output = parse_source(&sitemap).unwrap();
        assert_eq!(output.feed.meta.title.as_deref(), Some("Kabar Jabar"));
        assert_eq!(first_title(&output), "Angkot & Ojek");
        assert_eq!(output.repairs.ampersands, 1);

        let err = parse_source(&input(body)).unwrap_err();
        assert_eq!(err.kind(), "parse");
        assert!(
            err.to_string().contains("configure the source as one"),
            "{err}"
        );
    }

    #[test]
    fn html_page_names_the_advertised_feed() {
        let page = br#"<!DOCTYPE html>
<html lang="id"><head><title>Kabar Jabar - Beranda</title>
<link rel='alternate' type='application/rss+xml' title='Kabar Jabar &raquo; Feed' href='/feed/'>
</head><body><p>Berita terkini & terpopuler</p></body></html>"#;
        for kind in [SourceKind::Feed, SourceKind::NewsSitemap] {
            let err = parse_source(&ParseInput {
                kind,
                ..input(page)
            })
            .unwrap_err();
            match &err {
                ParseError::NotAFeed { advertised } => assert_eq!(
                    advertised.as_deref(),
                    Some("https://jabar.kabar.example/feed/")
                ),
                other => panic!("expected NotAFeed, got {other:?}"),
            }
            assert_eq!(err.kind(), "not_a_feed");
            let message = err.to_string();
            assert!(message.contains("not a readable feed"), "{message}");
            assert!(
                message.contains("https://jabar.kabar.example/feed/"),
                "{message}"
            );
        }
    }

    #[test]
    fn html_page_without_a_feed() {
        let err = parse_source(&input(
            b"<html><head><title>Sebentar</title></head><body>Memeriksa browser Anda</body></html>",
        ))
        .unwrap_err();
        assert!(
            matches!(err, ParseError::NotAFeed { advertised: None }),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_override_is_an_encoding_error() {
        let err = parse_source(&ParseInput {
            encoding_override: Some("jawa-kuno"),
            ..input(b"<rss/>")
        })
        .unwrap_err();
        assert_eq!(err.kind(), "encoding");
        assert!(err.to_string().contains("jawa-kuno"));
    }
}

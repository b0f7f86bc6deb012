//! Cleaning of parsed items: boilerplate rules, safe HTML, metadata and tidy titles. Pure: no I/O, no config.
//!
//! The stage receives compiled rules (`rules::RuleBook`) and turns a `RawItem`
//! into presentable text plus what it learned (editor, author, source, the
//! original URL of a republished article, the dateline) and a report of what
//! each rule removed, which `kabar clean` shows to admins.

pub mod blocks;
pub mod boilerplate;
pub mod html;
pub mod rules;
pub mod title;

use std::borrow::Cow;
use std::sync::LazyLock;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
use url::Url;

pub use boilerplate::{Metadata, Removal};
pub use rules::RuleBook;

use crate::domain::RawItem;
use crate::text::{collapse_whitespace, strip_xml_forbidden, truncate_words};

/// Longest plain-text summary kept.
const SUMMARY_MAX_CHARS: usize = 500;

/// An item's cleaned, presentable parts and what cleaning found.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanedItem {
    pub title: String,
    /// Safe HTML of the article text (content if the feed had it, else the summary).
    pub content_html: String,
    /// Plain-text summary, when the feed carried one.
    pub summary: Option<String>,
    /// The feed's authors, else the author line found in the text.
    pub authors: Vec<String>,
    pub metadata: Metadata,
    pub removals: Vec<Removal>,
}

/// Cleans `raw`; `item_url` picks the rule sets (by host) and resolves relative links.
pub fn clean_item(raw: &RawItem, item_url: &Url, rules: &RuleBook) -> CleanedItem {
    let networks = rules.for_host(item_url.host_str().unwrap_or(""));
    let body = raw
        .content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(raw.summary.as_deref())
        .unwrap_or("");
    let (content_html, metadata, removals) = clean_html(body, item_url, &networks);
    let summary = if raw.content.as_deref().is_some_and(|c| !c.trim().is_empty()) {
        raw.summary
            .as_deref()
            .map(|s| clean_html(s, item_url, &networks).0)
    } else {
        None
    }
    .map(|html| truncate_words(&html_to_text(&html), SUMMARY_MAX_CHARS))
    .filter(|s| !s.is_empty());
    let title = raw
        .title
        .as_deref()
        .map(|t| title::clean_title(&html_to_text(t), &networks))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| title::derive_title(&html_to_text(&content_html)));
    let authors = if raw.authors.is_empty() {
        metadata.author.iter().cloned().collect()
    } else {
        raw.authors.clone()
    };
    CleanedItem {
        title: nfc(title),
        content_html,
        summary: summary.map(nfc),
        authors,
        metadata,
        removals,
    }
}

/// Boilerplate removal, then sanitizing, then Unicode NFC.
fn clean_html(
    body: &str,
    item_url: &Url,
    networks: &[&rules::Network],
) -> (String, Metadata, Vec<Removal>) {
    let body = xml_chars_only(body);
    let body = html::unescape_if_escaped(&body);
    let stripped = boilerplate::strip(&body, networks);
    let safe = html::sanitize(&stripped.html, item_url);
    (nfc(safe), stripped.metadata, stripped.removals)
}

/// Unicode NFC of `text`. Most text already is NFC (all ASCII text is), and
/// the standard's quick check proves it without normalizing: a `Yes` answer
/// means normalizing would return the text unchanged, so it is kept as it is.
fn nfc(text: String) -> String {
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        text.nfc().collect()
    }
}

/// Sanitizes HTML with the allowlist; relative URLs resolve against `base`.
pub fn sanitize_html(html_text: &str, base: &Url) -> String {
    html::sanitize(&xml_chars_only(html_text), base)
}

/// `strip_xml_forbidden`, with a byte scan first for the usual case of
/// nothing to strip. The characters XML 1.0 forbids in a `&str` are the C0
/// controls but tab, line feed and carriage return (each a single byte below
/// 0x20 in UTF-8) and U+FFFE and U+FFFF (encoded EF BF BE and EF BF BF).
fn xml_chars_only(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let forbidden = bytes.iter().enumerate().any(|(index, &byte)| match byte {
        b'\t' | b'\n' | b'\r' => false,
        0..0x20 => true,
        0xEF => {
            bytes.get(index + 1) == Some(&0xBF) && matches!(bytes.get(index + 2), Some(0xBE | 0xBF))
        }
        _ => false,
    });
    if forbidden {
        strip_xml_forbidden(text)
    } else {
        Cow::Borrowed(text)
    }
}

/// Plain text of an HTML fragment, entities decoded and white space collapsed.
pub fn html_to_text(html: &str) -> String {
    static TEXT_ONLY: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut builder = ammonia::Builder::empty();
        builder.clean_content_tags(["script", "style"].into_iter().collect());
        builder
    });
    // Without markup or entities (and without the NUL, CR and BOM that the
    // parser drops or rewrites) the parser yields the text itself, which the
    // serializer's escaping and decode_basic_entities give back unchanged.
    if !html.contains(['<', '&', '\0', '\r', '\u{FEFF}']) {
        return collapse_whitespace(&xml_chars_only(html));
    }
    // Keep the words of dropped block elements apart ("<p>a</p><p>b</p>" -> "a b").
    let spaced = html.replace('<', " <");
    let escaped = TEXT_ONLY.clean(&spaced).to_string();
    let decoded = decode_basic_entities(&escaped);
    collapse_whitespace(&xml_chars_only(&decoded))
}

/// ammonia escapes only these characters in text (and writes U+00A0 as
/// `&nbsp;`); undo exactly that, `&amp;` last so nothing is decoded twice.
fn decode_basic_entities(text: &str) -> String {
    text.replace("&nbsp;", "\u{A0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://contoh.example/berita/1").unwrap()
    }

    fn clean(raw: &RawItem) -> CleanedItem {
        clean_item(raw, &base(), &RuleBook::builtin())
    }

    #[test]
    fn list_items_outside_a_list_become_paragraphs_once_and_for_all() {
        // html5ever reads `<a<ul>` as an element named "a<ul", which the
        // sanitizer drops, leaving its list items without their list.
        let raw = RawItem {
            content: Some(r#"Tags<a<ul><li>Satu</li><li><a href="/b">Dua</a></li></ul>"#.into()),
            ..RawItem::default()
        };
        let once = clean(&raw).content_html;
        assert!(!once.contains("<li>"), "{once}");
        assert!(once.contains("<p>Satu</p>"), "{once}");
        let again = clean(&RawItem {
            content: Some(once.clone()),
            ..RawItem::default()
        });
        assert_eq!(again.content_html, once);
    }

    #[test]
    fn removes_scripts_handlers_and_javascript_urls() {
        let html = r#"<p onclick="x()">Isi <a href="javascript:alert(1)">tautan</a></p><script>alert(1)</script><iframe src="https://x"></iframe>"#;
        let out = sanitize_html(html, &base());
        assert!(!out.contains("script"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(!out.contains("iframe"), "{out}");
        assert!(out.contains("Isi"), "{out}");
    }

    #[test]
    fn resolves_relative_urls() {
        let out = sanitize_html(
            r#"<a href="/daerah/2">lanjut</a><img src="foto.jpg">"#,
            &base(),
        );
        assert!(
            out.contains(r#"href="https://contoh.example/daerah/2""#),
            "{out}"
        );
        assert!(
            out.contains(r#"src="https://contoh.example/berita/foto.jpg""#),
            "{out}"
        );
    }

    #[test]
    fn title_from_text_when_missing() {
        let raw = RawItem {
            summary: Some(
                "<p>Hujan deras melanda Cianjur sejak pagi. Warga diminta waspada.</p>".into(),
            ),
            ..RawItem::default()
        };
        assert_eq!(clean(&raw).title, "Hujan deras melanda Cianjur sejak pagi");
        assert_eq!(clean(&RawItem::default()).title, "(tanpa judul)");
    }

    #[test]
    fn title_entities_and_space() {
        let raw = RawItem {
            title: Some("  Pemkot &amp; DPRD\u{A0}Sepakat...  ".into()),
            ..RawItem::default()
        };
        assert_eq!(clean(&raw).title, "Pemkot & DPRD Sepakat");
    }

    #[test]
    fn text_is_nfc() {
        let raw = RawItem {
            title: Some("Cafe\u{301} di Braga".into()),
            summary: Some("<p>Kafe\u{301}</p>".into()),
            ..RawItem::default()
        };
        let cleaned = clean(&raw);
        assert_eq!(cleaned.title, "Caf\u{E9} di Braga");
        assert_eq!(cleaned.content_html, "<p>Kaf\u{E9}</p>");
    }
}

//! Cleaning of parsed items: safe HTML and tidy titles. Pure: no I/O, no config.
//!
//! Boilerplate rules and Indonesian date handling build on this stage (see ARCHITECTURE.md).

pub mod dates;

use std::sync::LazyLock;

use url::Url;

use crate::domain::RawItem;
use crate::text::{collapse_whitespace, strip_xml_forbidden, truncate_words};

/// Longest title derived from an item's text when the feed gave none.
const DERIVED_TITLE_MAX_CHARS: usize = 120;

/// The cleaned, presentable parts of an item.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanedText {
    pub title: String,
    /// Safe HTML of the article text (content if the feed had it, else the summary).
    pub content_html: String,
    /// Plain-text summary, when the feed carried one.
    pub summary: Option<String>,
}

/// Cleans the text parts of `raw`; `item_url` resolves relative links and images.
pub fn clean_item(raw: &RawItem, item_url: &Url) -> CleanedText {
    let body = raw
        .content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(raw.summary.as_deref())
        .unwrap_or("");
    let content_html = sanitize_html(body, item_url);
    let summary = raw
        .summary
        .as_deref()
        .map(html_to_text)
        .filter(|s| !s.is_empty());
    let title = raw
        .title
        .as_deref()
        .map(html_to_text)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| derive_title(&html_to_text(&content_html)));
    CleanedText {
        title,
        content_html,
        summary,
    }
}

/// Sanitizes HTML with an allowlist: no script, style, iframe, event handler or
/// non-http(s)/mailto URL survives; relative URLs resolve against `base`.
pub fn sanitize_html(html: &str, base: &Url) -> String {
    let html = strip_xml_forbidden(html);
    let cleaned = ammonia::Builder::default()
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string();
    cleaned.trim().to_string()
}

/// Plain text of an HTML fragment, entities decoded and white space collapsed.
pub fn html_to_text(html: &str) -> String {
    static TEXT_ONLY: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut builder = ammonia::Builder::empty();
        // Keep the words of dropped block elements apart ("<p>a</p><p>b</p>" -> "a b").
        builder.clean_content_tags(["script", "style"].into_iter().collect());
        builder
    });
    let spaced = html.replace('<', " <");
    let escaped = TEXT_ONLY.clean(&spaced).to_string();
    let decoded = decode_basic_entities(&escaped);
    collapse_whitespace(&strip_xml_forbidden(&decoded))
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

/// A title from the first sentence of the text, never empty.
fn derive_title(text: &str) -> String {
    let sentence = text
        .split_inclusive(['.', '!', '?'])
        .next()
        .unwrap_or("")
        .trim();
    if sentence.is_empty() {
        "(tanpa judul)".to_string()
    } else {
        truncate_words(sentence.trim_end_matches('.'), DERIVED_TITLE_MAX_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://contoh.example/berita/1").unwrap()
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
        assert_eq!(
            clean_item(&raw, &base()).title,
            "Hujan deras melanda Cianjur sejak pagi"
        );
        assert_eq!(
            clean_item(&RawItem::default(), &base()).title,
            "(tanpa judul)"
        );
    }

    #[test]
    fn title_entities_and_space() {
        let raw = RawItem {
            title: Some("  Pemkot &amp; DPRD\u{A0}Sepakat  ".into()),
            ..RawItem::default()
        };
        assert_eq!(clean_item(&raw, &base()).title, "Pemkot & DPRD Sepakat");
    }
}

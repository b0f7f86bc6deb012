//! Bytes of a feed -> the project's own `ParsedFeed` (RSS, Atom, JSON Feed via feed-rs). Pure.

use feed_rs::model::{Entry, Feed, Link, Text};
use thiserror::Error;
use url::Url;

use crate::domain::{FeedMeta, ParsedFeed, RawItem};

#[derive(Debug, Error)]
#[error("not a readable feed: {message}")]
pub struct ParseError {
    pub message: String,
}

/// Parses a feed body. `base_url` (the URL it was fetched from, after
/// redirects) resolves relative item links.
pub fn parse_feed(body: &[u8], base_url: &str) -> Result<ParsedFeed, ParseError> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base_url))
        // kabar cleans HTML itself, with its own allowlist and rules.
        .sanitize_content(false)
        .build();
    let feed = parser.parse(body).map_err(|e| ParseError {
        message: e.to_string(),
    })?;
    let base = Url::parse(base_url).ok();
    Ok(convert(feed, base.as_ref()))
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
}

//! Google News sitemaps (`<urlset>` with `news:` elements) -> `ParsedFeed`. Pure.
//!
//! Some portals (Suara's regional sites, parts of PRMN) publish only news
//! sitemaps. Elements are matched by local name, because the prefixes
//! (`news:`, `n:`, `image:`) differ from portal to portal.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;
use url::Url;

use super::{ParseError, resolve};
use crate::domain::{FeedMeta, ParsedFeed, RawItem};

/// Parses a news sitemap; `base_url` resolves relative `<loc>` values.
pub fn parse_news_sitemap(text: &str, base_url: &str) -> Result<ParsedFeed, ParseError> {
    let base = Url::parse(base_url).ok();
    let mut reader = Reader::from_str(text);
    // Local names of the open elements, the root first.
    let mut path: Vec<String> = Vec::new();
    let mut content = String::new();
    let mut item: Option<RawItem> = None;
    let mut feed = ParsedFeed {
        meta: FeedMeta::default(),
        items: Vec::new(),
    };
    let mut saw_root = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            malformed(format!(
                "news sitemap is not well-formed XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                if path.is_empty() {
                    check_root(&name)?;
                    saw_root = true;
                } else if path.len() == 1 && name == "url" {
                    item = Some(RawItem::default());
                }
                path.push(name);
                content.clear();
            }
            Event::Empty(start) if path.is_empty() => {
                // `<urlset/>`: a sitemap with nothing in it today.
                check_root(start.local_name().as_ref())?;
                saw_root = true;
            }
            Event::Text(text) => content.push_str(&text),
            Event::CData(text) => content.push_str(&text),
            Event::GeneralRef(reference) => {
                if let Ok(Some(c)) = reference.resolve_char_ref() {
                    content.push(c);
                } else if let Some(resolved) = quick_xml::escape::resolve_xml_entity(&reference) {
                    content.push_str(resolved);
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                if let Some(item) = item.as_mut() {
                    let parent = path.last().map(String::as_str).unwrap_or_default();
                    read_field(
                        item,
                        &mut feed.meta,
                        parent,
                        &name,
                        content.trim(),
                        base.as_ref(),
                    );
                }
                if path.len() == 1 && name == "url" {
                    feed.items.extend(item.take());
                }
                content.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(malformed("the news sitemap is empty".to_string()));
    }
    Ok(feed)
}

fn check_root(name: &str) -> Result<(), ParseError> {
    match name {
        "urlset" => Ok(()),
        "sitemapindex" => Err(malformed(
            "this is a sitemap index, not a news sitemap; configure one of the sitemaps it lists"
                .to_string(),
        )),
        other => Err(malformed(format!(
            "expected a news sitemap (<urlset>), found <{other}>"
        ))),
    }
}

/// Stores the text of the element `name` (inside `parent`) of one `<url>`.
fn read_field(
    item: &mut RawItem,
    meta: &mut FeedMeta,
    parent: &str,
    name: &str,
    value: &str,
    base: Option<&Url>,
) {
    if value.is_empty() {
        return;
    }
    match (parent, name) {
        ("url", "loc") => item.link = Some(resolve(value, base)),
        ("url", "lastmod") => item.updated = parse_w3c_datetime(value),
        ("news", "title") => item.title = Some(value.to_string()),
        ("news", "publication_date") => item.published = parse_w3c_datetime(value),
        ("news", "keywords") => {
            item.categories = value
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect();
        }
        ("publication", "name") if meta.title.is_none() => meta.title = Some(value.to_string()),
        ("image", "loc") if item.image.is_none() => item.image = Some(resolve(value, base)),
        _ => {}
    }
}

/// Western Indonesian Time: a time without a zone on these portals is WIB.
const WIB_OFFSET_SECONDS: i32 = 7 * 3600;

/// Reads a W3C datetime (`2026-11-20`, `2026-11-20T08:15+07:00`,
/// `2026-11-20T08:15:00.5Z`). A time without a zone, which the format does not
/// allow but portals write, and a bare date are taken as WIB. Anything else is `None`.
fn parse_w3c_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim().replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&text) {
        return Some(dt.to_utc());
    }
    if let Ok(dt) = DateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M%:z") {
        return Some(dt.to_utc());
    }
    let wib = FixedOffset::east_opt(WIB_OFFSET_SECONDS)?;
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(&text, format).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    naive.and_local_timezone(wib).single().map(|dt| dt.to_utc())
}

fn malformed(message: String) -> ParseError {
    ParseError::Malformed { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITEMAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>https://jatim.suara.example/read/2026/11/20/081500/warga-lamongan-panen-raya</loc>
    <news:news>
      <news:publication>
        <news:name>Suara Jatim Contoh</news:name>
        <news:language>id</news:language>
      </news:publication>
      <news:publication_date>2026-11-20T08:15:00+07:00</news:publication_date>
      <news:title>Warga Lamongan Panen Raya &amp; Syukuran</news:title>
      <news:keywords>pertanian, Lamongan,, panen </news:keywords>
    </news:news>
    <image:image>
      <image:loc>https://img.suara.example/panen.jpg</image:loc>
    </image:image>
  </url>
  <url>
    <loc>/read/2026/11/20/093000/jembatan-baru-di-tuban</loc>
    <lastmod>2026-11-20T10:00:00Z</lastmod>
    <news:news>
      <news:publication><news:name>Suara Jatim Lain</news:name></news:publication>
      <news:publication_date>kemarin sore</news:publication_date>
      <news:title><![CDATA[Jembatan Baru di Tuban Dibuka]]></news:title>
    </news:news>
  </url>
</urlset>"#;

    #[test]
    fn reads_two_urls() {
        let feed = parse_news_sitemap(
            SITEMAP,
            "https://jatim.suara.example/static/news/sitemap.xml",
        )
        .unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Suara Jatim Contoh"));
        assert_eq!(feed.items.len(), 2);

        let first = &feed.items[0];
        assert_eq!(
            first.link.as_deref(),
            Some("https://jatim.suara.example/read/2026/11/20/081500/warga-lamongan-panen-raya")
        );
        assert_eq!(
            first.title.as_deref(),
            Some("Warga Lamongan Panen Raya & Syukuran")
        );
        assert_eq!(
            first.published.unwrap().to_rfc3339(),
            "2026-11-20T01:15:00+00:00"
        );
        assert_eq!(first.categories, ["pertanian", "Lamongan", "panen"]);
        assert_eq!(
            first.image.as_deref(),
            Some("https://img.suara.example/panen.jpg")
        );

        let second = &feed.items[1];
        assert_eq!(
            second.link.as_deref(),
            Some("https://jatim.suara.example/read/2026/11/20/093000/jembatan-baru-di-tuban")
        );
        assert_eq!(
            second.title.as_deref(),
            Some("Jembatan Baru di Tuban Dibuka")
        );
        assert_eq!(second.published, None, "an invalid date is left out");
        assert_eq!(
            second.updated.unwrap().to_rfc3339(),
            "2026-11-20T10:00:00+00:00"
        );
        assert!(second.categories.is_empty());
        assert_eq!(second.image, None);
    }

    #[test]
    fn other_prefixes_match_by_local_name() {
        let text = r#"<s:urlset xmlns:s="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:n="http://www.google.com/schemas/sitemap-news/0.9">
  <s:url><s:loc>https://bali.example/a</s:loc>
    <n:news><n:publication><n:name>Kabar Bali</n:name></n:publication>
      <n:title>Ogoh-ogoh di Denpasar</n:title></n:news></s:url>
</s:urlset>"#;
        let feed = parse_news_sitemap(text, "https://bali.example/sitemap.xml").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Kabar Bali"));
        assert_eq!(
            feed.items[0].title.as_deref(),
            Some("Ogoh-ogoh di Denpasar")
        );
    }

    #[test]
    fn w3c_datetimes() {
        let cases = [
            (
                "2026-11-20T08:15:00+07:00",
                Some("2026-11-20T01:15:00+00:00"),
            ),
            (
                "2026-11-20T08:15:00.250Z",
                Some("2026-11-20T08:15:00.250+00:00"),
            ),
            ("2026-11-20T08:15+08:00", Some("2026-11-20T00:15:00+00:00")),
            ("2026-11-20 08:15:00", Some("2026-11-20T01:15:00+00:00")),
            ("2026-11-20T08:15", Some("2026-11-20T01:15:00+00:00")),
            ("2026-11-20", Some("2026-11-19T17:00:00+00:00")),
            ("20 November 2026", None),
            ("2026-13-40T08:15:00+07:00", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_w3c_datetime(text).map(|d| d.to_rfc3339()).as_deref(),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_news_sitemap() {
        let cases = [
            (
                "<sitemapindex><sitemap><loc>x</loc></sitemap></sitemapindex>",
                "sitemap index",
            ),
            ("<rss version=\"2.0\"><channel/></rss>", "found <rss>"),
            ("<urlset><url><loc>x</url></urlset>", "not well-formed"),
            ("   ", "empty"),
        ];
        for (text, expected) in cases {
            let err = parse_news_sitemap(text, "https://x.example/").unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
        let empty = parse_news_sitemap("<urlset/>", "https://x.example/").unwrap();
        assert!(empty.items.is_empty());
    }
}

//! Writers of the combined outputs (Atom, JSON Feed) and the OPML list of sources. Pure: data in, bytes out.

pub mod atom;
pub mod json;
pub mod opml;

use crate::domain::ItemKey;

/// How an output describes itself; built by the caller from config.
#[derive(Debug, Clone)]
pub struct OutputInfo {
    pub id: String,
    pub title: String,
    /// Absolute public URL of this output, for `link rel="self"`.
    pub self_url: String,
    /// Absolute public URL of the JSON Feed form, for its `feed_url`; `None`
    /// when the caller does not publish one (the field is then left out).
    pub self_url_json: Option<String>,
    /// Authority used in entry ids: `tag:{authority},2026:item:{key}`.
    pub id_authority: String,
    /// Further feed-level links: paging (`first`, `next`, `prev`, RFC 5005) and `hub` (WebSub).
    pub links: Vec<(String, String)>,
    /// The JSON Feed form of the next page, for its `next_url`.
    pub next_url_json: Option<String>,
}

/// The stable id of an entry, derived only from its item key and the operator's
/// authority, so it is the same across restarts, re-renders and re-cleaning.
pub fn entry_id(id_authority: &str, key: &ItemKey) -> String {
    format!("tag:{id_authority},2026:item:{}", key.to_hex())
}

/// Entries and output settings shared by the writers' tests, so that a change
/// to `StoredEntry` or `OutputInfo` touches one place.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, Utc};

    use super::OutputInfo;
    use crate::domain::{EntrySource, ItemKey, StoredEntry};

    pub fn time(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    pub fn entry(n: u8, title: &str) -> StoredEntry {
        let t = time("2026-11-20T01:15:00Z");
        StoredEntry {
            key: ItemKey([n; 32]),
            url: format!("https://contoh.example/berita/{n}"),
            title: title.to_string(),
            published: t,
            updated: t,
            summary: Some("Ringkasan".into()),
            content_html: "<p>Isi &amp; berita</p>".into(),
            authors: vec![],
            contributor: None,
            categories: vec![],
            source: EntrySource {
                feed_name: "contoh".into(),
                feed_url: "https://contoh.example/rss".into(),
                region: "jawa-barat".into(),
                tags: vec!["tribun".into()],
                title: Some("Contoh News".into()),
                site_link: Some("https://contoh.example/".into()),
                id: None,
                updated: None,
            },
        }
    }

    pub fn info() -> OutputInfo {
        OutputInfo {
            links: Vec::new(),
            next_url_json: None,
            id: "tag:kabar.localhost,2026:feed".into(),
            title: "Kabar".into(),
            self_url: "http://127.0.0.1:8080/feed.atom".into(),
            self_url_json: Some("http://127.0.0.1:8080/feed.json".into()),
            id_authority: "kabar.localhost".into(),
        }
    }
}

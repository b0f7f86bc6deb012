//! Plain data types shared by every stage: feeds, items and item keys. No I/O, no async.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The deduplication key of an item: SHA-256 of its normalized URL (see `dedup`).
///
/// Unique across all feeds; the database enforces it with a primary key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey(pub [u8; 32]);

impl ItemKey {
    /// Lower-case hexadecimal form, used in entry ids and logs.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// Rebuilds a key from the 32 bytes stored in the database.
    pub fn from_slice(bytes: &[u8]) -> Option<ItemKey> {
        <[u8; 32]>::try_from(bytes).ok().map(ItemKey)
    }
}

impl fmt::Debug for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemKey({})", self.to_hex())
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What kind of document a source publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed.
    #[default]
    Feed,
    /// A Google News sitemap (`<urlset>` with `news:` elements).
    NewsSitemap,
}

/// A source feed as the admin configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSource {
    /// Unique name chosen by the admin; the feed's identity across restarts.
    pub name: String,
    pub url: String,
    pub region: String,
    pub tags: Vec<String>,
    pub kind: SourceKind,
    /// Charset label that overrides what the server and the document say.
    pub encoding: Option<String>,
    /// Offset of dates the feed writes without a zone.
    pub timezone: chrono::FixedOffset,
    /// Added to every date the feed gives: fixes feeds that label local clock
    /// time as GMT (Jawa Pos writes WIB and says GMT: `-7h`).
    pub clock_offset: chrono::Duration,
}

impl FeedSource {
    /// The key per-host politeness goes by: the URL's host, lower-cased, with
    /// the port when it is not the scheme's default (another port is another
    /// server process). Empty when the URL has no host.
    pub fn host_key(&self) -> String {
        host_key(&self.url)
    }
}

/// [`FeedSource::host_key`] for any URL.
pub fn host_key(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return String::new();
    };
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// One item as the parser read it from a feed, before cleaning.
///
/// Stored beside the cleaned item (as JSON), so changed rules can be re-applied
/// without refetching.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawItem {
    pub title: Option<String>,
    /// The item's link, resolved against the feed URL.
    pub link: Option<String>,
    /// The feed's own identifier for the item (RSS guid, Atom id).
    pub guid: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// HTML (or text) of the summary / description.
    pub summary: Option<String>,
    /// HTML of the full content, when the feed carries it.
    pub content: Option<String>,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    /// URL of the enclosure or media image.
    pub image: Option<String>,
}

/// What a parsed feed says about itself; kept to name the source in `atom:source`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedMeta {
    pub title: Option<String>,
    /// The portal's home page, when the feed names it.
    pub site_link: Option<String>,
    /// The feed's own id (Atom id); RSS has none.
    pub id: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    /// How often the publisher says to poll at most (RSS `ttl`, `sy:updatePeriod`).
    pub refresh_hint: Option<std::time::Duration>,
}

/// A parsed feed: its metadata and its items, in feed order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub meta: FeedMeta,
    pub items: Vec<RawItem>,
}

/// An item after cleaning, keyed and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: ItemKey,
    /// The normalized URL the key was computed from.
    pub url: String,
    pub title: String,
    pub guid: Option<String>,
    /// When the portal published it; `None` when the feed did not say.
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    /// Safe HTML of the item text.
    pub content_html: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub image: Option<String>,
    /// The editor named in the text ("Editor: …").
    pub contributor: Option<String>,
    /// The outlet named as source ("Sumber: …").
    pub source_note: Option<String>,
    /// The article this one republishes, when the text says so.
    pub original_url: Option<String>,
    pub dateline: Option<String>,
    /// The item as received, for re-cleaning.
    pub raw: RawItem,
}

/// A stored item joined with the feed it came from, as the emitters need it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub key: ItemKey,
    pub url: String,
    pub title: String,
    pub published: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub summary: Option<String>,
    pub content_html: String,
    pub authors: Vec<String>,
    pub contributor: Option<String>,
    pub categories: Vec<String>,
    pub source: EntrySource,
}

/// The portal feed an entry came from, for `atom:source`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrySource {
    pub feed_name: String,
    pub feed_url: String,
    pub region: String,
    /// The tags the admin gave the source feed.
    pub tags: Vec<String>,
    pub title: Option<String>,
    pub site_link: Option<String>,
    pub id: Option<String>,
    pub updated: Option<DateTime<Utc>>,
}

/// A counter bumped whenever the stored items that outputs show change (new
/// items, re-cleaned items, a reload). Rendered outputs remember the version
/// they were made from, so serving a cached one needs no database query.
#[derive(Debug, Clone, Default)]
pub struct ContentVersion(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ContentVersion {
    pub fn current(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Which stored items an output shows. Empty lists do not restrict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    pub regions: Vec<String>,
    pub tags: Vec<String>,
    pub feeds: Vec<String>,
    /// Keywords of which at least one must appear in the title or text (case-insensitive).
    pub include: Vec<String>,
    /// Keywords none of which may appear in the title or text.
    pub exclude: Vec<String>,
}

/// A position in an output, newest first: entries strictly older than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub published: DateTime<Utc>,
    pub key: ItemKey,
}

impl Cursor {
    /// `2026-11-25T01:15:00.000000Z~<key hex>`: safe in a query string, exact to the microsecond.
    pub fn encode(&self) -> String {
        format!(
            "{}~{}",
            self.published.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            self.key.to_hex()
        )
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (time, hex) = text.split_once('~')?;
        let published = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
        if hex.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Cursor {
            published,
            key: ItemKey(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::host_key;

    #[test]
    fn host_keys_ignore_case_and_default_ports_but_keep_other_ports() {
        assert_eq!(
            host_key("https://Jabar.Tribunnews.com/rss"),
            "jabar.tribunnews.com"
        );
        assert_eq!(host_key("http://x.example:80/feed"), "x.example");
        assert_eq!(host_key("http://127.0.0.1:8081/feed"), "127.0.0.1:8081");
        assert_eq!(host_key("not a url"), "");
    }
}

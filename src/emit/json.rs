//! The combined JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), written with serde.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::StoredEntry;
use crate::emit::{OutputInfo, entry_id};
use crate::text::strip_xml_forbidden;

pub const CONTENT_TYPE: &str = "application/feed+json; charset=utf-8";
const VERSION: &str = "https://jsonfeed.org/version/1.1";
/// The portals write in Indonesian; Atom says the same with `xml:lang`.
const LANGUAGE: &str = "id";

/// Renders `entries` (already newest first and bounded) as a JSON Feed
/// document: the same entries, ids and dates as the Atom writer.
pub fn render(info: &OutputInfo, entries: &[StoredEntry]) -> Vec<u8> {
    let feed = Feed {
        version: VERSION,
        title: clean(&info.title),
        feed_url: info.self_url_json.as_deref().map(clean),
        next_url: info.next_url_json.as_deref().map(clean),
        language: LANGUAGE,
        items: entries.iter().map(|e| item(info, e)).collect(),
    };
    // Indented like the Atom output so it reads well with curl; the transfer
    // is compressed, so the white space costs little on the wire.
    let mut bytes = serde_json::to_vec_pretty(&feed).expect("the feed has only string keys");
    bytes.push(b'\n');
    bytes
}

#[derive(Serialize)]
struct Feed<'a> {
    version: &'static str,
    title: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feed_url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<Cow<'a, str>>,
    language: &'static str,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: String,
    url: Cow<'a, str>,
    title: Cow<'a, str>,
    content_html: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Cow<'a, str>>,
    date_published: String,
    date_modified: String,
    authors: Vec<Author<'a>>,
    tags: Vec<Cow<'a, str>>,
    language: &'static str,
    /// JSON Feed extensions are keys starting with `_`; readers ignore them.
    #[serde(rename = "_kabar")]
    kabar: Extension<'a>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: Cow<'a, str>,
}

/// What Atom carries in `atom:source` and `atom:contributor`, which JSON Feed has no field for.
#[derive(Serialize)]
struct Extension<'a> {
    source: Source<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contributor: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Source<'a> {
    /// The admin's name for the feed, its identity in kabar's config.
    name: Cow<'a, str>,
    feed_url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_page_url: Option<Cow<'a, str>>,
    /// Repeated from `tags` because tags cannot carry Atom's region scheme.
    region: Cow<'a, str>,
}

fn item<'a>(info: &OutputInfo, entry: &'a StoredEntry) -> Item<'a> {
    let source = &entry.source;
    // Atom requires an author and uses the portal when the feed named none;
    // JSON Feed does not, but readers should credit the same people either way.
    let authors = if entry.authors.is_empty() {
        let portal = source.title.as_deref().unwrap_or(&source.feed_name);
        vec![Author {
            name: clean(portal),
        }]
    } else {
        entry
            .authors
            .iter()
            .map(|a| Author { name: clean(a) })
            .collect()
    };
    Item {
        id: entry_id(&info.id_authority, &entry.key),
        url: clean(&entry.url),
        title: clean(&entry.title),
        content_html: clean(&entry.content_html),
        summary: entry.summary.as_deref().map(clean),
        date_published: timestamp(entry.published),
        date_modified: timestamp(entry.updated.max(entry.published)),
        authors,
        tags: tags(entry),
        language: LANGUAGE,
        kabar: Extension {
            source: Source {
                name: clean(&source.feed_name),
                feed_url: clean(&source.feed_url),
                title: source.title.as_deref().map(clean),
                home_page_url: source.site_link.as_deref().map(clean),
                region: clean(&source.region),
            },
            contributor: entry.contributor.as_deref().map(clean),
        },
    }
}

/// The region first, then the portal's categories, without empties or repeats
/// (portals often file a story under their region's name too).
fn tags(entry: &StoredEntry) -> Vec<Cow<'_, str>> {
    let mut tags: Vec<Cow<'_, str>> = Vec::with_capacity(entry.categories.len() + 1);
    for tag in std::iter::once(&entry.source.region).chain(&entry.categories) {
        let tag = clean(tag);
        if !tag.trim().is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

/// JSON could carry control characters escaped, but the Atom output drops
/// them; dropping them here too keeps both outputs saying the same thing and
/// spares readers that turn JSON Feed items into XML.
fn clean(text: &str) -> Cow<'_, str> {
    strip_xml_forbidden(text)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::emit::atom;
    use crate::emit::fixtures::{entry, info, time};

    fn value(entries: &[StoredEntry]) -> Value {
        serde_json::from_slice(&render(&info(), entries)).expect("render writes valid JSON")
    }

    #[test]
    fn feed_rs_reads_back_the_same_entries_as_atom() {
        let mut second = entry(2, "Banjir di Bandung");
        second.url = "https://contoh.example/berita/banjir?id=2".into();
        let entries = [entry(1, "Harga cabai naik"), second];

        let json = feed_rs::parser::parse(&render(&info(), &entries)[..]).unwrap();
        let atom = feed_rs::parser::parse(&atom::render(&info(), &entries)[..]).unwrap();

        assert_eq!(json.feed_type, feed_rs::model::FeedType::JSON);
        assert_eq!(json.title.unwrap().content, "Kabar");
        assert_eq!(json.language.as_deref(), Some("id"));
        assert_eq!(json.entries.len(), atom.entries.len());
        for (j, a) in json.entries.iter().zip(&atom.entries) {
            assert_eq!(j.id, a.id);
            assert_eq!(
                j.title.as_ref().unwrap().content,
                a.title.as_ref().unwrap().content
            );
            assert_eq!(j.links[0].href, a.links[0].href);
            assert_eq!(j.published, a.published);
            assert_eq!(j.updated, a.updated);
        }
        assert_eq!(
            json.entries[0].id,
            format!("tag:kabar.localhost,2026:item:{}", "01".repeat(32))
        );
        assert_eq!(json.entries[1].links[0].href, entries[1].url);
    }

    #[test]
    fn required_and_promised_fields_are_present() {
        let mut e = entry(3, "Judul");
        e.updated = time("2026-11-20T03:00:00Z");
        e.contributor = Some("Asep".into());
        let v = value(&[e]);

        assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(v["title"], "Kabar");
        assert_eq!(v["feed_url"], "http://127.0.0.1:8080/feed.json");
        assert_eq!(v["language"], "id");
        assert!(v.get("home_page_url").is_none());

        let item = &v["items"][0];
        assert_eq!(item["id"], entry_id("kabar.localhost", &entry(3, "").key));
        assert_eq!(item["url"], "https://contoh.example/berita/3");
        assert_eq!(item["title"], "Judul");
        assert_eq!(item["content_html"], "<p>Isi &amp; berita</p>");
        assert_eq!(item["summary"], "Ringkasan");
        assert_eq!(item["date_published"], "2026-11-20T01:15:00Z");
        assert_eq!(item["date_modified"], "2026-11-20T03:00:00Z");
        assert_eq!(item["language"], "id");
        assert_eq!(item["authors"], json!([{ "name": "Contoh News" }]));
        assert_eq!(
            item["_kabar"],
            json!({
                "source": {
                    "name": "contoh",
                    "feed_url": "https://contoh.example/rss",
                    "title": "Contoh News",
                    "home_page_url": "https://contoh.example/",
                    "region": "jawa-barat",
                },
                "contributor": "Asep",
            })
        );
    }

    #[test]
    fn optional_fields_are_left_out_when_unknown() {
        let mut e = entry(4, "Judul");
        e.summary = None;
        e.source.title = None;
        e.source.site_link = None;
        let mut output = info();
        output.self_url_json = None;
        let v: Value = serde_json::from_slice(&render(&output, &[e])).unwrap();

        assert!(v.get("feed_url").is_none());
        let item = &v["items"][0];
        assert!(item.get("summary").is_none());
        assert!(item["_kabar"].get("contributor").is_none());
        assert!(item["_kabar"]["source"].get("title").is_none());
        assert!(item["_kabar"]["source"].get("home_page_url").is_none());
        // Without a portal title, the feed's configured name stands in as author.
        assert_eq!(item["authors"], json!([{ "name": "contoh" }]));
    }

    #[test]
    fn authors_and_tags() {
        let mut e = entry(5, "Judul");
        e.authors = vec!["Yuliani".into(), "Dedi".into()];
        e.categories = vec!["Politik".into(), "jawa-barat".into(), " ".into()];
        let item = &value(&[e])["items"][0];

        assert_eq!(
            item["authors"],
            json!([{ "name": "Yuliani" }, { "name": "Dedi" }])
        );
        assert_eq!(item["tags"], json!(["jawa-barat", "Politik"]));
    }

    #[test]
    fn drops_characters_xml_forbids() {
        let mut e = entry(6, "A\u{1}B");
        e.content_html = "<p>x\u{FFFE}y</p>".into();
        let bytes = render(&info(), &[e]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("\\u0001"), "{text}");
        assert!(!text.contains('\u{FFFE}'), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["items"][0]["title"], "AB");
        assert_eq!(v["items"][0]["content_html"], "<p>xy</p>");
    }

    #[test]
    fn empty_feed_is_valid_and_stable() {
        assert_eq!(render(&info(), &[]), render(&info(), &[]));
        assert_eq!(value(&[])["items"], json!([]));
    }
}

//! The combined Atom 1.0 feed (RFC 4287), written with quick-xml.

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::domain::StoredEntry;
use crate::emit::{OutputInfo, entry_id};
use crate::text::strip_xml_forbidden;

pub const CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// Scheme of the region categories, so readers can tell them from portal tags.
pub const REGION_SCHEME: &str = "urn:kabar:region";
/// Scheme of the tags the admin gave the source feed.
pub const TAG_SCHEME: &str = "urn:kabar:tag";

/// Renders `entries` (already newest first and bounded) as an Atom document.
pub fn render(info: &OutputInfo, entries: &[StoredEntry]) -> Vec<u8> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_feed(&mut writer, info, entries).expect("writing XML to a Vec cannot fail");
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    bytes
}

/// The feed's `updated`: the newest entry change. An empty feed uses the Unix
/// epoch so that its bytes, and so its cache validators, stay stable.
fn feed_updated(entries: &[StoredEntry]) -> DateTime<Utc> {
    entries
        .iter()
        .map(|e| e.updated.max(e.published))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

type XmlResult = std::io::Result<()>;

fn write_feed(w: &mut Writer<Vec<u8>>, info: &OutputInfo, entries: &[StoredEntry]) -> XmlResult {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.create_element("feed")
        .with_attributes([("xmlns", ATOM_NS), ("xml:lang", "id")])
        .write_inner_content(|w| {
            text_element(w, "id", &info.id)?;
            text_element(w, "title", &info.title)?;
            text_element(w, "updated", &timestamp(feed_updated(entries)))?;
            link(w, "self", &info.self_url, Some("application/atom+xml"))?;
            for (rel, href) in &info.links {
                let media_type = (rel != "hub").then_some("application/atom+xml");
                link(w, rel, href, media_type)?;
            }
            w.create_element("generator")
                .with_attribute(("version", env!("CARGO_PKG_VERSION")))
                .write_text_content(BytesText::new("kabar"))?;
            for entry in entries {
                write_entry(w, info, entry)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_entry(w: &mut Writer<Vec<u8>>, info: &OutputInfo, entry: &StoredEntry) -> XmlResult {
    w.create_element("entry").write_inner_content(|w| {
        text_element(w, "id", &entry_id(&info.id_authority, &entry.key))?;
        text_element(w, "title", &entry.title)?;
        link(w, "alternate", &entry.url, Some("text/html"))?;
        text_element(w, "published", &timestamp(entry.published))?;
        text_element(w, "updated", &timestamp(entry.updated.max(entry.published)))?;
        let source_name = entry
            .source
            .title
            .clone()
            .unwrap_or_else(|| entry.source.feed_name.clone());
        // Atom requires an author; the portal stands in when the feed named none.
        let authors: Vec<&str> = if entry.authors.is_empty() {
            vec![source_name.as_str()]
        } else {
            entry.authors.iter().map(String::as_str).collect()
        };
        for name in authors {
            w.create_element("author")
                .write_inner_content(|w| text_element(w, "name", name))?;
        }
        if let Some(editor) = &entry.contributor {
            w.create_element("contributor")
                .write_inner_content(|w| text_element(w, "name", editor))?;
        }
        w.create_element("category")
            .with_attributes([
                ("term", strip_xml_forbidden(&entry.source.region).as_ref()),
                ("scheme", REGION_SCHEME),
            ])
            .write_empty()?;
        for tag in &entry.source.tags {
            w.create_element("category")
                .with_attributes([
                    ("term", strip_xml_forbidden(tag).as_ref()),
                    ("scheme", TAG_SCHEME),
                ])
                .write_empty()?;
        }
        if let Some(summary) = &entry.summary {
            w.create_element("summary")
                .with_attribute(("type", "text"))
                .write_text_content(BytesText::new(&strip_xml_forbidden(summary)))?;
        }
        w.create_element("content")
            .with_attribute(("type", "html"))
            .write_text_content(BytesText::new(&strip_xml_forbidden(&entry.content_html)))?;
        write_source(w, entry, &source_name)
    })?;
    Ok(())
}

/// `atom:source`: the portal feed the entry came from, so readers can credit it.
fn write_source(w: &mut Writer<Vec<u8>>, entry: &StoredEntry, source_name: &str) -> XmlResult {
    let source = &entry.source;
    w.create_element("source").write_inner_content(|w| {
        text_element(w, "id", source.id.as_deref().unwrap_or(&source.feed_url))?;
        text_element(w, "title", source_name)?;
        link(w, "self", &source.feed_url, None)?;
        if let Some(site) = &source.site_link {
            link(w, "alternate", site, Some("text/html"))?;
        }
        if let Some(updated) = source.updated {
            text_element(w, "updated", &timestamp(updated))?;
        }
        Ok(())
    })?;
    Ok(())
}

fn text_element(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> XmlResult {
    w.create_element(name)
        .write_text_content(BytesText::new(&strip_xml_forbidden(text)))?;
    Ok(())
}

fn link(w: &mut Writer<Vec<u8>>, rel: &str, href: &str, media_type: Option<&str>) -> XmlResult {
    let href = strip_xml_forbidden(href);
    let mut element = w
        .create_element("link")
        .with_attributes([("rel", rel), ("href", href.as_ref())]);
    if let Some(media_type) = media_type {
        element = element.with_attribute(("type", media_type));
    }
    element.write_empty()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::fixtures::{entry, info};

    #[test]
    fn escapes_text_and_drops_forbidden_characters() {
        let xml = String::from_utf8(render(&info(), &[entry(1, "A < B & \u{1}C")])).unwrap();
        assert!(xml.contains("<title>A &lt; B &amp; C</title>"), "{xml}");
        assert!(
            xml.contains("&lt;p&gt;Isi &amp;amp; berita&lt;/p&gt;"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}'));
    }

    #[test]
    fn entry_has_source_author_and_region() {
        let xml = String::from_utf8(render(&info(), &[entry(2, "Judul")])).unwrap();
        assert!(xml.contains("<name>Contoh News</name>"), "{xml}");
        assert!(
            xml.contains(r#"<category term="jawa-barat" scheme="urn:kabar:region"/>"#),
            "{xml}"
        );
        assert!(xml.contains("<source>"), "{xml}");
        assert!(xml.contains(&format!(
            "<id>tag:kabar.localhost,2026:item:{}</id>",
            "02".repeat(32)
        )));
    }

    #[test]
    fn empty_feed_is_stable() {
        assert_eq!(render(&info(), &[]), render(&info(), &[]));
    }
}

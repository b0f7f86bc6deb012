//! The configured sources as an OPML 2.0 subscription list (http://opml.org/spec2.opml), written with quick-xml.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::text::strip_xml_forbidden;

pub const CONTENT_TYPE: &str = "text/x-opml; charset=utf-8";

/// One configured source feed, as the caller knows it (config plus, when a
/// poll has read it, what the feed says about itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlSource {
    /// The admin's unique name for the feed.
    pub name: String,
    pub url: String,
    pub region: String,
    pub tags: Vec<String>,
    /// The portal's home page, when the feed names it.
    pub site_link: Option<String>,
    /// The feed's own title, when a poll has read it.
    pub title: Option<String>,
}

/// Renders `sources` as OPML, one folder outline per region, regions and the
/// feeds inside them in the order given (config order, which the admin chose).
///
/// `dateCreated` is left out so the same sources always give the same bytes,
/// and so the same cache validators.
pub fn render(title: &str, sources: &[OpmlSource]) -> Vec<u8> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_opml(&mut writer, title, sources).expect("writing XML to a Vec cannot fail");
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    bytes
}

type XmlResult = std::io::Result<()>;

fn write_opml(w: &mut Writer<Vec<u8>>, title: &str, sources: &[OpmlSource]) -> XmlResult {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.create_element("opml")
        .with_attribute(("version", "2.0"))
        .write_inner_content(|w| {
            w.create_element("head").write_inner_content(|w| {
                w.create_element("title")
                    .write_text_content(BytesText::new(&strip_xml_forbidden(title)))?;
                Ok(())
            })?;
            w.create_element("body").write_inner_content(|w| {
                for (region, members) in by_region(sources) {
                    w.create_element("outline")
                        .with_attribute(("text", strip_xml_forbidden(region).as_ref()))
                        .write_inner_content(|w| {
                            for source in members {
                                write_source(w, source)?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// Groups sources by region, keeping first-appearance order of regions and
/// config order within each.
fn by_region(sources: &[OpmlSource]) -> Vec<(&str, Vec<&OpmlSource>)> {
    let mut groups: Vec<(&str, Vec<&OpmlSource>)> = Vec::new();
    for source in sources {
        match groups.iter_mut().find(|(r, _)| *r == source.region) {
            Some((_, members)) => members.push(source),
            None => groups.push((&source.region, vec![source])),
        }
    }
    groups
}

fn write_source(w: &mut Writer<Vec<u8>>, source: &OpmlSource) -> XmlResult {
    let name = strip_xml_forbidden(&source.name);
    // The spec says `title` should not be omitted; the name stands in until a
    // poll has read the feed's own title.
    let title = strip_xml_forbidden(source.title.as_deref().unwrap_or(&source.name));
    let url = strip_xml_forbidden(&source.url);
    let mut element = w.create_element("outline").with_attributes([
        ("type", "rss"),
        ("text", name.as_ref()),
        ("title", title.as_ref()),
        ("xmlUrl", url.as_ref()),
    ]);
    let site = source.site_link.as_deref().map(strip_xml_forbidden);
    if let Some(site) = &site {
        element = element.with_attribute(("htmlUrl", site.as_ref()));
    }
    let category = category(&source.tags);
    if !category.is_empty() {
        element = element.with_attribute(("category", category.as_str()));
    }
    element.write_empty()?;
    Ok(())
}

/// OPML's `category` is a comma-separated list where a string without slashes
/// is a tag; a comma or slash inside a tag would split it or make it a path,
/// so both become spaces.
fn category(tags: &[String]) -> String {
    let mut cleaned: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag: String = strip_xml_forbidden(tag)
            .chars()
            .map(|c| if matches!(c, ',' | '/') { ' ' } else { c })
            .collect();
        let tag = crate::text::collapse_whitespace(&tag);
        if !tag.is_empty() && !cleaned.contains(&tag) {
            cleaned.push(tag);
        }
    }
    cleaned.join(",")
}

#[cfg(test)]
mod tests {
    use quick_xml::Reader;
    use quick_xml::XmlVersion;
    use quick_xml::events::BytesStart;

    use super::*;

    fn source(name: &str, region: &str, tags: &[&str]) -> OpmlSource {
        OpmlSource {
            name: name.into(),
            url: format!("https://{name}.example/rss?a=1&b=2"),
            region: region.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            site_link: Some(format!("https://{name}.example/")),
            title: Some(format!("{name} & Co")),
        }
    }

    /// The document read back with quick-xml: its elements in document order,
    /// plus the head title.
    struct Parsed {
        elements: Vec<Element>,
        title: String,
    }

    struct Element {
        depth: usize,
        name: String,
        attributes: Vec<(String, String)>,
    }

    impl Element {
        fn new(depth: usize, e: &BytesStart) -> Element {
            Element {
                depth,
                name: e.name().as_ref().to_string(),
                attributes: attributes(e),
            }
        }

        fn attr(&self, key: &str) -> Option<&str> {
            self.attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    fn attributes(e: &BytesStart) -> Vec<(String, String)> {
        e.attributes()
            .map(|a| {
                let a = a.unwrap();
                let key = a.key.as_ref().to_string();
                let value = a.normalized_value(XmlVersion::Explicit1_0).unwrap();
                (key, value.into_owned())
            })
            .collect()
    }

    fn parse(bytes: &[u8]) -> Parsed {
        let text = std::str::from_utf8(bytes).unwrap();
        let mut reader = Reader::from_str(text);
        let mut parsed = Parsed {
            elements: Vec::new(),
            title: String::new(),
        };
        let mut depth = 0;
        let mut in_title = false;
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    let element = Element::new(depth, &e);
                    in_title = element.name == "title";
                    parsed.elements.push(element);
                    depth += 1;
                }
                Event::Empty(e) => parsed.elements.push(Element::new(depth, &e)),
                Event::End(_) => {
                    in_title = false;
                    depth -= 1;
                }
                Event::Text(t) if in_title => parsed.title.push_str(&t),
                Event::GeneralRef(r) if in_title => {
                    parsed
                        .title
                        .push_str(quick_xml::escape::resolve_xml_entity(&r).unwrap());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element is closed");
        parsed
    }

    #[test]
    fn groups_feeds_by_region_in_config_order() {
        let sources = [
            source("pikiran", "jawa-barat", &["umum"]),
            source("detik", "jawa-timur", &[]),
            source("tribun", "jawa-barat", &["kriminal", "daerah"]),
        ];
        let parsed = parse(&render("Sumber kabar", &sources));
        let shape: Vec<(usize, &str, Option<&str>)> = parsed
            .elements
            .iter()
            .map(|e| (e.depth, e.name.as_str(), e.attr("text")))
            .collect();
        assert_eq!(
            shape,
            [
                (0, "opml", None),
                (1, "head", None),
                (2, "title", None),
                (1, "body", None),
                (2, "outline", Some("jawa-barat")),
                (3, "outline", Some("pikiran")),
                (3, "outline", Some("tribun")),
                (2, "outline", Some("jawa-timur")),
                (3, "outline", Some("detik")),
            ]
        );
        assert_eq!(parsed.elements[0].attr("version"), Some("2.0"));
        assert_eq!(parsed.title, "Sumber kabar");
    }

    #[test]
    fn feed_outline_has_the_subscription_attributes() {
        let parsed = parse(&render(
            "Kabar",
            &[source("tribun", "jawa-barat", &["kriminal", "daerah"])],
        ));
        let feed = &parsed.elements[5];
        assert_eq!(feed.attr("type"), Some("rss"));
        assert_eq!(feed.attr("text"), Some("tribun"));
        assert_eq!(feed.attr("title"), Some("tribun & Co"));
        assert_eq!(
            feed.attr("xmlUrl"),
            Some("https://tribun.example/rss?a=1&b=2")
        );
        assert_eq!(feed.attr("htmlUrl"), Some("https://tribun.example/"));
        assert_eq!(feed.attr("category"), Some("kriminal,daerah"));
    }

    #[test]
    fn unknown_parts_are_left_out_or_stood_in_for() {
        let mut s = source("baru", "bali", &[]);
        s.site_link = None;
        s.title = None;
        let parsed = parse(&render("Kabar", &[s]));
        let feed = &parsed.elements[5];
        assert_eq!(feed.attr("title"), Some("baru"));
        assert_eq!(feed.attr("htmlUrl"), None);
        assert_eq!(feed.attr("category"), None);
    }

    #[test]
    fn tags_cannot_break_the_category_list_and_text_is_escaped() {
        let mut s = source("x", "jawa-barat", &["a,b", "hukum/kriminal", "", "a b"]);
        s.title = Some("A < B \u{1}\"C\"".into());
        let bytes = render("Kabar & \u{2}teman", &[s]);
        assert!(!bytes.contains(&1) && !bytes.contains(&2));
        let parsed = parse(&bytes);
        let feed = &parsed.elements[5];
        assert_eq!(feed.attr("category"), Some("a b,hukum kriminal"));
        assert_eq!(feed.attr("title"), Some("A < B \"C\""));
        assert_eq!(parsed.title, "Kabar & teman");
    }

    #[test]
    fn same_sources_give_the_same_bytes() {
        let sources = [source("a", "aceh", &["x"])];
        assert_eq!(render("K", &sources), render("K", &sources));
        assert!(
            !String::from_utf8(render("K", &sources))
                .unwrap()
                .contains("dateCreated")
        );
        let empty = parse(&render("K", &[]));
        assert_eq!(empty.elements.last().unwrap().name, "body");
    }
}

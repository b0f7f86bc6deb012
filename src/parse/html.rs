//! Recognises an HTML page served in place of a feed and finds the feed it advertises. Pure.
//!
//! Portals answer an old feed path with their home page, and bot protection
//! answers with a challenge page; the admin should learn that, and where the
//! feed is now, rather than read a parser error. A tolerant scan is enough for
//! `<link>` tags in a page head; no HTML parser is needed.

use url::Url;

/// Media types of `<link rel="alternate">` tags that point at a feed.
const FEED_TYPES: [&str; 3] = [
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
];

/// Elements a feed or sitemap never starts with but an HTML page does.
const HTML_ROOTS: [&str; 8] = [
    "html", "head", "body", "meta", "title", "script", "div", "noscript",
];

/// Whether `text` is an HTML page: its first element (after any XML
/// declaration, comments and white space) is `<!DOCTYPE html>` or an HTML element.
pub fn looks_like_html(text: &str) -> bool {
    let mut rest = text.trim_start_matches(['\u{FEFF}', ' ', '\t', '\r', '\n']);
    loop {
        let skip_to = if rest.starts_with("<?") {
            rest.find("?>").map(|i| i + 2)
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else {
            break;
        };
        let Some(skip_to) = skip_to else {
            return false;
        };
        rest = rest[skip_to..].trim_start();
    }
    let Some(tag) = rest.strip_prefix('<') else {
        return false;
    };
    if starts_with_ignore_case(tag, "!doctype") {
        let name = tag["!doctype".len()..].trim_start();
        return starts_with_ignore_case(name, "html");
    }
    let name: String = tag
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    HTML_ROOTS.contains(&name.as_str())
}

/// The first feed the page advertises with `<link rel="alternate" type="…feed type…">`,
/// made absolute against `base_url` (where the page was fetched from).
pub fn advertised_feed(html: &str, base_url: &str) -> Option<String> {
    let base = Url::parse(base_url).ok();
    links(html)
        .filter(|attrs| {
            let rel = attr(attrs, "rel").unwrap_or_default();
            let ty = attr(attrs, "type").unwrap_or_default();
            let media_type = ty.split(';').next().unwrap_or_default().trim();
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("alternate"))
                && FEED_TYPES
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(media_type))
        })
        .filter_map(|attrs| {
            let href = attr(&attrs, "href")?;
            let href = decode_attribute(href.trim());
            if href.is_empty() {
                return None;
            }
            match &base {
                Some(base) => base.join(&href).ok(),
                None => Url::parse(&href).ok(),
            }
        })
        .map(String::from)
        .next()
}

type Attributes<'a> = Vec<(&'a str, &'a str)>;

fn attr<'a>(attrs: &Attributes<'a>, name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The attributes of every `<link>` tag, outside comments.
fn links(html: &str) -> impl Iterator<Item = Attributes<'_>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(found) = html[at..].find('<') {
            let start = at + found;
            let rest = &html[start + 1..];
            if rest.starts_with("!--") {
                at = rest.find("-->").map_or(html.len(), |i| start + 1 + i + 3);
                continue;
            }
            at = start + 1;
            let is_link = starts_with_ignore_case(rest, "link")
                && rest[4..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_whitespace() || c == '/' || c == '>');
            if is_link {
                let (attrs, end) = attributes(&rest[4..]);
                at = start + 1 + 4 + end;
                return Some(attrs);
            }
        }
        None
    })
}

/// Reads attributes up to the end of a tag; returns them and the bytes consumed.
/// Values may be double-, single- or unquoted; a `>` inside quotes does not end the tag.
fn attributes(tag: &str) -> (Attributes<'_>, usize) {
    let bytes = tag.as_bytes();
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, i);
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let name_start = i;
        while i < bytes.len()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
            && !bytes[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = &tag[name_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            attrs.push((name, ""));
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let value_start = i + 1;
                let len = bytes[value_start..]
                    .iter()
                    .position(|b| *b == quote)
                    .unwrap_or(bytes.len() - value_start);
                i = (value_start + len + 1).min(bytes.len());
                &tag[value_start..value_start + len]
            }
            _ => {
                let value_start = i;
                while i < bytes.len() && bytes[i] != b'>' && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                &tag[value_start..i]
            }
        };
        attrs.push((name, value));
    }
}

/// Undoes the escapes found in `href` values (`&amp;` in query strings above all).
fn decode_attribute(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_html_pages() {
        let cases = [
            ("<!DOCTYPE html><html><head></head></html>", true),
            ("\n  <!doctype HTML>\n<html lang=\"id\">", true),
            ("<HTML><BODY>Akses ditolak</BODY></HTML>", true),
            ("<!-- cache 3 ms --><html>", true),
            (
                r#"<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x"><html>"#,
                true,
            ),
            ("<head><title>Sebentar...</title>", true),
            ("\u{FEFF}<body>Verifikasi</body>", true),
            (r#"<?xml version="1.0"?><rss version="2.0">"#, false),
            ("<feed xmlns=\"http://www.w3.org/2005/Atom\">", false),
            ("<urlset>", false),
            ("<htmlfeed>", false),
            (r#"{"version": "https://jsonfeed.org/version/1.1"}"#, false),
            ("Akses ditolak", false),
            ("", false),
        ];
        for (text, expected) in cases {
            assert_eq!(looks_like_html(text), expected, "{text:?}");
        }
    }

    #[test]
    fn finds_the_advertised_feed() {
        let base = "https://kabarbanten.example/berita/terkini";
        let cases = [
            (
                r#"<link rel="alternate" type="application/rss+xml" href="/rss">"#,
                Some("https://kabarbanten.example/rss"),
            ),
            (
                r#"<LINK HREF='feed.xml' TYPE='application/atom+xml' REL='alternate' />"#,
                Some("https://kabarbanten.example/berita/feed.xml"),
            ),
            (
                r#"<link type=application/feed+json rel=alternate href=https://json.example/feed.json>"#,
                Some("https://json.example/feed.json"),
            ),
            (
                r#"<link rel="alternate home" title="A > B" type="application/rss+xml; charset=utf-8" href="/rss?kanal=daerah&amp;hal=1">"#,
                Some("https://kabarbanten.example/rss?kanal=daerah&hal=1"),
            ),
            (
                r#"<link rel="stylesheet" href="/gaya.css"><link rel="alternate" hreflang="en" href="/en"><link rel="alternate" type="application/rss+xml" href="//cdn.example/rss">"#,
                Some("https://cdn.example/rss"),
            ),
            (
                r#"<!-- <link rel="alternate" type="application/rss+xml" href="/lama"> --><link rel="alternate" type="application/rss+xml" href="/baru">"#,
                Some("https://kabarbanten.example/baru"),
            ),
            (
                r#"<link rel="alternate" type="application/rss+xml" href="">"#,
                None,
            ),
            (
                r#"<linked rel="alternate" type="application/rss+xml" href="/x">"#,
                None,
            ),
            (r#"<a rel="alternate" href="/rss">RSS</a>"#, None),
            ("<html><head><title>Beranda</title></head></html>", None),
        ];
        for (html, expected) in cases {
            assert_eq!(advertised_feed(html, base).as_deref(), expected, "{html}");
        }
    }

    #[test]
    fn without_a_base_only_absolute_links_count() {
        let html = r#"<link rel="alternate" type="application/rss+xml" href="/rss"><link rel="alternate" type="application/rss+xml" href="https://a.example/rss">"#;
        assert_eq!(
            advertised_feed(html, "bukan url").as_deref(),
            Some("https://a.example/rss")
        );
    }
}

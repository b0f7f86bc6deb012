//! HTML safety: the allowlist sanitizer, and recognising HTML that a feed escaped once too often.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use scraper::Html;
use url::Url;

const TAGS: &[&str] = &[
    "p",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "a",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "small",
    "sub",
    "sup",
    "mark",
    "q",
    "cite",
    "code",
    "pre",
    "blockquote",
    "figure",
    "figcaption",
    "img",
    "table",
    "caption",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "hr",
    "abbr",
    "time",
];

/// Whether the sanitizer keeps `name` (lower-case) as a tag; others lose
/// their tags and keep their content.
pub fn is_allowed_tag(name: &str) -> bool {
    TAGS.contains(&name)
}

/// The sanitizer: only the tags above, only harmless attributes, only http(s) and
/// mailto URLs. `data:` images are refused too: in feeds they are lazy-loading
/// placeholders or inline blobs that bloat every reader's copy of the feed.
/// Relative URLs resolve against `base`.
fn sanitizer(base: &Url) -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::empty();
    builder
        .add_tags(TAGS.iter().copied())
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("img", ["src", "alt", "title", "width", "height"])
        .add_tag_attributes("td", ["colspan", "rowspan"])
        .add_tag_attributes("th", ["colspan", "rowspan"])
        .add_tag_attributes("abbr", ["title"])
        .add_tag_attributes("time", ["datetime"])
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()));
    builder
}

thread_local! {
    /// Building the sanitizer's tag and attribute sets costs more than many a
    /// small item's cleaning, so each thread builds it once; only the base for
    /// relative URLs changes from item to item.
    static SANITIZER: RefCell<Option<ammonia::Builder<'static>>> = const { RefCell::new(None) };
}

/// Sanitizes `html`; relative URLs resolve against `base` (the item's URL).
pub fn sanitize(html: &str, base: &Url) -> String {
    let document = SANITIZER.with_borrow_mut(|cached| match cached {
        Some(builder) => {
            builder.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()));
            builder.clean(html)
        }
        None => cached.insert(sanitizer(base)).clean(html),
    });
    // What `document.to_string()` gives, serialized straight into one buffer.
    let mut bytes = Vec::with_capacity(html.len());
    document
        .write_to(&mut bytes)
        .expect("writing to a Vec does not fail");
    let cleaned = String::from_utf8(bytes).expect("html5ever writes UTF-8");
    let cleaned = match remove_empty_inline(&cleaned) {
        Cow::Borrowed(_) => None,
        Cow::Owned(changed) => Some(changed),
    }
    .unwrap_or(cleaned);
    if cleaned.trim().len() == cleaned.len() {
        cleaned
    } else {
        cleaned.trim().to_string()
    }
}

/// `<strong></strong>` and the like, left behind when a rule removed their text.
fn remove_empty_inline(html: &str) -> Cow<'_, str> {
    static EMPTY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"<(strong|b|em|i|u|s|small|mark|q|cite|code|sub|sup|a)(\s[^>]*)?>\s*</(strong|b|em|i|u|s|small|mark|q|cite|code|sub|sup|a)>")
            .expect("static regex")
    });
    static EMPTY_P: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"<p>(\s|&nbsp;)*</p>\s*").expect("static regex"));
    if !html.contains("></") {
        return Cow::Borrowed(html);
    }
    let mut text = html.to_string();
    // Two rounds: removing an inner pair can leave an outer one empty.
    for _ in 0..2 {
        text = EMPTY.replace_all(&text, "").into_owned();
    }
    Cow::Owned(EMPTY_P.replace_all(&text, "").into_owned())
}

/// If `body` holds no markup of its own but escaped markup (`&lt;p&gt;…`), decode
/// it once. HTML that is already markup is returned as it is, so a body is never
/// decoded twice.
pub fn unescape_if_escaped(body: &str) -> Cow<'_, str> {
    static REAL_TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)<(/?[a-z][a-z0-9]*)[\s/>]").expect("static regex"));
    static ESCAPED_TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)&lt;/?(p|br|div|img|a|strong|b|em|i|span|h[1-6]|ul|ol|li|figure|table|blockquote|script|iframe)(\s|/|&gt;)")
            .expect("static regex")
    });
    if REAL_TAG.is_match(body) || !ESCAPED_TAG.is_match(body) {
        return Cow::Borrowed(body);
    }
    // The HTML parser decodes every entity exactly once, including numeric ones.
    let fragment = Html::parse_fragment(body);
    Cow::Owned(fragment.root_element().text().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://contoh.example/berita/1").unwrap()
    }

    #[test]
    fn escaped_markup_is_decoded_once() {
        assert_eq!(
            unescape_if_escaped("&lt;p&gt;Harga &amp;amp; stok&lt;/p&gt;"),
            "<p>Harga &amp; stok</p>"
        );
        // Real markup with an escaped example inside is left alone.
        let real = "<p>Tulis &lt;p&gt; untuk paragraf</p>";
        assert_eq!(unescape_if_escaped(real), real);
        assert_eq!(
            unescape_if_escaped("Pemkot &amp; DPRD"),
            "Pemkot &amp; DPRD"
        );
    }

    #[test]
    fn allowlist_keeps_structure_and_drops_danger() {
        let out = sanitize(
            r#"<h2 style="color:red">Sub</h2><p>a <a href="/x" onclick="y()">b</a></p><img src="data:image/png;base64,AAAA"><iframe src="https://v.example"></iframe><svg><script>1</script></svg>"#,
            &base(),
        );
        assert_eq!(
            out,
            r#"<h2>Sub</h2><p>a <a href="https://contoh.example/x" rel="noopener noreferrer nofollow">b</a></p><img>"#
        );
    }
}

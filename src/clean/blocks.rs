//! Turns an HTML fragment into a flat list of paragraphs ("blocks") that line rules can judge one by one.
//!
//! Feeds mix real paragraphs, `<br>`-separated lines and bare text with
//! newlines; all three become one block per line. Lists, tables, quotes and
//! figures stay whole. Images are rewritten on the way: lazy-loading `data-src`
//! becomes `src`, and tracking pixels are dropped.

use ego_tree::NodeRef;
use scraper::{ElementRef, Node};

/// A piece of a block: text (unescaped) or ready-made markup.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Text(String),
    Markup(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// `p`, `h2`, … for line blocks; the element name for whole blocks.
    pub tag: String,
    pub segs: Vec<Seg>,
    /// Kept whole: its markup is in `segs` as one piece and must not be split.
    pub atomic: bool,
    pub has_media: bool,
    text_chars: usize,
    link_chars: usize,
    atomic_text: String,
}

impl Block {
    fn new(tag: &str) -> Block {
        Block {
            tag: tag.to_string(),
            segs: Vec::new(),
            atomic: false,
            has_media: false,
            text_chars: 0,
            link_chars: 0,
            atomic_text: String::new(),
        }
    }

    /// The block's text with white space collapsed, as rules see it.
    pub fn text(&self) -> String {
        if self.atomic {
            return crate::text::collapse_whitespace(&self.atomic_text);
        }
        let joined: String = self
            .segs
            .iter()
            .filter_map(|s| match s {
                Seg::Text(t) => Some(t.as_str()),
                Seg::Markup(_) => None,
            })
            .collect();
        if is_collapsed(&joined) {
            joined
        } else {
            crate::text::collapse_whitespace(&joined)
        }
    }

    /// True when all of the block's text is link text (a "related articles" line).
    pub fn links_only(&self) -> bool {
        self.text_chars > 0 && self.link_chars * 10 >= self.text_chars * 9
    }

    /// Same as `!has_media && text().is_empty()`, without building the text:
    /// collapsed text is empty exactly when every character is one that
    /// `collapse_whitespace` drops.
    pub fn is_empty(&self) -> bool {
        if self.has_media {
            return false;
        }
        if self.atomic {
            return is_blank(&self.atomic_text);
        }
        self.segs.iter().all(|s| match s {
            Seg::Text(t) => is_blank(t),
            Seg::Markup(_) => true,
        })
    }

    /// Removes the first `count` characters of the block's collapsed text,
    /// mirroring how `text()` collapses white space.
    pub fn strip_text_prefix(&mut self, count: usize) {
        let mut counted = 0;
        let mut previous_space = true; // leading space is trimmed by text()
        for seg in &mut self.segs {
            let Seg::Text(text) = seg else { continue };
            let mut kept = String::new();
            for c in text.chars() {
                if counted >= count {
                    kept.push(c);
                    continue;
                }
                if c.is_whitespace() {
                    if !previous_space {
                        counted += 1;
                    }
                    previous_space = true;
                } else {
                    counted += 1;
                    previous_space = false;
                }
            }
            *text = kept;
            if counted >= count {
                break;
            }
        }
        // What follows the stripped prefix starts the paragraph: no leading space.
        for seg in &mut self.segs {
            if let Seg::Text(text) = seg {
                let trimmed = text.trim_start().to_string();
                let was_empty = trimmed.is_empty();
                *text = trimmed;
                if !was_empty {
                    break;
                }
            }
        }
    }

    /// The block as HTML.
    pub fn to_html(&self) -> String {
        let mut html = String::new();
        self.write_html(&mut html);
        html
    }

    /// Appends the block as HTML (what `to_html` returns) to `out`.
    pub fn write_html(&self, out: &mut String) {
        if !self.atomic {
            out.push('<');
            out.push_str(&self.tag);
            out.push('>');
        }
        for seg in &self.segs {
            match seg {
                Seg::Text(t) => escape_text_into(t, out),
                Seg::Markup(m) => out.push_str(m),
            }
        }
        if !self.atomic {
            out.push_str("</");
            out.push_str(&self.tag);
            out.push('>');
        }
    }
}

/// Whether `crate::text::collapse_whitespace` would return `text` unchanged:
/// no white space at either end, only single ASCII spaces inside, and none
/// of the other characters it treats as space.
fn is_collapsed(text: &str) -> bool {
    if text.starts_with(' ') || text.ends_with(' ') {
        return false;
    }
    single_spaced_without(text, |c| matches!(c, '\u{A0}' | '\u{200B}' | '\u{FEFF}'))
}

/// Whether `crate::text::collapse_whitespace` makes `text` empty: it keeps
/// every character but these.
fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || matches!(c, '\u{A0}' | '\u{200B}' | '\u{FEFF}'))
}

/// Elements dropped with everything inside them.
const DROPPED: &[&str] = &[
    "script", "style", "noscript", "iframe", "template", "object", "embed", "form", "button",
    "input", "select", "textarea", "svg", "math", "canvas", "video", "audio", "head", "title",
    "meta", "link",
];
/// Containers whose children are laid out as blocks of their own.
const TRANSPARENT: &[&str] = &[
    "html", "body", "div", "section", "article", "main", "header", "footer", "aside", "nav",
    "center",
];
/// Blocks whose lines become blocks of their own.
const LINE_BLOCKS: &[&str] = &["p", "h1", "h2", "h3", "h4", "h5", "h6", "address"];
/// Items of lists (kept whole): met alone, each becomes a paragraph.
const LIST_ITEMS: &[&str] = &["li", "dt", "dd"];
/// Blocks kept whole.
const ATOMIC: &[&str] = &[
    "ul",
    "ol",
    "dl",
    "table",
    "blockquote",
    "figure",
    "pre",
    "hr",
];

/// Splits the children of `root` into blocks.
pub fn blocks_of(root: ElementRef<'_>) -> Vec<Block> {
    let mut builder = Builder {
        blocks: Vec::new(),
        current: Block::new("p"),
        current_tag: "p".to_string(),
        link_depth: 0,
    };
    for child in root.children() {
        builder.walk(child, true);
    }
    builder.flush();
    builder.blocks
}

struct Builder {
    blocks: Vec<Block>,
    current: Block,
    current_tag: String,
    link_depth: usize,
}

impl Builder {
    fn flush(&mut self) {
        let tag = self.current_tag.clone();
        let mut done = std::mem::replace(&mut self.current, Block::new(&tag));
        // Nor does a paragraph end in space.
        if let Some(Seg::Text(last)) = done
            .segs
            .iter_mut()
            .rev()
            .find(|s| matches!(s, Seg::Text(t) if !t.is_empty()))
        {
            let trimmed = last.trim_end().len();
            last.truncate(trimmed);
        }
        if !done.is_empty() {
            self.blocks.push(done);
        }
    }

    fn push_text(&mut self, text: &str) {
        let mut normalized = normalize_spaces(text);
        let ends_in_space = |segs: &[Seg]| {
            segs.iter().rev().find_map(|s| match s {
                Seg::Text(t) if !t.is_empty() => Some(t.ends_with(' ')),
                _ => None,
            })
        };
        // A paragraph starts with text, and spaces split by dropped markup collapse
        // into one, so that cleaning its own output changes nothing.
        if self.current.text_chars == 0 || ends_in_space(&self.current.segs).unwrap_or(true) {
            let leading = normalized.len() - normalized.trim_start().len();
            normalized.drain(..leading);
        }
        if normalized.is_empty() {
            return;
        }
        // normalize_spaces leaves no white space but ASCII spaces.
        let spaces = normalized.bytes().filter(|b| *b == b' ').count();
        let chars = normalized.chars().count() - spaces;
        self.current.text_chars += chars;
        if self.link_depth > 0 {
            self.current.link_chars += chars;
        }
        self.current.segs.push(Seg::Text(normalized));
    }

    /// `top_level`: outside any paragraph, where a newline in text ends a line.
    fn walk(&mut self, node: NodeRef<'_, Node>, top_level: bool) {
        match node.value() {
            Node::Text(text) => {
                if top_level {
                    let mut lines = text.split('\n');
                    if let Some(first) = lines.next() {
                        self.push_text(first);
                    }
                    for line in lines {
                        self.flush();
                        self.push_text(line);
                    }
                } else {
                    self.push_text(text);
                }
            }
            Node::Element(element) => {
                let name = element.name();
                let Some(element_ref) = ElementRef::wrap(node) else {
                    return;
                };
                if DROPPED.contains(&name) {
                } else if TRANSPARENT.contains(&name) {
                    self.flush();
                    for child in node.children() {
                        self.walk(child, true);
                    }
                    self.flush();
                } else if LINE_BLOCKS.contains(&name) || LIST_ITEMS.contains(&name) {
                    // A list item outside its list (lists are kept whole, so
                    // this is one) is a paragraph: alone it is not valid HTML,
                    // and the sanitizer would move it on a second cleaning.
                    let tag = if LIST_ITEMS.contains(&name) {
                        "p"
                    } else {
                        name
                    };
                    self.flush();
                    let outer = std::mem::replace(&mut self.current_tag, tag.to_string());
                    self.current = Block::new(tag);
                    for child in node.children() {
                        self.walk(child, false);
                    }
                    self.flush();
                    self.current_tag = outer;
                    self.current = Block::new(&self.current_tag);
                } else if ATOMIC.contains(&name) {
                    self.flush();
                    let mut block = Block::new(name);
                    block.atomic = true;
                    let mut html = String::new();
                    serialize(element_ref, &mut html, &mut block.has_media);
                    block.atomic_text = element_ref.text().collect::<Vec<_>>().join(" ");
                    let link_text: usize = element_ref
                        .select(&LINKS)
                        .flat_map(|a| a.text())
                        .map(|t| t.chars().filter(|c| !c.is_whitespace()).count())
                        .sum();
                    block.text_chars = block
                        .atomic_text
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .count();
                    block.link_chars = link_text;
                    block.segs.push(Seg::Markup(html));
                    if !block.is_empty() {
                        self.blocks.push(block);
                    }
                } else if name == "br" {
                    self.flush();
                } else if name == "img" {
                    let mut html = String::new();
                    let mut has_media = false;
                    serialize(element_ref, &mut html, &mut has_media);
                    if has_media {
                        self.current.has_media = true;
                        self.current.segs.push(Seg::Markup(html));
                    }
                } else if !super::html::is_allowed_tag(name) || holds_blocks(element_ref) {
                    // The sanitizer would drop its tags and keep its content:
                    // do so now, so that the blocks' text (and the trimming
                    // of its ends) is the text readers get. An inline element
                    // around paragraphs or lists (`<a>` around a list) would
                    // be split over several blocks and rebuilt differently by
                    // each cleaning; it loses its tags too.
                    for child in node.children() {
                        self.walk(child, top_level);
                    }
                } else {
                    // Inline element: keep its tag around its content.
                    let mut open = String::new();
                    open_tag(element_ref, &mut open);
                    self.current.segs.push(Seg::Markup(open));
                    let is_link = name == "a";
                    self.link_depth += usize::from(is_link);
                    for child in node.children() {
                        self.walk(child, top_level);
                    }
                    self.link_depth -= usize::from(is_link);
                    self.current.segs.push(Seg::Markup(format!("</{name}>")));
                }
            }
            _ => {}
        }
    }
}

/// Whether an element has paragraphs, lists or other blocks inside.
fn holds_blocks(element: ElementRef<'_>) -> bool {
    element.descendants().skip(1).any(|node| {
        node.value().as_element().is_some_and(|e| {
            let name = e.name();
            TRANSPARENT.contains(&name)
                || LINE_BLOCKS.contains(&name)
                || LIST_ITEMS.contains(&name)
                || ATOMIC.contains(&name)
        })
    })
}

static LINKS: std::sync::LazyLock<scraper::Selector> =
    std::sync::LazyLock::new(|| scraper::Selector::parse("a").expect("static selector"));

/// Non-breaking, zero-width and other odd spaces become plain spaces; runs collapse.
fn normalize_spaces(text: &str) -> String {
    if is_normal_spaced(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut previous_space = false;
    for c in text.chars() {
        let c = match c {
            '\u{A0}' | '\u{2007}' | '\u{202F}' | '\u{2000}'..='\u{200A}' | '\u{3000}' => ' ',
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{AD}' => continue,
            c => c,
        };
        if c.is_whitespace() {
            if !previous_space {
                out.push(' ');
            }
            previous_space = true;
        } else {
            out.push(c);
            previous_space = false;
        }
    }
    out
}

/// No white space but single ASCII spaces, and no character `odd` picks out
/// (all of them are outside ASCII, so ASCII text takes a byte scan).
fn single_spaced_without(text: &str, odd: impl Fn(char) -> bool) -> bool {
    if text.is_ascii() {
        return ascii_single_spaced(text.as_bytes());
    }
    let mut previous_space = false;
    for c in text.chars() {
        if c == ' ' {
            if previous_space {
                return false;
            }
            previous_space = true;
            continue;
        }
        previous_space = false;
        if c.is_whitespace() || odd(c) {
            return false;
        }
    }
    true
}

/// For ASCII text: no white space but ASCII spaces, and no two in a row.
fn ascii_single_spaced(bytes: &[u8]) -> bool {
    !bytes.iter().any(|b| matches!(b, b'\t'..=b'\r')) && !bytes.windows(2).any(|pair| pair == b"  ")
}

/// Whether `normalize_spaces` would return `text` unchanged: no white space
/// but single ASCII spaces, and none of the characters it drops.
fn is_normal_spaced(text: &str) -> bool {
    single_spaced_without(text, |c| {
        matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{AD}'
        )
    })
}

/// Serializes an element and its subtree; images are fixed or dropped on the way.
fn serialize(element: ElementRef<'_>, out: &mut String, has_media: &mut bool) {
    let name = element.value().name();
    if DROPPED.contains(&name) {
        return;
    }
    if name == "img" {
        if let Some(img) = image_tag(element) {
            out.push_str(&img);
            *has_media = true;
        }
        return;
    }
    open_tag(element, out);
    if matches!(name, "br" | "hr" | "wbr" | "col") {
        return;
    }
    for child in element.children() {
        match child.value() {
            Node::Text(text) => escape_text_into(&normalize_spaces(text), out),
            Node::Element(_) => {
                if let Some(child) = ElementRef::wrap(child) {
                    serialize(child, out, has_media);
                }
            }
            _ => {}
        }
    }
    out.push_str(&format!("</{name}>"));
}

fn open_tag(element: ElementRef<'_>, out: &mut String) {
    out.push('<');
    out.push_str(element.value().name());
    for (name, value) in element.value().attrs() {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape_attr_into(value, out);
        out.push('"');
    }
    out.push('>');
}

/// Attributes lazy-loading scripts keep the real image URL in.
const LAZY_SOURCES: &[&str] = &[
    "data-src",
    "data-lazy-src",
    "data-original",
    "data-lazy",
    "data-url",
];
/// Hosts and paths of trackers that embed invisible images.
const TRACKERS: &[&str] = &[
    "google-analytics.com",
    "googletagmanager.com",
    "doubleclick.net",
    "facebook.com/tr",
    "scorecardresearch.com",
    "stats.wp.com",
    "pixel.wp.com",
    "mc.yandex.ru",
    "feedburner.com/~r/",
    "feedsportal.com",
    "/pixel.gif",
    "/pixel.png",
    "/track.gif",
];

/// The `<img>` to keep, with a real `src`; `None` for tracking pixels and images with no source.
fn image_tag(element: ElementRef<'_>) -> Option<String> {
    let el = element.value();
    let src = el.attr("src").map(str::trim).filter(|s| !s.is_empty());
    let lazy = LAZY_SOURCES
        .iter()
        .find_map(|name| el.attr(name))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let placeholder = |s: &str| {
        let lower = s.to_ascii_lowercase();
        lower.starts_with("data:")
            || [
                "placeholder",
                "blank.",
                "lazy",
                "spacer",
                "loading",
                "transparent.",
            ]
            .iter()
            .any(|p| lower.contains(p))
    };
    let chosen = match (src, lazy) {
        (Some(s), Some(l)) if placeholder(s) => l,
        (Some(s), _) => s,
        (None, Some(l)) => l,
        (None, None) => return None,
    };
    let tiny = |name: &str| {
        el.attr(name)
            .map(|v| v.trim().trim_end_matches("px").trim())
            .is_some_and(|v| v == "0" || v == "1")
    };
    let lower = chosen.to_ascii_lowercase();
    if (tiny("width") && tiny("height")) || TRACKERS.iter().any(|t| lower.contains(t)) {
        return None;
    }
    let mut out = String::from("<img src=\"");
    escape_attr_into(chosen, &mut out);
    out.push('"');
    for name in ["alt", "title", "width", "height"] {
        if let Some(value) = el.attr(name) {
            out.push_str(&format!(" {name}=\""));
            escape_attr_into(value, &mut out);
            out.push('"');
        }
    }
    out.push('>');
    Some(out)
}

fn escape_text_into(text: &str, out: &mut String) {
    escape_into(text, out, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        _ => None,
    });
}

fn escape_attr_into(text: &str, out: &mut String) {
    escape_into(text, out, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'"' => Some("&quot;"),
        _ => None,
    });
}

/// Copies `text` to `out`, replacing the ASCII characters `entity` names; the
/// runs in between are copied whole (an ASCII byte is always a whole character).
fn escape_into(text: &str, out: &mut String, entity: impl Fn(u8) -> Option<&'static str>) {
    out.reserve(text.len());
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        if let Some(replacement) = entity(byte) {
            out.push_str(&text[start..index]);
            out.push_str(replacement);
            start = index + 1;
        }
    }
    out.push_str(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Html;

    fn texts(html: &str) -> Vec<String> {
        let doc = Html::parse_fragment(html);
        blocks_of(doc.root_element())
            .iter()
            .map(|b| b.text())
            .collect()
    }

    #[test]
    fn paragraphs_lines_and_bare_text_become_blocks() {
        assert_eq!(
            texts("<p>Satu</p><p>Dua<br>Tiga</p>"),
            ["Satu", "Dua", "Tiga"]
        );
        assert_eq!(texts("Satu\n\nDua\nTiga"), ["Satu", "Dua", "Tiga"]);
        assert_eq!(
            texts("<div><div>Satu</div>Dua<br/>Tiga</div>"),
            ["Satu", "Dua", "Tiga"]
        );
        assert_eq!(texts("<p>\u{A0}</p><p></p><p>Isi</p>"), ["Isi"]);
    }

    #[test]
    fn lists_stay_whole_and_know_they_are_links() {
        let doc = Html::parse_fragment(
            r#"<p>Baca Juga</p><ul><li><a href="/a">Judul satu</a></li><li><a href="/b">Judul dua</a></li></ul>"#,
        );
        let blocks = blocks_of(doc.root_element());
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].atomic && blocks[1].links_only());
        assert!(!blocks[0].links_only());
    }

    #[test]
    fn lazy_images_get_their_source_and_pixels_go() {
        let doc = Html::parse_fragment(
            r#"<p><img src="data:image/gif;base64,R0l" data-src="https://img.example/a.jpg" alt="Foto"><img src="https://t.example/p.gif" width="1" height="1"><img src="https://www.google-analytics.com/collect?x=1"></p>"#,
        );
        let html: String = blocks_of(doc.root_element())
            .iter()
            .map(Block::to_html)
            .collect();
        assert_eq!(
            html,
            r#"<p><img src="https://img.example/a.jpg" alt="Foto"></p>"#
        );
    }

    #[test]
    fn strips_a_prefix_across_markup() {
        let doc = Html::parse_fragment("<p><strong>ISU  BOGOR</strong> - Warga berkumpul.</p>");
        let mut blocks = blocks_of(doc.root_element());
        blocks[0].strip_text_prefix("ISU BOGOR - ".chars().count());
        assert_eq!(blocks[0].text(), "Warga berkumpul.");
    }
}

//! Lenient repair of not-quite-XML feed text before feed-rs sees it, counting every change. Pure.
//!
//! Portal CMSs write `Pemkot & DPRD`, `?a=1&b=2`, `&nbsp;` and stray control
//! characters straight into their feeds. A strict parser rejects the whole
//! feed for one such byte, so these are fixed here, and counted so that the
//! caller can log how broken a feed is instead of hiding it.

use std::borrow::Cow;

use crate::text::is_xml_char;

/// How many fixes `repair_xml` made, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Bare `&` (not starting a reference XML knows) escaped as `&amp;`.
    pub ampersands: usize,
    /// Characters XML 1.0 forbids removed, raw or as character references.
    pub forbidden_chars: usize,
    /// HTML named entities (and windows-1252 character references) replaced by their characters.
    pub entities: usize,
}

impl Repairs {
    pub fn total(&self) -> usize {
        self.ampersands + self.forbidden_chars + self.entities
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

/// Repairs `text` so that an XML parser accepts it; borrows when nothing changed.
///
/// CDATA sections, comments and processing instructions keep their content
/// (an `&` is legal there); only forbidden characters are removed from them.
pub fn repair_xml(text: &str) -> (Cow<'_, str>, Repairs) {
    let mut edits = Edits::new(text);
    let mut repairs = Repairs::default();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                if let Some(end) = raw_section_end(text, i) {
                    remove_forbidden(text, i..end, &mut edits, &mut repairs);
                    i = end;
                } else {
                    i += 1;
                }
            }
            b'&' => i = repair_reference(text, i, &mut edits, &mut repairs),
            _ => i = remove_forbidden_at(text, i, &mut edits, &mut repairs),
        }
    }
    (edits.finish(), repairs)
}

/// The end of a CDATA section, comment or processing instruction starting at
/// `start`, or of the text when it is not closed.
fn raw_section_end(text: &str, start: usize) -> Option<usize> {
    const SECTIONS: [(&str, &str); 3] = [("<![CDATA[", "]]>"), ("<!--", "-->"), ("<?", "?>")];
    let rest = &text[start..];
    let (open, close) = SECTIONS.iter().find(|(open, _)| rest.starts_with(open))?;
    Some(match rest[open.len()..].find(close) {
        Some(at) => start + open.len() + at + close.len(),
        None => text.len(),
    })
}

fn remove_forbidden(
    text: &str,
    range: std::ops::Range<usize>,
    edits: &mut Edits<'_>,
    repairs: &mut Repairs,
) {
    let mut i = range.start;
    while i < range.end {
        i = remove_forbidden_at(text, i, edits, repairs);
    }
}

/// Removes the character at byte `i` if XML forbids it; returns where to look next.
///
/// Works on bytes: only ASCII controls and U+FFFE/U+FFFF (EF BF BE/BF) can be
/// forbidden in a `str`, and both start on a character boundary.
fn remove_forbidden_at(
    text: &str,
    i: usize,
    edits: &mut Edits<'_>,
    repairs: &mut Repairs,
) -> usize {
    let bytes = text.as_bytes();
    let len = match bytes[i] {
        b if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') => 1,
        0xEF if matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => 3,
        _ => return i + 1,
    };
    edits.replace(i..i + len, "");
    repairs.forbidden_chars += 1;
    i + len
}

/// Handles the `&` at byte `at`; returns where to continue.
fn repair_reference(text: &str, at: usize, edits: &mut Edits<'_>, repairs: &mut Repairs) -> usize {
    let rest = &text[at + 1..];
    // Longest entity name or character reference worth considering.
    let limit = rest.len().min(40);
    let Some(semi) = rest.as_bytes()[..limit].iter().position(|b| *b == b';') else {
        return escape_ampersand(at, edits, repairs);
    };
    let name = &rest[..semi];
    let end = at + 1 + semi + 1;
    if let Some(number) = name.strip_prefix('#') {
        match char_reference(number) {
            CharRef::Valid => {}
            CharRef::Rewrite(c) => {
                edits.replace(at..end, c.encode_utf8(&mut [0; 4]));
                repairs.entities += 1;
            }
            CharRef::Forbidden => {
                edits.replace(at..end, "");
                repairs.forbidden_chars += 1;
            }
            CharRef::NotANumber => return escape_ampersand(at, edits, repairs),
        }
        return end;
    }
    if !is_entity_name(name) {
        return escape_ampersand(at, edits, repairs);
    }
    if matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
        return end;
    }
    match html_entity(name) {
        Some(c) => {
            edits.replace(at..end, c.encode_utf8(&mut [0; 4]));
            repairs.entities += 1;
            end
        }
        // An unknown name is most likely text ("AT&T;"), and feed-rs could not
        // resolve it anyway.
        None => escape_ampersand(at, edits, repairs),
    }
}

fn escape_ampersand(at: usize, edits: &mut Edits<'_>, repairs: &mut Repairs) -> usize {
    edits.replace(at..at + 1, "&amp;");
    repairs.ampersands += 1;
    at + 1
}

enum CharRef {
    Valid,
    /// A reference XML rejects or misreads but whose meaning is clear: `&#X2013;`
    /// (XML wants a lower-case x), and `&#128;`–`&#159;`, C1 controls that old
    /// CMSs write meaning the windows-1252 characters (HTML decodes them so too).
    Rewrite(char),
    /// Out of range or a character XML forbids (`&#0;`, `&#x1B;`).
    Forbidden,
    NotANumber,
}

fn char_reference(number: &str) -> CharRef {
    let (digits, radix, upper_x) = if let Some(hex) = number.strip_prefix('x') {
        (hex, 16, false)
    } else if let Some(hex) = number.strip_prefix('X') {
        (hex, 16, true)
    } else {
        (number, 10, false)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return CharRef::NotANumber;
    }
    let Some(c) = u32::from_str_radix(digits, radix)
        .ok()
        .and_then(char::from_u32)
    else {
        return CharRef::Forbidden;
    };
    if ('\u{80}'..='\u{9F}').contains(&c) {
        let byte = [c as u8];
        let (decoded, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&byte);
        return match decoded.chars().next() {
            Some(d) if d != c => CharRef::Rewrite(d),
            _ if upper_x => CharRef::Rewrite(c),
            _ => CharRef::Valid,
        };
    }
    match (is_xml_char(c), upper_x) {
        (false, _) => CharRef::Forbidden,
        (true, true) => CharRef::Rewrite(c),
        (true, false) => CharRef::Valid,
    }
}

/// HTML entity names are ASCII letters and digits, starting with a letter.
fn is_entity_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Entity names of HTML 4's Latin-1 set, in code point order from U+00A0.
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// HTML 4's special and typographic entities, the ones news text uses.
const OTHER_ENTITIES: [(&str, char); 40] = [
    ("OElig", 'Œ'),
    ("oelig", 'œ'),
    ("Scaron", 'Š'),
    ("scaron", 'š'),
    ("Yuml", 'Ÿ'),
    ("fnof", 'ƒ'),
    ("circ", 'ˆ'),
    ("tilde", '˜'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("zwnj", '\u{200C}'),
    ("zwj", '\u{200D}'),
    ("lrm", '\u{200E}'),
    ("rlm", '\u{200F}'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("dagger", '†'),
    ("Dagger", '‡'),
    ("bull", '•'),
    ("hellip", '…'),
    ("permil", '‰'),
    ("prime", '′'),
    ("Prime", '″'),
    ("lsaquo", '‹'),
    ("rsaquo", '›'),
    ("oline", '‾'),
    ("euro", '€'),
    ("trade", '™'),
    ("larr", '←'),
    ("uarr", '↑'),
    ("rarr", '→'),
    ("darr", '↓'),
    ("harr", '↔'),
];

/// The character of an HTML named entity XML does not define. A short table
/// rather than quick-xml's `escape-html` feature: that feature would also
/// change how feed-rs and the Atom writer resolve entities, crate-wide.
fn html_entity(name: &str) -> Option<char> {
    if let Some(offset) = LATIN1_ENTITIES.iter().position(|n| *n == name) {
        return char::from_u32(0xA0 + offset as u32);
    }
    OTHER_ENTITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// Copy-on-write output: nothing is allocated until the first change.
struct Edits<'a> {
    source: &'a str,
    out: Option<String>,
    /// Bytes of `source` before this offset are already in `out`.
    copied: usize,
}

impl<'a> Edits<'a> {
    fn new(source: &'a str) -> Edits<'a> {
        Edits {
            source,
            out: None,
            copied: 0,
        }
    }

    /// Replaces `range` (at or after every earlier range) with `with`.
    fn replace(&mut self, range: std::ops::Range<usize>, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.source.len() + 64));
        out.push_str(&self.source[self.copied..range.start]);
        out.push_str(with);
        self.copied = range.end;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.source),
            Some(mut out) => {
                out.push_str(&self.source[self.copied..]);
                Cow::Owned(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repairs(ampersands: usize, forbidden_chars: usize, entities: usize) -> Repairs {
        Repairs {
            ampersands,
            forbidden_chars,
            entities,
        }
    }

    fn check(input: &str, expected: &str, expected_repairs: Repairs) {
        let (output, counted) = repair_xml(input);
        assert_eq!(output, expected, "input: {input:?}");
        assert_eq!(counted, expected_repairs, "input: {input:?}");
        assert_eq!(
            matches!(output, Cow::Borrowed(_)),
            expected_repairs.is_empty() || input == expected,
            "borrowed only when unchanged: {input:?}"
        );
    }

    #[test]
    fn bare_ampersands_are_escaped() {
        let cases = [
            (
                "<title>Pemkot & DPRD Sepakat</title>",
                "<title>Pemkot &amp; DPRD Sepakat</title>",
                1,
            ),
            (
                "<link>https://kabar.example/baca?a=1&b=2</link>",
                "<link>https://kabar.example/baca?a=1&amp;b=2</link>",
                1,
            ),
            (
                r#"<enclosure url="https://img.example/f.jpg?w=1&h=2"/>"#,
                r#"<enclosure url="https://img.example/f.jpg?w=1&amp;h=2"/>"#,
                1,
            ),
            ("<t>A&</t>", "<t>A&amp;</t>", 1),
            ("<t>PT A&B; Tbk</t>", "<t>PT A&amp;B; Tbk</t>", 1),
            ("<t>&#;</t>", "<t>&amp;#;</t>", 1),
            ("<t>&#xZZ;</t>", "<t>&amp;#xZZ;</t>", 1),
            ("<t>a && b</t>", "<t>a &amp;&amp; b</t>", 2),
        ];
        for (input, expected, count) in cases {
            check(input, expected, repairs(count, 0, 0));
        }
    }

    #[test]
    fn valid_references_are_kept() {
        for input in [
            "<t>Pemkot &amp; DPRD</t>",
            "<t>&lt;p&gt; &quot;kutip&quot; &apos;</t>",
            "<t>Senin&#8211;Jumat &#x2013; &#xA0;</t>",
            r#"<a href="?a=1&amp;b=2">Kabar</a>"#,
            "<t>&amp;nbsp; sudah di-escape</t>",
        ] {
            check(input, input, Repairs::default());
        }
    }

    #[test]
    fn html_entities_become_characters() {
        let cases = [
            ("<t>Rp&nbsp;5.000</t>", "<t>Rp\u{A0}5.000</t>"),
            ("<t>08.00&ndash;10.00</t>", "<t>08.00–10.00</t>"),
            ("<t>Kata&mdash;kata&hellip;</t>", "<t>Kata—kata…</t>"),
            ("<t>&ldquo;Bupati&rsquo;s&rdquo;</t>", "<t>“Bupati’s”</t>"),
            (
                "<t>&copy; &eacute; &times; &divide; &yuml;</t>",
                "<t>© é × ÷ ÿ</t>",
            ),
            ("<t>&#150; &#x93;</t>", "<t>– “</t>"),
            ("<t>10&#X2013;12</t>", "<t>10–12</t>"),
        ];
        for (input, expected) in cases {
            let count = input.matches('&').count();
            check(input, expected, repairs(0, 0, count));
        }
    }

    #[test]
    fn forbidden_characters_are_removed() {
        let cases = [
            (
                "<t>Banjir\u{0B} di\u{1} Demak</t>",
                "<t>Banjir di Demak</t>",
                2,
            ),
            ("<t>tab\tdan\r\nbaris</t>", "<t>tab\tdan\r\nbaris</t>", 0),
            ("<t>a\u{FFFE}b\u{FFFF}c</t>", "<t>abc</t>", 2),
            (
                "<t>nol&#0; esc&#x1B; jauh&#1114112;</t>",
                "<t>nol esc jauh</t>",
                3,
            ),
            ("<![CDATA[rusak\u{8}]]>", "<![CDATA[rusak]]>", 1),
        ];
        for (input, expected, count) in cases {
            check(input, expected, repairs(0, count, 0));
        }
    }

    #[test]
    fn cdata_comments_and_instructions_keep_their_content() {
        for input in [
            "<d><![CDATA[<p>Pemkot & DPRD &nbsp; ?a=1&b=2</p>]]></d>",
            "<!-- dibuat oleh CMS & plugin -->",
            r#"<?xml-stylesheet href="gaya.xsl?a=1&b=2"?>"#,
            "<d><![CDATA[tidak ditutup & seterusnya",
        ] {
            check(input, input, Repairs::default());
        }
        check(
            "<d><![CDATA[a & b]]> & <![CDATA[c & d]]></d>",
            "<d><![CDATA[a & b]]> &amp; <![CDATA[c & d]]></d>",
            repairs(1, 0, 0),
        );
    }

    #[test]
    fn multibyte_text_survives() {
        check(
            "<t>Kopi “Gayo” & teh – ☕</t>",
            "<t>Kopi “Gayo” &amp; teh – ☕</t>",
            repairs(1, 0, 0),
        );
    }

    #[test]
    fn repair_makes_a_rejected_feed_parse() {
        let raw = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>Kabar Pesisir & Pedalaman</title>
  <link>https://pesisir.example/</link>
  <item>
    <title>Pemkot & DPRD Bahas Anggaran&nbsp;2027</title>
    <link>https://pesisir.example/baca?id=7&ref=rss</link>
    <description><![CDATA[<p>Rapat & diskusi</p>]]></description>
  </item>
</channel></rss>"#;
        assert!(feed_rs::parser::parse(raw.as_bytes()).is_err());

        let (repaired, counted) = repair_xml(raw);
        assert_eq!(counted, repairs(3, 0, 1));
        let feed = feed_rs::parser::parse(repaired.as_bytes()).unwrap();
        assert_eq!(feed.title.unwrap().content, "Kabar Pesisir & Pedalaman");
        let entry = &feed.entries[0];
        assert_eq!(
            entry.title.as_ref().unwrap().content,
            "Pemkot & DPRD Bahas Anggaran\u{A0}2027"
        );
        assert_eq!(
            entry.links[0].href,
            "https://pesisir.example/baca?id=7&ref=rss"
        );
        assert_eq!(
            entry.summary.as_ref().unwrap().content,
            "<p>Rapat & diskusi</p>"
        );
    }
}

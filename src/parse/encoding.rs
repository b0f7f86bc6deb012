//! Decodes a fetched body to UTF-8 text, choosing the charset and saying what chose it. Pure.
//!
//! Order: a per-feed override, then a byte order mark, then the charset of the
//! HTTP Content-Type, then the XML declaration, then UTF-8. The BOM comes
//! before the header (as in RFC 7303 and WHATWG decoding) because it cannot be
//! wrong by accident, while a header charset is often a server-wide default.
//! Labels from the header or the declaration are then checked against the
//! bytes: portals label windows-1252 text as UTF-8 and the other way round,
//! and a reader should see "Rp 5.000 – harga", not replacement characters.

use std::borrow::Cow;
use std::ops::Range;

use encoding_rs::{Encoding, REPLACEMENT, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// What decided the charset a body was decoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetSource {
    /// The feed's configured encoding override.
    Override,
    /// A byte order mark at the start of the body.
    Bom,
    /// The `charset` parameter of the HTTP Content-Type header.
    Header,
    /// The XML declaration (`encoding="…"`, or the byte pattern of a UTF-16 `<?xml`).
    XmlDeclaration,
    /// Nothing labelled the body; UTF-8 was assumed.
    Default,
    /// The label (or the UTF-8 default) did not fit the bytes: text labelled
    /// UTF-8 that is mostly invalid UTF-8 was read as windows-1252, or text
    /// labelled with a legacy charset that is valid UTF-8 was read as UTF-8.
    Guessed,
}

impl CharsetSource {
    /// A short, stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CharsetSource::Override => "override",
            CharsetSource::Bom => "bom",
            CharsetSource::Header => "header",
            CharsetSource::XmlDeclaration => "xml_declaration",
            CharsetSource::Default => "default",
            CharsetSource::Guessed => "guessed",
        }
    }
}

/// A body decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The text, without a BOM, its XML declaration (if any) saying UTF-8.
    pub text: Cow<'a, str>,
    /// The WHATWG name of the charset used, e.g. `UTF-8`, `windows-1252`.
    pub charset: &'static str,
    pub source: CharsetSource,
    /// Whether bytes invalid in that charset were replaced with U+FFFD.
    pub replaced_invalid_bytes: bool,
}

/// The override names no charset `encoding_rs` knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLabel(pub String);

/// Whether `label` names a charset (a WHATWG label such as `windows-1252`,
/// `latin1`, `utf-8`); lets configuration reject a bad override early.
pub fn is_known_label(label: &str) -> bool {
    lookup(label).is_some()
}

/// Decodes `body`. Only an unknown `override_label` is an error: an unknown
/// label from the server is skipped, since the admin cannot fix the server.
pub fn decode<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
    override_label: Option<&str>,
) -> Result<Decoded<'a>, UnknownLabel> {
    let (encoding, source) = choose(body, content_type, override_label)?;
    let (text, replaced_invalid_bytes) = match source {
        // An override is the admin's word: decode strictly with it, dropping
        // only a BOM that agrees with it.
        CharsetSource::Override => encoding.decode_with_bom_removal(body),
        CharsetSource::Bom => {
            let (_, bom_len) = Encoding::for_bom(body).unwrap_or((encoding, 0));
            encoding.decode_without_bom_handling(&body[bom_len..])
        }
        _ => encoding.decode_without_bom_handling(body),
    };
    Ok(Decoded {
        text: declare_utf8(text),
        charset: encoding.name(),
        source,
        replaced_invalid_bytes,
    })
}

fn choose(
    body: &[u8],
    content_type: Option<&str>,
    override_label: Option<&str>,
) -> Result<(&'static Encoding, CharsetSource), UnknownLabel> {
    if let Some(label) = override_label {
        let encoding = lookup(label).ok_or_else(|| UnknownLabel(label.to_string()))?;
        return Ok((encoding, CharsetSource::Override));
    }
    if let Some((encoding, _)) = Encoding::for_bom(body) {
        return Ok((encoding, CharsetSource::Bom));
    }
    let labelled = content_type
        .and_then(header_charset)
        .and_then(lookup)
        .filter(|e| fits_byte_width(e, body))
        .map(|e| (e, CharsetSource::Header))
        .or_else(|| utf16_without_bom(body).map(|e| (e, CharsetSource::XmlDeclaration)))
        .or_else(|| {
            declaration_encoding(body)
                .and_then(|range| std::str::from_utf8(&body[range]).ok())
                .and_then(lookup)
                // The declaration was readable as ASCII, so "UTF-16" in it is a lie.
                .filter(|e| e.is_ascii_compatible())
                .map(|e| (e, CharsetSource::XmlDeclaration))
        })
        .unwrap_or((UTF_8, CharsetSource::Default));
    Ok(second_guess(labelled, body))
}

/// A charset for `label`, or `None` for unknown labels and for the WHATWG
/// "replacement" encoding, which would turn the whole body into one U+FFFD.
fn lookup(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes()).filter(|e| *e != REPLACEMENT)
}

/// UTF-16 text of an XML document has NUL bytes among its first bytes; a
/// UTF-16 label on a body without them is wrong and skipped.
fn fits_byte_width(encoding: &'static Encoding, body: &[u8]) -> bool {
    let utf16 = encoding == UTF_16LE || encoding == UTF_16BE;
    utf16 == body.iter().take(4).any(|b| *b == 0)
}

/// UTF-16 without a BOM, recognised by `<?` encoded in it (XML 1.0 appendix F).
fn utf16_without_bom(body: &[u8]) -> Option<&'static Encoding> {
    match body.get(..4)? {
        [b'<', 0, b'?', 0] => Some(UTF_16LE),
        [0, b'<', 0, b'?'] => Some(UTF_16BE),
        _ => None,
    }
}

/// Overrules a UTF-8 / legacy label that the bytes contradict.
fn second_guess(
    (encoding, source): (&'static Encoding, CharsetSource),
    body: &[u8],
) -> (&'static Encoding, CharsetSource) {
    if !encoding.is_ascii_compatible() {
        return (encoding, source);
    }
    let evidence = Utf8Evidence::of(body);
    if encoding == UTF_8 {
        // A stray invalid byte in a UTF-8 feed is damage, not a different
        // charset; only when invalid sequences outnumber valid non-ASCII
        // characters is the text really in a legacy charset. Latin text is the
        // norm for Indonesian portals, hence windows-1252 (a superset of
        // ISO-8859-1 in WHATWG decoding).
        if evidence.invalid > evidence.multibyte {
            return (WINDOWS_1252, CharsetSource::Guessed);
        }
    } else if evidence.invalid == 0 && evidence.multibyte > 0 {
        // Legacy-charset text almost never happens to form valid UTF-8
        // sequences throughout, while "charset=ISO-8859-1" on UTF-8 is a
        // common server default.
        return (UTF_8, CharsetSource::Guessed);
    }
    (encoding, source)
}

/// How well a body reads as UTF-8.
struct Utf8Evidence {
    /// Valid characters outside ASCII.
    multibyte: usize,
    /// Runs of bytes that are not valid UTF-8.
    invalid: usize,
}

impl Utf8Evidence {
    fn of(body: &[u8]) -> Utf8Evidence {
        let mut evidence = Utf8Evidence {
            multibyte: 0,
            invalid: 0,
        };
        for chunk in body.utf8_chunks() {
            evidence.multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
            if !chunk.invalid().is_empty() {
                evidence.invalid += 1;
            }
        }
        evidence
    }
}

/// The `charset` parameter of a Content-Type value, unquoted.
fn header_charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(|c| c == '"' || c == '\''))
            .filter(|v| !v.is_empty())
    })
}

/// The byte range of the `encoding` value in a leading XML declaration.
fn declaration_encoding(text: &[u8]) -> Option<Range<usize>> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    if !text[start..].starts_with(b"<?xml") {
        return None;
    }
    // A declaration is short; do not scan a whole feed for a missing `?>`.
    let window = &text[start..text.len().min(start + 512)];
    let end = start + find(window, b"?>")?;
    let decl = &text[..end];
    let mut at = start + find(&decl[start..], b"encoding")? + b"encoding".len();
    while decl.get(at)?.is_ascii_whitespace() {
        at += 1;
    }
    if *decl.get(at)? != b'=' {
        return None;
    }
    at += 1;
    while decl.get(at)?.is_ascii_whitespace() {
        at += 1;
    }
    let quote = *decl.get(at)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value_start = at + 1;
    let value_len = decl[value_start..].iter().position(|b| *b == quote)?;
    Some(value_start..value_start + value_len)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Makes the XML declaration say UTF-8: the text is UTF-8 now, and feed-rs
/// (through quick-xml) would otherwise decode it a second time with the old label.
fn declare_utf8(text: Cow<'_, str>) -> Cow<'_, str> {
    match declaration_encoding(text.as_bytes()) {
        Some(range) if !text[range.clone()].eq_ignore_ascii_case("utf-8") => {
            let mut owned = text.into_owned();
            owned.replace_range(range, "UTF-8");
            Cow::Owned(owned)
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Rp 5.000 – harga naik" with an en dash, as windows-1252 bytes (0x96), invalid as UTF-8.
    const CP1252_DASH: &[u8] = b"Rp 5.000 \x96 harga naik";
    /// "Kopi Aceh Gayo – caf\xe9" style ISO-8859-1 text: é is 0xE9.
    const LATIN1_CAFE: &[u8] = b"Kafe di Bukittinggi menjual caf\xe9 latte seharga Rp 25.000";

    struct Case {
        name: &'static str,
        body: Vec<u8>,
        content_type: Option<&'static str>,
        override_label: Option<&'static str>,
        charset: &'static str,
        source: CharsetSource,
        replaced: bool,
        text: &'static str,
    }

    fn check(case: Case) {
        let decoded = decode(&case.body, case.content_type, case.override_label)
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        assert_eq!(decoded.charset, case.charset, "{}: charset", case.name);
        assert_eq!(decoded.source, case.source, "{}: source", case.name);
        assert_eq!(
            decoded.replaced_invalid_bytes, case.replaced,
            "{}: replaced",
            case.name
        );
        assert_eq!(decoded.text, case.text, "{}: text", case.name);
    }

    fn with_decl(label: &str, rest: &[u8]) -> Vec<u8> {
        let mut body = format!(r#"<?xml version="1.0" encoding="{label}"?>"#).into_bytes();
        body.extend_from_slice(rest);
        body
    }

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut body = if bom { vec![0xFF, 0xFE] } else { vec![] };
        body.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        body
    }

    #[test]
    fn each_source_decides_in_turn() {
        let cases = [
            Case {
                name: "header charset",
                body: CP1252_DASH.to_vec(),
                content_type: Some("application/rss+xml; charset=windows-1252"),
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::Header,
                replaced: false,
                text: "Rp 5.000 – harga naik",
            },
            Case {
                name: "quoted header charset, ISO-8859-1 label",
                body: LATIN1_CAFE.to_vec(),
                content_type: Some("text/xml;Charset=\"ISO-8859-1\""),
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::Header,
                replaced: false,
                text: "Kafe di Bukittinggi menjual café latte seharga Rp 25.000",
            },
            Case {
                name: "header wins over declaration",
                body: with_decl("utf-8", CP1252_DASH),
                content_type: Some("text/xml; charset=windows-1252"),
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::Header,
                replaced: false,
                text: r#"<?xml version="1.0" encoding="utf-8"?>Rp 5.000 – harga naik"#,
            },
            Case {
                name: "unknown header label falls through to the declaration",
                body: with_decl("windows-1252", CP1252_DASH),
                content_type: Some("text/xml; charset=tidak-dikenal"),
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::XmlDeclaration,
                replaced: false,
                text: r#"<?xml version="1.0" encoding="UTF-8"?>Rp 5.000 – harga naik"#,
            },
            Case {
                name: "declaration, single quotes",
                body: b"<?xml version='1.0' encoding='iso-8859-1'?><a>caf\xe9</a>".to_vec(),
                content_type: Some("application/xml"),
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::XmlDeclaration,
                replaced: false,
                text: "<?xml version='1.0' encoding='UTF-8'?><a>café</a>",
            },
            Case {
                name: "nothing labelled: UTF-8",
                body: "<rss>Berita – Sleman</rss>".as_bytes().to_vec(),
                content_type: None,
                override_label: None,
                charset: "UTF-8",
                source: CharsetSource::Default,
                replaced: false,
                text: "<rss>Berita – Sleman</rss>",
            },
            Case {
                name: "UTF-8 with one damaged byte stays UTF-8",
                body: b"<rss>Berita \xe2\x80\x93 Sleman \xe2\x80\x94 Bantul \xff</rss>".to_vec(),
                content_type: None,
                override_label: None,
                charset: "UTF-8",
                source: CharsetSource::Default,
                replaced: true,
                text: "<rss>Berita – Sleman — Bantul \u{FFFD}</rss>",
            },
            Case {
                name: "override wins over header and declaration",
                body: with_decl("utf-8", CP1252_DASH),
                content_type: Some("text/xml; charset=utf-8"),
                override_label: Some("windows-1252"),
                charset: "windows-1252",
                source: CharsetSource::Override,
                replaced: false,
                text: r#"<?xml version="1.0" encoding="utf-8"?>Rp 5.000 – harga naik"#,
            },
            Case {
                name: "override is not second-guessed",
                body: CP1252_DASH.to_vec(),
                content_type: None,
                override_label: Some("utf-8"),
                charset: "UTF-8",
                source: CharsetSource::Override,
                replaced: true,
                text: "Rp 5.000 \u{FFFD} harga naik",
            },
        ];
        for case in cases {
            check(case);
        }
    }

    #[test]
    fn wrong_labels_still_give_readable_text() {
        let cases = [
            Case {
                name: "header says utf-8, bytes are windows-1252",
                body: CP1252_DASH.to_vec(),
                content_type: Some("application/rss+xml; charset=utf-8"),
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::Guessed,
                replaced: false,
                text: "Rp 5.000 – harga naik",
            },
            Case {
                name: "declaration says utf-8, bytes are ISO-8859-1",
                body: with_decl("UTF-8", LATIN1_CAFE),
                content_type: None,
                override_label: None,
                charset: "windows-1252",
                source: CharsetSource::Guessed,
                replaced: false,
                text: r#"<?xml version="1.0" encoding="UTF-8"?>Kafe di Bukittinggi menjual café latte seharga Rp 25.000"#,
            },
            Case {
                name: "header says ISO-8859-1, bytes are UTF-8",
                body: "Harga cabai – naik lagi".as_bytes().to_vec(),
                content_type: Some("text/xml; charset=ISO-8859-1"),
                override_label: None,
                charset: "UTF-8",
                source: CharsetSource::Guessed,
                replaced: false,
                text: "Harga cabai – naik lagi",
            },
            Case {
                name: "declaration says UTF-16 on ASCII bytes",
                body: with_decl("UTF-16", b"<a>Pasar</a>"),
                content_type: None,
                override_label: None,
                charset: "UTF-8",
                source: CharsetSource::Default,
                replaced: false,
                text: r#"<?xml version="1.0" encoding="UTF-8"?><a>Pasar</a>"#,
            },
        ];
        for case in cases {
            check(case);
        }
    }

    #[test]
    fn byte_order_marks() {
        let cases = [
            Case {
                name: "UTF-8 BOM, removed",
                body: [
                    b"\xEF\xBB\xBF".as_slice(),
                    "<a>Pantai – Kuta</a>".as_bytes(),
                ]
                .concat(),
                content_type: None,
                override_label: None,
                charset: "UTF-8",
                source: CharsetSource::Bom,
                replaced: false,
                text: "<a>Pantai – Kuta</a>",
            },
            Case {
                name: "UTF-8 BOM beats a latin-1 header",
                body: [
                    b"\xEF\xBB\xBF".as_slice(),
                    "<a>Pantai – Kuta</a>".as_bytes(),
                ]
                .concat(),
                content_type: Some("text/xml; charset=iso-8859-1"),
                override_label: None,
                charset: "UTF-8",
                source: CharsetSource::Bom,
                replaced: false,
                text: "<a>Pantai – Kuta</a>",
            },
            Case {
                name: "UTF-16LE BOM, declaration rewritten",
                body: utf16le(
                    r#"<?xml version="1.0" encoding="UTF-16"?><a>Danau Toba – Samosir</a>"#,
                    true,
                ),
                content_type: Some("text/xml; charset=utf-8"),
                override_label: None,
                charset: "UTF-16LE",
                source: CharsetSource::Bom,
                replaced: false,
                text: r#"<?xml version="1.0" encoding="UTF-8"?><a>Danau Toba – Samosir</a>"#,
            },
            Case {
                name: "UTF-16LE without BOM, recognised by its declaration",
                body: utf16le(r#"<?xml version="1.0"?><a>Rinjani</a>"#, false),
                content_type: None,
                override_label: None,
                charset: "UTF-16LE",
                source: CharsetSource::XmlDeclaration,
                replaced: false,
                text: r#"<?xml version="1.0"?><a>Rinjani</a>"#,
            },
        ];
        for case in cases {
            check(case);
        }
    }

    #[test]
    fn unknown_override_is_an_error() {
        assert_eq!(
            decode(b"<a/>", None, Some("latin-sembilan")),
            Err(UnknownLabel("latin-sembilan".to_string()))
        );
        assert!(is_known_label("latin1"));
        assert!(!is_known_label("latin-sembilan"));
    }

    #[test]
    fn utf8_text_is_borrowed() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?><a>Kabar</a>"#.as_bytes();
        let decoded = decode(body, None, None).unwrap();
        assert!(matches!(decoded.text, Cow::Borrowed(_)));
    }
}

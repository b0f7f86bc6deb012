//! Small pure text helpers shared by the parsing, cleaning and emitting stages.

use std::borrow::Cow;

/// Whether XML 1.0 allows this character in a document (the `Char` production).
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Removes characters that XML 1.0 forbids (control characters, U+FFFE/U+FFFF).
/// Borrows when there is nothing to remove, which is almost always.
pub fn strip_xml_forbidden(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|c| is_xml_char(*c)).collect())
    }
}

/// Collapses every run of white space (including non-breaking and zero-width
/// spaces) into one ASCII space and trims both ends.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '\u{A0}' | '\u{200B}' | '\u{FEFF}') {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Cuts `text` to at most `max_chars` characters at a word boundary, adding an ellipsis when cut.
pub fn truncate_words(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if i > max_chars / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end_matches([',', ';', ':', ' ']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_forbidden_characters() {
        assert_eq!(
            strip_xml_forbidden("Pemkot\u{0}\u{1B} Bogor\u{FFFE}"),
            "Pemkot Bogor"
        );
        assert!(matches!(
            strip_xml_forbidden("Kota Bandung ✓"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn collapses_all_kinds_of_space() {
        assert_eq!(
            collapse_whitespace("  Banjir\u{A0} di\n\t Garut\u{200B} "),
            "Banjir di Garut"
        );
    }

    #[test]
    fn truncates_at_word_boundary() {
        assert_eq!(truncate_words("Satu dua tiga empat", 12), "Satu dua…");
        assert_eq!(truncate_words("Pendek", 12), "Pendek");
    }
}

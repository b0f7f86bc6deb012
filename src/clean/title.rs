//! Titles: plain text, entities decoded, site suffixes and artefacts removed, never empty.

use crate::clean::rules::Network;
use crate::text::{collapse_whitespace, truncate_words};

/// Longest title derived from an item's text when the feed gave none.
const DERIVED_TITLE_MAX_CHARS: usize = 120;

/// Cleans a feed title (already plain text) with the networks' suffix patterns.
pub fn clean_title(title: &str, networks: &[&Network]) -> String {
    let mut title = collapse_whitespace(title);
    for network in networks {
        for suffix in &network.title_suffixes {
            if let Some(found) = suffix.find(&title).filter(|f| f.start() > 0) {
                title.truncate(found.start());
            }
        }
    }
    // A cut-off title ending in "..." reads as an artefact in a reader.
    let trimmed = title
        .trim_end()
        .trim_end_matches("...")
        .trim_end_matches('…')
        .trim_end();
    trimmed.to_string()
}

/// A title from the first sentence of the text, never empty.
pub fn derive_title(text: &str) -> String {
    let sentence = text
        .split_inclusive(['.', '!', '?'])
        .find(|s| s.chars().any(char::is_alphanumeric))
        .unwrap_or("")
        .trim()
        .trim_end_matches('.')
        .trim_end();
    if sentence.is_empty() {
        "(tanpa judul)".to_string()
    } else {
        truncate_words(sentence, DERIVED_TITLE_MAX_CHARS)
    }
}

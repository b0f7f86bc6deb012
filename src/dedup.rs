//! URL normalization and item keys: the same article reached by different URLs gets one key. Pure.

use sha2::{Digest, Sha256};
use url::Url;

use crate::domain::ItemKey;

/// Query parameters that only track the reader and never change the article.
fn is_tracking_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("utm_") || lower == "fbclid" || lower == "gclid"
}

/// Normalizes an absolute http(s) URL so that trivially different spellings of
/// one article compare equal.
///
/// Scheme and host are lower-cased and the default port dropped (the `url`
/// crate does both while parsing), the fragment is removed, and tracking
/// parameters (`utm_*`, `fbclid`, `gclid`) are removed while the order of the
/// remaining parameters is kept (some portals route on them).
pub fn normalize_url(raw: &str) -> Option<Url> {
    let mut url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| !is_tracking_param(name))
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    Some(url)
}

/// The key of an item: SHA-256 of its normalized URL.
pub fn item_key(normalized: &Url) -> ItemKey {
    ItemKey(Sha256::digest(normalized.as_str().as_bytes()).into())
}

/// Picks the URL that identifies an item: its link, else a guid that is itself
/// an http(s) URL (an RSS permalink guid). Returns the normalized URL and its key.
pub fn identify(link: Option<&str>, guid: Option<&str>) -> Option<(Url, ItemKey)> {
    let url = link
        .and_then(normalize_url)
        .or_else(|| guid.and_then(normalize_url))?;
    let key = item_key(&url);
    Some((url, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = normalize_url(input).map(|u| u.to_string());
        assert_eq!(got.as_deref(), Some(expected), "normalizing {input}");
    }

    #[test]
    fn lowercases_scheme_and_host_and_drops_default_port() {
        check(
            "HTTPS://Jabar.TribunNews.com:443/2026/11/20/banjir-di-bandung",
            "https://jabar.tribunnews.com/2026/11/20/banjir-di-bandung",
        );
        check(
            "http://regional.kompas.com:80/read/1",
            "http://regional.kompas.com/read/1",
        );
    }

    #[test]
    fn keeps_non_default_port_and_path_case() {
        check(
            "http://127.0.0.1:8080/Berita/Satu",
            "http://127.0.0.1:8080/Berita/Satu",
        );
    }

    #[test]
    fn drops_fragment_and_tracking_parameters() {
        check(
            "https://a.example/read?id=5&utm_source=fb&utm_Medium=x&fbclid=abc#komentar",
            "https://a.example/read?id=5",
        );
        check(
            "https://a.example/read?gclid=1&UTM_CAMPAIGN=2",
            "https://a.example/read",
        );
    }

    #[test]
    fn keeps_order_of_remaining_parameters() {
        check(
            "https://a.example/r?b=2&utm_source=x&a=1",
            "https://a.example/r?b=2&a=1",
        );
    }

    #[test]
    fn rejects_non_http_urls() {
        assert!(normalize_url("mailto:redaksi@example.com").is_none());
        assert!(normalize_url("not a url").is_none());
        assert!(normalize_url("/relative/path").is_none());
    }

    #[test]
    fn same_article_with_tracking_has_same_key() {
        let a = identify(Some("https://x.example/berita/1?utm_source=twitter"), None).unwrap();
        let b = identify(Some("https://X.example/berita/1"), None).unwrap();
        assert_eq!(a.1, b.1);
    }

    #[test]
    fn falls_back_to_permalink_guid() {
        let (url, _) = identify(None, Some("https://x.example/berita/2")).unwrap();
        assert_eq!(url.as_str(), "https://x.example/berita/2");
        assert!(identify(None, Some("urn:uuid:1234")).is_none());
    }
}

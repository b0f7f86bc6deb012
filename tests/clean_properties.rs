//! Property tests for cleaning: whatever a feed sends, the output carries no
//! script, event handler, javascript:/data: URL or XML-forbidden character, and
//! cleaning twice changes nothing.

use kabar::clean::{RuleBook, clean_item};
use kabar::domain::RawItem;
use proptest::prelude::*;
use url::Url;

/// Pieces hostile or typical feed HTML is made of.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<p>".to_string()),
        Just("</p>".to_string()),
        Just("<br>".to_string()),
        Just("<div class=\"read__others\">".to_string()),
        Just("</div>".to_string()),
        Just("<script>alert(1)</script>".to_string()),
        Just("<SCRIPT SRC=//x.example/a.js></SCRIPT>".to_string()),
        Just("<style>p{}</style>".to_string()),
        Just("<iframe src=\"https://x.example\"></iframe>".to_string()),
        Just("<img src=x onerror=alert(1)>".to_string()),
        Just(
            "<img data-src=\"https://img.example/a.jpg\" src=\"data:image/gif;base64,AA\">"
                .to_string()
        ),
        Just("<a href=\"javascript:alert(1)\">x</a>".to_string()),
        Just("<a href=\"JaVaScRiPt:alert(1)\">x</a>".to_string()),
        Just("<a href=\"data:text/html,<script>1</script>\">x</a>".to_string()),
        Just("<a href=\"/relatif\" onclick=\"x()\">tautan</a>".to_string()),
        Just("<svg onload=alert(1)><circle/></svg>".to_string()),
        Just("<math><mi xlink:href=\"javascript:1\">x</mi></math>".to_string()),
        Just("<ul><li>Satu</li><li><a href=\"/b\">Dua</a></li></ul>".to_string()),
        Just("<strong>TEMPO.CO, Jakarta - </strong>".to_string()),
        Just("Baca Juga: ".to_string()),
        Just("Editor: Rina".to_string()),
        Just("Tags".to_string()),
        Just("&lt;p&gt;".to_string()),
        Just("&amp;".to_string()),
        Just("&nbsp;".to_string()),
        Just("\n".to_string()),
        Just("\u{0}\u{1}\u{b}\u{1b}\u{fffe}\u{ffff}".to_string()),
        Just("\u{200b}\u{a0}".to_string()),
        "[a-zA-Z .,:\\-]{0,20}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn html() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..24).prop_map(|parts| parts.concat())
}

fn clean(content: &str, title: &str) -> (String, String) {
    let url = Url::parse("https://jabar.tribunnews.com/2026/11/25/contoh").unwrap();
    let raw = RawItem {
        title: Some(title.to_string()),
        content: Some(content.to_string()),
        ..RawItem::default()
    };
    let cleaned = clean_item(&raw, &url, &RULES);
    (cleaned.content_html, cleaned.title)
}

static RULES: std::sync::LazyLock<RuleBook> = std::sync::LazyLock::new(RuleBook::builtin);

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn output_is_safe(content in html(), title in html()) {
        let (out, clean_title) = clean(&content, &title);
        let lower = out.to_ascii_lowercase();
        for forbidden in ["<script", "<style", "<iframe", "<svg", "<math", "javascript:", "data:", " onerror", " onclick", " onload", "xlink:"] {
            prop_assert!(!lower.contains(forbidden), "{forbidden} in {out:?}");
        }
        prop_assert!(out.chars().all(is_xml_char), "forbidden char in {out:?}");
        prop_assert!(clean_title.chars().all(is_xml_char), "forbidden char in title {clean_title:?}");
        prop_assert!(!clean_title.is_empty());
    }

    // A cleaned title is plain text while a feed's title may hold markup, so
    // the title goes back in escaped, as a feed would have to write that text.
    #[test]
    fn cleaning_is_idempotent(content in html(), title in html()) {
        let (once, title_once) = clean(&content, &title);
        let (twice, title_twice) = clean(&once, &escape(&title_once));
        prop_assert_eq!(&once, &twice, "content from {:?}", content);
        prop_assert_eq!(&title_once, &title_twice, "title from {:?}", title);
    }
}

//! Golden tests for cleaning: one invented item per portal network in tests/golden/*.toml,
//! cleaned with the shipped rules and compared exactly with its expected output.

use std::path::PathBuf;

use kabar::clean::{RuleBook, clean_item};
use kabar::domain::RawItem;
use serde::Deserialize;
use url::Url;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    url: String,
    title: Option<String>,
    content: String,
    expected: Expected,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Expected {
    title: String,
    content_html: String,
    author: Option<String>,
    contributor: Option<String>,
    source_note: Option<String>,
    original_url: Option<String>,
    dateline: Option<String>,
}

fn cases() -> Vec<(String, Case)> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden"]
        .iter()
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let case: Case =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                case,
            )
        })
        .collect()
}

#[test]
fn every_network_cleans_to_its_golden_output() {
    let rules = RuleBook::builtin();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 12, "one golden case per network");
    for (file, case) in cases {
        let raw = RawItem {
            title: case.title.clone(),
            link: Some(case.url.clone()),
            content: Some(case.content.clone()),
            ..RawItem::default()
        };
        let cleaned = clean_item(&raw, &Url::parse(&case.url).unwrap(), &rules);
        let actual = Expected {
            title: cleaned.title,
            content_html: cleaned.content_html.trim().to_string(),
            author: cleaned.authors.first().cloned(),
            contributor: cleaned.metadata.contributor,
            source_note: cleaned.metadata.source_note,
            original_url: cleaned.metadata.original_url,
            dateline: cleaned.metadata.dateline,
        };
        let expected = Expected {
            content_html: case.expected.content_html.trim().to_string(),
            ..case.expected
        };
        if actual != expected {
            failures.push(format!(
                "{file}:\n  expected {expected:#?}\n  actual   {actual:#?}\n  removals {:#?}",
                cleaned.removals
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

//! Explains cleaning to an admin, item by item: the cleaned title, dates, metadata and text, and which rule removed what. Pure.

use std::fmt::Write;

use chrono::SecondsFormat;

use crate::clean::{RuleBook, clean_item, html_to_text};
use crate::dedup::identify;
use crate::domain::ParsedFeed;

/// A readable report of how `parsed` cleans with `rules`.
pub fn explain(parsed: &ParsedFeed, rules: &RuleBook) -> String {
    let mut out = String::new();
    let title = parsed.meta.title.as_deref().unwrap_or("(untitled feed)");
    let _ = writeln!(out, "feed: {title}, {} items", parsed.items.len());
    for (index, raw) in parsed.items.iter().enumerate() {
        let _ = writeln!(out);
        let Some((url, key)) = identify(raw.link.as_deref(), raw.guid.as_deref()) else {
            let _ = writeln!(
                out,
                "{}. (skipped: no link and no permalink guid) {}",
                index + 1,
                raw.title.as_deref().unwrap_or("")
            );
            continue;
        };
        let cleaned = clean_item(raw, &url, rules);
        let networks: Vec<String> = rules
            .for_host(url.host_str().unwrap_or(""))
            .iter()
            .map(|n| n.name.clone())
            .collect();
        let _ = writeln!(out, "{}. {}", index + 1, cleaned.title);
        if raw.title.as_deref().map(str::trim) != Some(cleaned.title.as_str()) {
            let _ = writeln!(
                out,
                "   title in feed: {}",
                raw.title.as_deref().unwrap_or("(none)")
            );
        }
        let _ = writeln!(out, "   url:       {url}");
        let _ = writeln!(out, "   key:       {key}");
        let _ = writeln!(out, "   rules:     {}", networks.join(" + "));
        let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
            d.map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "(none: time first seen)".into())
        };
        let _ = writeln!(out, "   published: {}", date(raw.published));
        if raw.updated.is_some() {
            let _ = writeln!(out, "   updated:   {}", date(raw.updated));
        }
        let meta = &cleaned.metadata;
        for (label, value) in [
            ("author", cleaned.authors.first()),
            ("editor", meta.contributor.as_ref()),
            ("source", meta.source_note.as_ref()),
            ("original", meta.original_url.as_ref()),
            ("dateline", meta.dateline.as_ref()),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "   {label:<10} {value}");
            }
        }
        if cleaned.removals.is_empty() {
            let _ = writeln!(out, "   removed:   nothing");
        } else {
            let _ = writeln!(out, "   removed:");
            for removal in &cleaned.removals {
                let _ = writeln!(
                    out,
                    "     [{}/{}] {}",
                    removal.network, removal.rule, removal.text
                );
            }
        }
        let _ = writeln!(out, "   text:");
        for paragraph in cleaned.content_html.split('\n') {
            let text = html_to_text(paragraph);
            if !text.is_empty() {
                let _ = writeln!(out, "     {text}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawItem;

    #[test]
    fn names_the_rule_that_removed_each_line() {
        let parsed = ParsedFeed {
            items: vec![RawItem {
                title: Some("Banjir di Garut | Tribun Jabar".into()),
                link: Some("https://jabar.tribunnews.com/2026/11/25/banjir-di-garut".into()),
                content: Some(
                    "<p>TRIBUNJABAR.ID, GARUT - Air naik sejak pagi.</p><p>Baca Juga: Lain</p><p>Editor: Asep</p>"
                        .into(),
                ),
                ..RawItem::default()
            }],
            ..ParsedFeed::default()
        };
        let report = explain(&parsed, &RuleBook::builtin());
        assert!(report.contains("1. Banjir di Garut\n"), "{report}");
        assert!(
            report.contains("[default/baca-juga] Baca Juga: Lain"),
            "{report}"
        );
        assert!(report.contains("[default/editor] Editor: Asep"), "{report}");
        assert!(
            report.contains("[tribun/dateline] TRIBUNJABAR.ID, GARUT -"),
            "{report}"
        );
        assert!(report.contains("editor     Asep"), "{report}");
        assert!(report.contains("     Air naik sejak pagi."), "{report}");
    }
}

//! Stage micro-benchmarks (issue 7): parse, clean and emit on the feed farm's
//! deterministic synthetic feeds (`bench/synth.rs`), each as throughput in
//! bytes of feed XML, so a regression shows as fewer MB/s.
//!
//! `cargo bench --bench stages` (add `-- parse` to run one group).

#[path = "../bench/synth.rs"]
mod synth;

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kabar::clean::{RuleBook, clean_item};
use kabar::domain::{EntrySource, ItemKey, ParsedFeed, StoredEntry};
use kabar::emit::{OutputInfo, atom};
use kabar::parse::parse_feed;
use synth::FarmSpec;

/// Feeds per benchmark: enough to mix shared and own items, small enough to be quick.
const FEEDS: usize = 4;

fn spec() -> FarmSpec {
    FarmSpec {
        feeds: FEEDS,
        ..FarmSpec::default()
    }
}

fn feeds() -> Vec<(String, String)> {
    let spec = spec();
    (0..FEEDS)
        .map(|i| {
            (
                format!("https://{}/rss", synth::host(i)),
                synth::feed_xml(&spec, i, 0),
            )
        })
        .collect()
}

fn parsed(feeds: &[(String, String)]) -> Vec<ParsedFeed> {
    feeds
        .iter()
        .map(|(url, xml)| parse_feed(xml.as_bytes(), url).expect("synthetic feeds parse"))
        .collect()
}

fn xml_bytes(feeds: &[(String, String)]) -> u64 {
    feeds.iter().map(|(_, xml)| xml.len() as u64).sum()
}

fn bench_parse(c: &mut Criterion) {
    let feeds = feeds();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(xml_bytes(&feeds)));
    group.bench_function("parse_feed", |b| {
        b.iter(|| {
            for (url, xml) in &feeds {
                black_box(parse_feed(black_box(xml.as_bytes()), url).expect("parses"));
            }
        })
    });
    group.finish();
}

fn bench_clean(c: &mut Criterion) {
    let feeds = feeds();
    let parsed = parsed(&feeds);
    let rules = RuleBook::builtin();
    let items: Vec<_> = parsed
        .iter()
        .flat_map(|feed| &feed.items)
        .map(|item| {
            let url = url::Url::parse(item.link.as_deref().expect("synthetic items have links"))
                .expect("synthetic links are URLs");
            (item, url)
        })
        .collect();
    let mut group = c.benchmark_group("clean");
    // Bytes of the feed XML the items came from, so MB/s compare with parse.
    group.throughput(Throughput::Bytes(xml_bytes(&feeds)));
    group.bench_function("clean_item", |b| {
        b.iter(|| {
            for (item, url) in &items {
                black_box(clean_item(black_box(item), url, &rules));
            }
        })
    });
    group.finish();
}

fn bench_emit(c: &mut Criterion) {
    let feeds = feeds();
    let parsed = parsed(&feeds);
    let rules = RuleBook::builtin();
    let published = Utc.with_ymd_and_hms(2026, 11, 20, 1, 0, 0).unwrap();
    // The combined feed's usual size: the 200 newest entries.
    let entries: Vec<StoredEntry> = parsed
        .iter()
        .enumerate()
        .flat_map(|(f, feed)| feed.items.iter().map(move |item| (f, item)))
        .take(200)
        .enumerate()
        .map(|(n, (f, item))| {
            let link = item.link.clone().expect("synthetic items have links");
            let cleaned = clean_item(item, &url::Url::parse(&link).expect("URL"), &rules);
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(n as u64).to_be_bytes());
            StoredEntry {
                key: ItemKey(key),
                url: link,
                title: cleaned.title,
                published: published - chrono::Duration::minutes(n as i64),
                updated: published,
                summary: cleaned.summary,
                content_html: cleaned.content_html,
                authors: cleaned.authors,
                contributor: None,
                categories: item.categories.clone(),
                source: EntrySource {
                    feed_name: format!("farm-{f}"),
                    feed_url: feeds[f].0.clone(),
                    region: synth::region(f).to_string(),
                    tags: Vec::new(),
                    title: parsed[f].meta.title.clone(),
                    site_link: parsed[f].meta.site_link.clone(),
                    id: None,
                    updated: None,
                },
            }
        })
        .collect();
    let info = OutputInfo {
        id: "tag:kabar.localhost,2026:feed".into(),
        title: "kabar: berita daerah".into(),
        self_url: "http://127.0.0.1/feed.atom".into(),
        self_url_json: None,
        id_authority: "kabar.localhost".into(),
        links: Vec::new(),
        next_url_json: None,
    };
    let out_len = atom::render(&info, &entries).len() as u64;
    let mut group = c.benchmark_group("emit");
    // Bytes of Atom XML written.
    group.throughput(Throughput::Bytes(out_len));
    group.bench_function("atom_render_200", |b| {
        b.iter(|| black_box(atom::render(&info, black_box(&entries))))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = stages;
    config = config();
    targets = bench_parse, bench_clean, bench_emit
}
criterion_main!(stages);

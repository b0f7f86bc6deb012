//! Applies a network's boilerplate rules to an item's HTML and says what each rule removed.

use scraper::Html;

use crate::clean::blocks::{Block, blocks_of};
use crate::clean::rules::{Action, MetaField, Network};
use crate::text::truncate_words;

/// What one rule removed, for `kabar clean` to show an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub network: String,
    pub rule: String,
    /// The removed text, shortened.
    pub text: String,
}

/// Metadata found in the text instead of left as noise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub author: Option<String>,
    pub contributor: Option<String>,
    pub source_note: Option<String>,
    /// The article this one republishes ("Artikel ini telah tayang di …").
    pub original_url: Option<String>,
    /// The dateline at the head of the text ("BANDUNG, KOMPAS.com"), stripped or not.
    pub dateline: Option<String>,
}

impl Metadata {
    fn set(&mut self, field: MetaField, value: String) -> bool {
        let slot = match field {
            MetaField::Author => &mut self.author,
            MetaField::Contributor => &mut self.contributor,
            MetaField::SourceNote => &mut self.source_note,
            MetaField::OriginalUrl => &mut self.original_url,
        };
        if slot.is_none() {
            *slot = Some(value);
            true
        } else {
            false
        }
    }
}

/// The item's HTML with boilerplate removed (not yet sanitized), and what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Stripped {
    pub html: String,
    pub metadata: Metadata,
    pub removals: Vec<Removal>,
}

const REPORT_CHARS: usize = 100;

/// Applies `networks`' rules (in order: default first) to `html`.
///
/// Order matters: elements go first (they need the portal's classes), then
/// metadata lines are read anywhere in the text, then footers are cut, then
/// single lines removed, and last the dateline of the first paragraph.
pub fn strip(html: &str, networks: &[&Network]) -> Stripped {
    let mut removals = Vec::new();
    let mut doc = Html::parse_fragment(html);
    for network in networks {
        for rule in &network.rules {
            let Action::RemoveElement(selector) = &rule.action else {
                continue;
            };
            let found: Vec<_> = doc
                .select(selector)
                .map(|e| (e.id(), e.text().collect::<Vec<_>>().join(" ")))
                .collect();
            for (id, text) in found {
                if let Some(mut node) = doc.tree.get_mut(id) {
                    node.detach();
                    removals.push(removal(network, &rule.name, &text));
                }
            }
        }
    }

    let mut blocks = blocks_of(doc.root_element());
    let mut removed = vec![false; blocks.len()];
    let mut metadata = Metadata::default();
    let texts: Vec<String> = blocks.iter().map(Block::text).collect();
    // Lines that no line rule of any network can match skip the rule-by-rule tests.
    let may_match: Vec<bool> = texts
        .iter()
        .map(|text| networks.iter().any(|n| n.may_match_line(text)))
        .collect();

    for (index, text) in texts.iter().enumerate() {
        if !may_match[index] {
            continue;
        }
        'rules: for network in networks {
            for rule in &network.rules {
                let Action::Extract { pattern, field } = &rule.action else {
                    continue;
                };
                // Most lines match no rule: the plain test is much cheaper than
                // finding capture groups, which only a matching line needs.
                if !pattern.is_match(text) {
                    continue;
                }
                let Some(captures) = pattern.captures(text) else {
                    continue;
                };
                let value = captures
                    .name("value")
                    .map(|m| m.as_str().trim().trim_end_matches([',', '.']).to_string())
                    .filter(|v| !v.is_empty());
                if let Some(value) = value {
                    metadata.set(*field, value);
                }
                removed[index] = true;
                removals.push(removal(network, &rule.name, text));
                break 'rules;
            }
        }
    }

    let cut = texts.iter().enumerate().find_map(|(index, text)| {
        if !may_match[index] {
            return None;
        }
        networks.iter().find_map(|network| {
            network.rules.iter().find_map(|rule| match &rule.action {
                Action::CutFrom(pattern) if pattern.is_match(text) => Some((index, *network, rule)),
                _ => None,
            })
        })
    });
    if let Some((index, network, rule)) = cut {
        let following = texts.len() - index - 1;
        let mut text = texts[index].clone();
        if following > 0 {
            text.push_str(&format!(" (and {following} paragraphs after it)"));
        }
        removals.push(removal(network, &rule.name, &text));
        removed[index..].iter_mut().for_each(|r| *r = true);
    }

    let mut index = 0;
    while index < blocks.len() {
        if removed[index] || !may_match[index] {
            index += 1;
            continue;
        }
        let matched = networks.iter().find_map(|network| {
            network.rules.iter().find_map(|rule| match &rule.action {
                Action::RemoveLine {
                    pattern,
                    with_following_links,
                } if pattern.is_match(&texts[index]) => {
                    Some((*network, rule, *with_following_links))
                }
                _ => None,
            })
        });
        if let Some((network, rule, with_links)) = matched {
            removed[index] = true;
            removals.push(removal(network, &rule.name, &texts[index]));
            if with_links {
                let mut next = index + 1;
                while next < blocks.len() && !removed[next] && blocks[next].links_only() {
                    removed[next] = true;
                    removals.push(removal(network, &rule.name, &texts[next]));
                    next += 1;
                }
            }
        }
        index += 1;
    }

    let first_text = (0..blocks.len()).find(|i| !removed[*i] && !texts[*i].is_empty());
    if let Some(first) = first_text.filter(|i| !blocks[*i].atomic) {
        find_dateline(
            &mut blocks[first],
            &texts[first],
            networks,
            &mut metadata,
            &mut removals,
        );
    }

    let mut html = String::with_capacity(html.len());
    let kept = blocks
        .iter()
        .zip(&removed)
        .filter(|(block, removed)| !**removed && !block.is_empty());
    for (n, (block, _)) in kept.enumerate() {
        if n > 0 {
            html.push('\n');
        }
        block.write_html(&mut html);
    }
    Stripped {
        html,
        metadata,
        removals,
    }
}

fn find_dateline(
    block: &mut Block,
    text: &str,
    networks: &[&Network],
    metadata: &mut Metadata,
    removals: &mut Vec<Removal>,
) {
    for network in networks {
        for pattern in &network.datelines {
            let Some(found) = pattern.find(text) else {
                continue;
            };
            if found.start() != 0 || found.end() >= text.len() {
                continue;
            }
            let dateline = found
                .as_str()
                .trim_end_matches(|c: char| c.is_whitespace() || c == '-' || c == '–')
                .to_string();
            metadata.dateline = Some(dateline);
            if network.strip_dateline {
                block.strip_text_prefix(found.as_str().chars().count());
                removals.push(removal(network, "dateline", found.as_str()));
            }
            return;
        }
    }
}

fn removal(network: &Network, rule: &str, text: &str) -> Removal {
    Removal {
        network: network.name.clone(),
        rule: rule.to_string(),
        text: truncate_words(&crate::text::collapse_whitespace(text), REPORT_CHARS),
    }
}

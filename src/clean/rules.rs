//! Boilerplate rule files: read, validate and compile them, and pick the rule sets for an item's host.
//!
//! One file per portal network (`config/rules/<network>.toml`). The shipped
//! files are built into the binary; files in a rules directory add networks or
//! replace shipped ones by name. `default` applies to every item.

use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use scraper::Selector;
use serde::Deserialize;
use thiserror::Error;

/// The shipped rule files, by network name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../config/rules/default.toml")),
    ("antara", include_str!("../../config/rules/antara.toml")),
    ("detik", include_str!("../../config/rules/detik.toml")),
    ("jawapos", include_str!("../../config/rules/jawapos.toml")),
    ("kompas", include_str!("../../config/rules/kompas.toml")),
    ("liputan6", include_str!("../../config/rules/liputan6.toml")),
    ("okezone", include_str!("../../config/rules/okezone.toml")),
    ("prmn", include_str!("../../config/rules/prmn.toml")),
    (
        "republika",
        include_str!("../../config/rules/republika.toml"),
    ),
    (
        "sindonews",
        include_str!("../../config/rules/sindonews.toml"),
    ),
    ("suara", include_str!("../../config/rules/suara.toml")),
    ("tempo", include_str!("../../config/rules/tempo.toml")),
    ("tribun", include_str!("../../config/rules/tribun.toml")),
];

/// The network whose rules apply to every item.
pub const DEFAULT_NETWORK: &str = "default";

/// A problem in one rule file, naming the file and the rule.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("rules {file}{}: {message}", rule.as_ref().map(|r| format!(", rule {r}")).unwrap_or_default())]
pub struct RuleError {
    pub file: String,
    pub rule: Option<String>,
    pub message: String,
}

/// Where a metadata line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaField {
    Author,
    Contributor,
    SourceNote,
    OriginalUrl,
}

/// What a rule does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Remove every element matching the selector.
    RemoveElement(Selector),
    /// Remove a paragraph whose text matches; optionally also the link-only blocks right after it.
    RemoveLine {
        pattern: Regex,
        with_following_links: bool,
    },
    /// Remove the matching paragraph and everything after it.
    CutFrom(Regex),
    /// Record the `value` group as metadata, then remove the paragraph.
    Extract { pattern: Regex, field: MetaField },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
}

/// The compiled rules of one portal network.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub description: String,
    hosts: Vec<String>,
    /// Strip recognised datelines from the first paragraph (default) or keep them.
    pub strip_dateline: bool,
    pub datelines: Vec<Regex>,
    pub title_suffixes: Vec<Regex>,
    pub rules: Vec<Rule>,
    /// Every line pattern of `rules` (remove_line, cut_from, extract) in one
    /// set: a line none of them matches needs no rule-by-rule test. `None`
    /// if the set could not be built; then every line is tested.
    line_patterns: Option<RegexSet>,
}

impl Network {
    /// False only if no remove_line, cut_from or extract pattern of this
    /// network matches `text`.
    pub fn may_match_line(&self, text: &str) -> bool {
        self.line_patterns
            .as_ref()
            .is_none_or(|set| set.is_match(text))
    }

    /// Whether this network's host patterns cover `host`: `*` matches all,
    /// `*.example.com` any subdomain of example.com, anything else exactly.
    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix('*') {
                Some("") => true,
                Some(suffix) => host.ends_with(suffix),
                None => host == *pattern,
            })
    }
}

/// Every network's rules, compiled once at load.
#[derive(Debug, Clone)]
pub struct RuleBook {
    networks: Vec<Network>,
    /// A hash of every rule file's name and text: equal books clean alike.
    fingerprint: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default = "yes")]
    strip_dateline: bool,
    #[serde(default)]
    datelines: Vec<String>,
    #[serde(default)]
    title_suffixes: Vec<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    remove: Option<String>,
    remove_line: Option<String>,
    #[serde(default)]
    with_following_links: bool,
    cut_from: Option<String>,
    extract: Option<String>,
    into: Option<MetaField>,
}

impl RuleBook {
    /// The shipped rules only.
    pub fn builtin() -> RuleBook {
        RuleBook::load(None).expect("the shipped rule files are valid (checked by tests)")
    }

    /// The shipped rules, with the `*.toml` files of `dir` (if given and present)
    /// added or replacing shipped networks of the same name. Every problem in
    /// every file is reported.
    pub fn load(dir: Option<&Path>) -> Result<RuleBook, Vec<RuleError>> {
        let mut sources: Vec<(String, String, String)> = BUILTIN
            .iter()
            .map(|(name, text)| {
                (
                    name.to_string(),
                    format!("(built-in) {name}.toml"),
                    text.to_string(),
                )
            })
            .collect();
        let mut errors = Vec::new();
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            for (name, path) in rule_files(dir, &mut errors) {
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let label = path.display().to_string();
                        sources.retain(|(existing, _, _)| *existing != name);
                        sources.push((name, label, text));
                    }
                    Err(e) => errors.push(RuleError {
                        file: path.display().to_string(),
                        rule: None,
                        message: e.to_string(),
                    }),
                }
            }
        }
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            for (name, _, text) in &sources {
                (name, text).hash(&mut hasher);
            }
            hasher.finish()
        };
        let mut networks = Vec::new();
        for (name, label, text) in sources {
            match compile_file(&name, &label, &text) {
                Ok(network) => networks.push(network),
                Err(mut file_errors) => errors.append(&mut file_errors),
            }
        }
        if errors.is_empty() {
            Ok(RuleBook {
                networks,
                fingerprint,
            })
        } else {
            Err(errors)
        }
    }

    /// The rule sets for an item on `host`: `default` first, then the first
    /// network whose hosts match.
    pub fn for_host(&self, host: &str) -> Vec<&Network> {
        let default = self.networks.iter().filter(|n| n.name == DEFAULT_NETWORK);
        let own = self
            .networks
            .iter()
            .filter(|n| n.name != DEFAULT_NETWORK)
            .find(|n| n.matches_host(host));
        default.chain(own).collect()
    }

    /// Changes whenever any rule file's text does; a reload compares it to
    /// decide whether stored items need re-cleaning.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }
}

fn rule_files(dir: &Path, errors: &mut Vec<RuleError>) -> Vec<(String, PathBuf)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(RuleError {
                file: dir.display().to_string(),
                rule: None,
                message: e.to_string(),
            });
            return Vec::new();
        }
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect();
    files.sort();
    files
}

fn compile_file(name: &str, label: &str, text: &str) -> Result<Network, Vec<RuleError>> {
    let error = |rule: Option<String>, message: String| RuleError {
        file: label.to_string(),
        rule,
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| vec![error(None, e.to_string())])?;
    let mut errors = Vec::new();
    if raw.hosts.is_empty() {
        errors.push(error(
            None,
            "no hosts = [...] to match items against".into(),
        ));
    }
    let mut compile_list = |list: &[String], what: &str, case_insensitive: bool| -> Vec<Regex> {
        list.iter()
            .filter_map(|p| {
                compile_regex(p, case_insensitive)
                    .map_err(|e| errors.push(error(None, format!("{what} {p:?}: {e}"))))
                    .ok()
            })
            .collect()
    };
    // Datelines are told apart from sentences by their capitals, so they are case-sensitive.
    let datelines = compile_list(&raw.datelines, "dateline", false);
    let title_suffixes = compile_list(&raw.title_suffixes, "title suffix", true);
    let mut rules = Vec::new();
    for (index, rule) in raw.rules.into_iter().enumerate() {
        let rule_name = rule
            .name
            .clone()
            .unwrap_or_else(|| format!("#{}", index + 1));
        match compile_rule(rule, &rule_name) {
            Ok(action) => rules.push(Rule {
                name: rule_name,
                action,
            }),
            Err(message) => errors.push(error(Some(rule_name), message)),
        }
    }
    // The same patterns with the same options as compile_regex(_, true) gives
    // each rule, so the set matches a line exactly when one of the rules does.
    let line_patterns = RegexSetBuilder::new(rules.iter().filter_map(|rule| match &rule.action {
        Action::RemoveLine { pattern, .. }
        | Action::CutFrom(pattern)
        | Action::Extract { pattern, .. } => Some(pattern.as_str()),
        Action::RemoveElement(_) => None,
    }))
    .case_insensitive(true)
    .build()
    .ok();
    if errors.is_empty() {
        Ok(Network {
            name: name.to_string(),
            description: raw.description,
            hosts: raw.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            strip_dateline: raw.strip_dateline,
            datelines,
            title_suffixes,
            rules,
            line_patterns,
        })
    } else {
        Err(errors)
    }
}

fn compile_rule(rule: RawRule, name: &str) -> Result<Action, String> {
    let actions = [
        rule.remove.is_some(),
        rule.remove_line.is_some(),
        rule.cut_from.is_some(),
        rule.extract.is_some(),
    ];
    if actions.iter().filter(|a| **a).count() != 1 {
        return Err(format!(
            "rule {name:?} needs exactly one of remove, remove_line, cut_from, extract"
        ));
    }
    if rule.with_following_links && rule.remove_line.is_none() {
        return Err("with_following_links only goes with remove_line".into());
    }
    if rule.into.is_some() && rule.extract.is_none() {
        return Err("into only goes with extract".into());
    }
    if let Some(selector) = rule.remove {
        return Selector::parse(&selector)
            .map(Action::RemoveElement)
            .map_err(|e| format!("invalid CSS selector {selector:?}: {e}"));
    }
    if let Some(pattern) = rule.remove_line {
        return Ok(Action::RemoveLine {
            pattern: compile_regex(&pattern, true)?,
            with_following_links: rule.with_following_links,
        });
    }
    if let Some(pattern) = rule.cut_from {
        return Ok(Action::CutFrom(compile_regex(&pattern, true)?));
    }
    let pattern = rule.extract.unwrap_or_default();
    let field = rule.into.ok_or(
        "extract needs into = \"author\" | \"contributor\" | \"source_note\" | \"original_url\"",
    )?;
    let regex = compile_regex(&pattern, true)?;
    if !regex.capture_names().any(|n| n == Some("value")) {
        return Err(format!(
            "extract pattern {pattern:?} has no (?P<value>...) group"
        ));
    }
    Ok(Action::Extract {
        pattern: regex,
        field,
    })
}

fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_compile() {
        let book = RuleBook::load(None).unwrap();
        assert_eq!(book.networks().len(), BUILTIN.len());
    }

    #[test]
    fn hosts_pick_default_plus_network() {
        let book = RuleBook::builtin();
        let names = |host: &str| -> Vec<String> {
            book.for_host(host).iter().map(|n| n.name.clone()).collect()
        };
        assert_eq!(names("isubogor.pikiran-rakyat.com"), ["default", "prmn"]);
        assert_eq!(names("jabar.tribunnews.com"), ["default", "tribun"]);
        assert_eq!(names("JABAR.ANTARANEWS.COM"), ["default", "antara"]);
        assert_eq!(names("blog.example.org"), ["default"]);
        // A look-alike host is not the network.
        assert_eq!(names("notpikiran-rakyat.com"), ["default"]);
    }

    #[test]
    fn bad_rules_name_file_and_rule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lokal.toml"),
            r#"
hosts = ["*.lokal.example"]
[[rule]]
name = "rusak"
remove_line = "^(baca"
[[rule]]
name = "dua-aksi"
remove = "p"
cut_from = "^x"
[[rule]]
name = "tanpa-grup"
extract = "^editor: .*"
into = "contributor"
"#,
        )
        .unwrap();
        let errors = RuleBook::load(Some(dir.path())).unwrap_err();
        let rules: Vec<_> = errors.iter().map(|e| e.rule.clone().unwrap()).collect();
        assert_eq!(rules, ["rusak", "dua-aksi", "tanpa-grup"]);
        assert!(errors[0].file.ends_with("lokal.toml"));
        assert!(errors[0].to_string().contains("rule rusak"));
    }

    #[test]
    fn directory_files_override_builtin_networks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tribun.toml"),
            "hosts = [\"*.tribunnews.com\"]\nstrip_dateline = false\n",
        )
        .unwrap();
        let book = RuleBook::load(Some(dir.path())).unwrap();
        let tribun = book.for_host("jabar.tribunnews.com")[1];
        assert!(!tribun.strip_dateline);
        assert!(tribun.datelines.is_empty());
        assert_eq!(book.networks().len(), BUILTIN.len());
    }
}

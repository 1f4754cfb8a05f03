//! The policy table: which conflict policy governs which paths of a document.
//!
//! The table lives inside the document (replicated like any value), as pattern → policy.
//! A pattern is `/`-separated like a path; a segment is a key (`title`), a key prefix
//! (`draft_*`), any one key (`*`), or, last only, everything below (`**`). The most
//! specific matching pattern wins (compared segment by segment from the left: key, then
//! longer key prefix, then `*`, then `**`); a path no pattern matches uses the CRDT's own
//! result.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// How concurrent values at a path are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// The CRDT's own result (the default).
    Crdt,
    /// Last writer wins by hybrid logical clock.
    Lww,
    /// An application merge function, by name (built-in or registered on the reader).
    Merge(String),
    /// Every concurrent value is kept until resolved.
    KeepAll,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Crdt => f.write_str("crdt"),
            Policy::Lww => f.write_str("lww"),
            Policy::Merge(name) => write!(f, "merge:{name}"),
            Policy::KeepAll => f.write_str("keep-all"),
        }
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "crdt" => Ok(Policy::Crdt),
            "lww" => Ok(Policy::Lww),
            "keep-all" => Ok(Policy::KeepAll),
            other => match other.strip_prefix("merge:") {
                Some(name) if !name.is_empty() => Ok(Policy::Merge(name.to_string())),
                _ => Err(format!(
                    "unknown policy {other:?}: use crdt, lww, keep-all or merge:NAME"
                )),
            },
        }
    }
}

/// One segment of a pattern, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatSeg {
    Key(String),
    Prefix(String),
    Any,
    Rest,
}

impl PatSeg {
    /// Higher is more specific.
    fn rank(&self) -> (u8, usize) {
        match self {
            PatSeg::Key(_) => (3, 0),
            PatSeg::Prefix(p) => (2, p.len()),
            PatSeg::Any => (1, 0),
            PatSeg::Rest => (0, 0),
        }
    }
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: String,
    segs: Vec<PatSeg>,
}

impl Pattern {
    pub fn parse(raw: &str) -> Result<Pattern, String> {
        let trimmed = raw.strip_prefix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Err("a policy pattern names at least one key".into());
        }
        let parts: Vec<&str> = trimmed.split('/').collect();
        let mut segs = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = match *part {
                "" => return Err(format!("pattern {raw:?} has an empty segment")),
                "**" if i + 1 == parts.len() => PatSeg::Rest,
                "**" => return Err(format!("in {raw:?}, `**` may only end a pattern")),
                "*" => PatSeg::Any,
                p => {
                    let key = p.replace("~1", "/").replace("~0", "~");
                    match key.strip_suffix('*') {
                        Some(prefix) => PatSeg::Prefix(prefix.to_string()),
                        None => PatSeg::Key(key),
                    }
                }
            };
            segs.push(seg);
        }
        Ok(Pattern {
            raw: raw.to_string(),
            segs,
        })
    }

    /// True when the pattern matches the path `keys` (each step as a key).
    pub fn matches(&self, keys: &[String]) -> bool {
        for (i, seg) in self.segs.iter().enumerate() {
            let Some(key) = keys.get(i) else {
                return false;
            };
            let ok = match seg {
                PatSeg::Key(k) => k == key,
                PatSeg::Prefix(p) => key.starts_with(p.as_str()),
                PatSeg::Any => true,
                PatSeg::Rest => return true,
            };
            if !ok {
                return false;
            }
        }
        keys.len() == self.segs.len()
    }

    fn specificity(&self, other: &Pattern) -> Ordering {
        let ranks = |p: &Pattern| p.segs.iter().map(PatSeg::rank).collect::<Vec<_>>();
        ranks(other)
            .cmp(&ranks(self))
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

/// A document's policy table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyTable {
    /// Most specific pattern first.
    rules: Vec<(Pattern, Policy)>,
}

static CRDT: Policy = Policy::Crdt;

impl PolicyTable {
    /// Builds the table from stored (pattern, policy) pairs. Pairs this build does not
    /// understand (written by a newer version) are skipped.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut rules: Vec<(Pattern, Policy)> = entries
            .into_iter()
            .filter_map(|(pattern, policy)| {
                Some((Pattern::parse(pattern).ok()?, policy.parse().ok()?))
            })
            .collect();
        rules.sort_by(|a, b| a.0.specificity(&b.0));
        PolicyTable { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The policy for the path `keys` (the default, CRDT, when nothing matches).
    pub fn policy_for(&self, keys: &[String]) -> &Policy {
        self.rules
            .iter()
            .find(|(p, _)| p.matches(keys))
            .map_or(&CRDT, |(_, policy)| policy)
    }

    /// Every (pattern, policy), most specific first.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &Policy)> {
        self.rules
            .iter()
            .map(|(p, policy)| (p.raw.as_str(), policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &str) -> Vec<String> {
        path.split('/').map(str::to_string).collect()
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let table = PolicyTable::from_entries([
            ("settings/**", "keep-all"),
            ("settings/*", "merge:max"),
            ("settings/draft_*", "crdt"),
            ("settings/theme", "lww"),
            ("bad//pattern", "lww"),
            ("x", "no-such-policy"),
        ]);
        assert_eq!(table.policy_for(&keys("settings/theme")), &Policy::Lww);
        assert_eq!(table.policy_for(&keys("settings/draft_1")), &Policy::Crdt);
        assert_eq!(
            table.policy_for(&keys("settings/size")),
            &Policy::Merge("max".into())
        );
        assert_eq!(table.policy_for(&keys("settings/a/b")), &Policy::KeepAll);
        assert_eq!(table.policy_for(&keys("settings")), &Policy::Crdt);
        assert_eq!(table.policy_for(&keys("title")), &Policy::Crdt);
        assert_eq!(table.rules().count(), 4);
    }

    #[test]
    fn policies_parse_and_print() {
        for text in ["crdt", "lww", "keep-all", "merge:union"] {
            assert_eq!(text.parse::<Policy>().unwrap().to_string(), text);
        }
        assert!("merge:".parse::<Policy>().is_err());
        assert!(Pattern::parse("a/**/b").is_err());
    }
}

//! A node's database as `concord-server digest --data-dir D` prints it (the JSON of the
//! relay's `Storage::digest`): per document its kind, version vector and log.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedUpdate {
    pub index: i64,
    pub origin: String,
    pub seq: u64,
    pub hash: u64,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocDigest {
    pub kind: String,
    pub version: BTreeMap<String, u64>,
    pub log: Vec<LoggedUpdate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub last_applied: u64,
    pub docs: BTreeMap<String, DocDigest>,
}

impl Digest {
    /// The (origin, seq) pairs logged for `doc`.
    pub fn logged(&self, doc: &str) -> BTreeSet<(String, u64)> {
        self.docs
            .get(doc)
            .map(|d| d.log.iter().map(|u| (u.origin.clone(), u.seq)).collect())
            .unwrap_or_default()
    }

    /// Total updates logged over all documents.
    pub fn updates(&self) -> usize {
        self.docs.values().map(|d| d.log.len()).sum()
    }
}

//! The digest of an update log, for comparing replicas offline: per document its kind,
//! version vector and every logged update as (log index, origin, seq, hash of the bytes),
//! plus the last applied position. The relay computes it (`concord-server digest`) and the
//! fault suite's checker compares the digests of stopped nodes; both use these types.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One logged update, its bytes reduced to a 64-bit FNV-1a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedUpdate {
    pub index: i64,
    pub origin: String,
    pub seq: u64,
    pub hash: u64,
    pub len: usize,
}

/// One document: kind, version vector (origin → highest contiguous seq) and its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocDigest {
    pub kind: String,
    pub version: BTreeMap<String, u64>,
    pub log: Vec<LoggedUpdate>,
}

/// The whole database: documents by id, and the last applied log position.
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

/// 64-bit FNV-1a: stable across builds and processes (unlike `DefaultHasher`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

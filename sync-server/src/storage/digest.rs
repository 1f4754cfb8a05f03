//! A digest of the whole relay database for comparing replicas offline: per document its
//! kind, version vector and every logged update as (log index, origin, seq, hash of the
//! bytes), plus the last applied position. Two nodes that applied the same log have equal
//! digests (the fault suite's checker compares them after stopping the processes).

use std::collections::BTreeMap;
use std::path::Path;

use concord_core::log;
use serde::{Deserialize, Serialize};

use super::{Result, Storage};

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

/// 64-bit FNV-1a: stable across builds and processes (unlike `DefaultHasher`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Storage {
    /// The digest of everything this storage holds.
    pub fn digest(&self) -> Result<Digest> {
        let mut docs = BTreeMap::new();
        for (id, state) in &self.heads {
            let log = log::indexed(&self.conn, id)?
                .into_iter()
                .map(|(index, u)| LoggedUpdate {
                    index,
                    origin: u.origin.as_str().to_string(),
                    seq: u.seq,
                    hash: fnv1a(&u.data),
                    len: u.data.len(),
                })
                .collect();
            let version = state
                .version
                .iter()
                .map(|(o, s)| (o.as_str().to_string(), s))
                .collect();
            docs.insert(
                id.clone(),
                DocDigest {
                    kind: state.kind.as_str().to_string(),
                    version,
                    log,
                },
            );
        }
        Ok(Digest {
            last_applied: self.last_applied,
            docs,
        })
    }

    /// Opens the relay database `path` (of a stopped node) and returns its digest.
    pub fn digest_file(path: &Path) -> Result<Digest> {
        Storage::open(path, u64::MAX)?.digest()
    }
}

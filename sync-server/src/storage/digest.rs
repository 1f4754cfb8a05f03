//! The digest of the whole relay database (types in `concord_core::log::digest`): two
//! nodes that applied the same log have equal digests (the fault suite's checker compares
//! them after stopping the processes).

use std::collections::BTreeMap;
use std::path::Path;

use concord_core::log;
pub use concord_core::log::digest::{fnv1a, Digest, DocDigest, LoggedUpdate};

use super::{Result, Storage};

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

//! Identifiers: document ids, update origins (device ids), and the parsing of document
//! kinds (the kind itself is [`crate::kind::DocKind`], re-exported here).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use crate::kind::DocKind;

/// The longest document id accepted, in bytes.
pub const MAX_DOC_ID_LEN: usize = 256;

/// The author of a run of updates: a device's id, kept in its store.
/// A device restored from an old backup takes a new origin (see `Store::reoriginate`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Origin(String);

impl Origin {
    /// A fresh random origin id (128 bits, hex).
    pub fn random() -> Origin {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the system random source is available");
        Origin(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Origin {
    fn from(s: String) -> Self {
        Origin(s)
    }
}

impl From<&str> for Origin {
    fn from(s: &str) -> Self {
        Origin(s.to_string())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a document id: 1..=256 bytes of printable ASCII without spaces.
pub fn validate_doc_id(id: &str) -> Result<(), Error> {
    let ok =
        !id.is_empty() && id.len() <= MAX_DOC_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidDocId(id.chars().take(80).collect()))
    }
}

impl FromStr for DocKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "automerge" => Ok(DocKind::Automerge),
            "yrs" | "yjs" => Ok(DocKind::Yrs),
            other => Err(Error::UnknownDocKind(other.to_string())),
        }
    }
}

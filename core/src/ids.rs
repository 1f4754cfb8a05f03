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

    /// Why this origin cannot name a writer on the wire, if it cannot: it must be 1 to
    /// [`MAX_ORIGIN_BYTES`] bytes without control characters. Every origin is stored with
    /// each of its updates and sent in every version vector of its document, so the relay
    /// refuses others (a hostile writer could otherwise bloat a document for everyone).
    pub fn invalid(&self) -> Option<String> {
        if self.0.is_empty() {
            Some("an origin must not be empty".into())
        } else if self.0.len() > MAX_ORIGIN_BYTES {
            Some(format!(
                "an origin is at most {MAX_ORIGIN_BYTES} bytes, this one has {}",
                self.0.len()
            ))
        } else if self.0.chars().any(char::is_control) {
            Some("an origin must not contain control characters".into())
        } else {
            None
        }
    }
}

/// The longest origin (device id) the relay takes, in bytes. Concord's own are 32 (random
/// devices) or about 30 (foreign clients' connections).
pub const MAX_ORIGIN_BYTES: usize = 128;

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

//! The kinds of documents: which CRDT library a document uses.
//!
//! A leaf module (it imports nothing of the crate), so that both [`crate::error`] (whose
//! variants name a kind) and [`crate::ids`] (which parses kinds, failing with an error)
//! can use it without importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which CRDT library a document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocKind {
    Automerge,
    Yrs,
}

impl DocKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DocKind::Automerge => "automerge",
            DocKind::Yrs => "yrs",
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

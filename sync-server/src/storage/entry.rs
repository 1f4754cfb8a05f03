//! The relay's replicated-log vocabulary: entries with their log position, and what
//! applying each one did.

use concord_core::{DocKind, UpdateRecord};
use serde::{Deserialize, Serialize};

/// One command of the ordered write log. Entries are validated (append rules and
/// integration) before they are proposed; applying a validated entry only fails on I/O.
/// Serialisable: a batch of them is the payload of one entry of the cluster's consensus log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LogEntry {
    CreateDoc {
        doc_id: String,
        kind: DocKind,
    },
    Append {
        doc_id: String,
        update: UpdateRecord,
    },
}

impl LogEntry {
    /// The document the entry concerns.
    pub fn doc_id(&self) -> &str {
        match self {
            LogEntry::CreateDoc { doc_id, .. } | LogEntry::Append { doc_id, .. } => doc_id,
        }
    }
}

/// A log entry at its position (1-based, gap-free) in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub index: u64,
    pub payload: LogEntry,
}

/// What applying one entry did; fan-out is driven from these (and, in a cluster, the reply
/// to the node that proposed the entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The document now exists.
    Created { doc_id: String, kind: DocKind },
    /// The update is now stored (new to this relay).
    Appended {
        doc_id: String,
        update: UpdateRecord,
    },
    /// Nothing changed: the document existed, the update was held, or the entry's index
    /// was applied before.
    Unchanged,
}

//! What a device sees of others' presence (awareness), sans IO: per document, the peers the
//! relay reported, each with its state and when it was last heard of. A peer leaves when
//! the relay says so (it withdrew or its connection dropped), when it has not refreshed its
//! state for [`PRESENCE_TIMEOUT`] (a peer the relay could not report, say), or — all of
//! them — when this device's own connection drops.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ids::Origin;
use crate::protocol::Presence;

/// A device re-sends its presence this often while connected.
pub const PRESENCE_REFRESH: Duration = Duration::from_secs(10);
/// A peer not heard of for this long is dropped.
pub const PRESENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Another connection's presence on a document.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerState {
    /// The relay's number for the connection (unique on that node).
    pub peer: u64,
    pub device_id: Origin,
    pub state: Vec<u8>,
    /// When it was last heard of (the driver's clock).
    pub seen: Duration,
}

/// Per document, the peers present.
#[derive(Debug, Default)]
pub struct PresenceView {
    docs: BTreeMap<String, BTreeMap<u64, PeerState>>,
}

impl PresenceView {
    /// Takes in a presence message from the relay; true when the document's peers changed
    /// (a refresh with the same state changes nothing).
    pub fn apply(&mut self, now: Duration, p: Presence) -> bool {
        if p.state.is_empty() {
            let Some(peers) = self.docs.get_mut(&p.doc_id) else {
                return false;
            };
            let removed = peers.remove(&p.peer).is_some();
            if peers.is_empty() {
                self.docs.remove(&p.doc_id);
            }
            return removed;
        }
        let peers = self.docs.entry(p.doc_id).or_default();
        let changed = peers.get(&p.peer).is_none_or(|old| old.state != p.state);
        peers.insert(
            p.peer,
            PeerState {
                peer: p.peer,
                device_id: p.device_id,
                state: p.state,
                seen: now,
            },
        );
        changed
    }

    /// Drops peers not heard of since `now - PRESENCE_TIMEOUT`; returns the documents whose
    /// peers changed.
    pub fn expire(&mut self, now: Duration) -> Vec<String> {
        let mut changed = Vec::new();
        for (doc, peers) in &mut self.docs {
            let before = peers.len();
            peers.retain(|_, p| now.saturating_sub(p.seen) < PRESENCE_TIMEOUT);
            if peers.len() != before {
                changed.push(doc.clone());
            }
        }
        self.docs.retain(|_, peers| !peers.is_empty());
        changed
    }

    /// Forgets everyone (this device's connection is gone); returns the documents that
    /// had peers.
    pub fn clear(&mut self) -> Vec<String> {
        let docs = self.docs.keys().cloned().collect();
        self.docs.clear();
        docs
    }

    /// The peers present on `doc_id`, by peer number.
    pub fn peers(&self, doc_id: &str) -> Vec<PeerState> {
        self.docs
            .get(doc_id)
            .map(|peers| peers.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(peer: u64, state: &str) -> Presence {
        Presence {
            doc_id: "d".into(),
            peer,
            device_id: Origin::from("x"),
            state: state.as_bytes().to_vec(),
        }
    }

    #[test]
    fn joins_refreshes_leaves_and_expires() {
        let mut view = PresenceView::default();
        let t = Duration::from_secs;
        assert!(view.apply(t(0), msg(1, "a")));
        assert!(view.apply(t(0), msg(2, "b")));
        assert!(!view.apply(t(5), msg(1, "a")), "a refresh is no change");
        assert!(view.apply(t(6), msg(2, "")), "an empty state is a leave");
        assert_eq!(view.peers("d").len(), 1);
        assert!(
            view.expire(t(34)).is_empty(),
            "refreshed at 5 s: still here at 34 s"
        );
        assert_eq!(view.expire(t(36)), vec!["d".to_string()]);
        assert!(view.peers("d").is_empty());
        view.apply(t(40), msg(3, "c"));
        assert_eq!(view.clear(), vec!["d".to_string()]);
        assert!(view.peers("d").is_empty());
    }
}

//! What an automerge-repo client's sync message must satisfy before Automerge reads it.
//! Automerge trusts a peer's message in two places that a hostile client reaches with one
//! frame: the Bloom filter of what the peer has (`have`), whose probe count it allocates
//! and loops over and whose size it divides by, and the changes, whose compressed parts it
//! inflates without a bound (checked joined, as Automerge reads them, so a chunk split
//! across entries is walked whole; only whole document and change chunks pass). A message
//! outside these bounds closes the connection.

use automerge::sync::Message as SyncMessage;

/// The most probes a `have` filter may ask for (Automerge's own filters use 7).
pub const MAX_PROBES: u64 = 64;

/// Why `message` may not be read (`Err`), or about the memory its changes take once read
/// (their chunks, with what their compressed parts inflate to).
pub fn check(message: &SyncMessage) -> Result<u64, String> {
    for have in &message.have {
        if let Some(why) = bad_filter(&have.bloom.to_bytes()) {
            return Err(format!("bad bloom filter: {why}"));
        }
    }
    // Automerge joins the entries before it reads them: so are they checked.
    let joined: Vec<u8> = message.changes.iter().flatten().copied().collect();
    concord_core::doc::check_automerge_chunks(&joined).map_err(|e| e.to_string())
}

/// A filter as Automerge encodes it: empty, or its entry count, bits per entry and probe
/// count (LEB128), then its bits.
fn bad_filter(bytes: &[u8]) -> Option<&'static str> {
    if bytes.is_empty() {
        return None;
    }
    let mut rest = bytes;
    let mut fields = [0u64; 3];
    for field in &mut fields {
        *field = leb(&mut rest)?;
    }
    let [entries, bits_per_entry, probes] = fields;
    if entries == 0 {
        return None;
    }
    if bits_per_entry == 0 || rest.is_empty() {
        return Some("no bits");
    }
    if probes == 0 || probes > MAX_PROBES {
        return Some("probe count out of range");
    }
    None
}

fn leb(bytes: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    /// A real first sync message (with a `have` filter of the sender's changes).
    fn real_message() -> SyncMessage {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "k", "v").unwrap();
        doc.commit();
        let mut state = automerge::sync::State::new();
        let message = doc.sync().generate_sync_message(&mut state).unwrap();
        message
    }

    /// A compressed change split across two entries (Automerge joins them before reading)
    /// is measured inflated, as whole.
    #[test]
    fn a_chunk_split_across_entries_is_measured_whole() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "k", "compresses ".repeat(10_000)).unwrap();
        doc.commit();
        let mut change = doc.get_last_local_change().unwrap().clone();
        let inflated = change.raw_bytes().len() as u64;
        let bytes = change.bytes().to_vec();
        assert!((bytes.len() as u64) < inflated / 10, "compressed");
        let (a, b) = bytes.split_at(bytes.len() / 2);
        let message = SyncMessage {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: automerge::sync::ChunkList::from(vec![a.to_vec(), b.to_vec()]),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        let size = check(&message).unwrap();
        assert!(size >= inflated, "{size} < {inflated}");
        // The first half alone is no whole chunk.
        let half = SyncMessage {
            changes: automerge::sync::ChunkList::from(vec![a.to_vec()]),
            ..message
        };
        assert!(check(&half).is_err());
    }

    #[test]
    fn real_messages_pass() {
        let message = real_message();
        assert!(!message.have.is_empty());
        assert_eq!(check(&message), Ok(0));
    }

    #[test]
    fn filters_that_would_divide_by_zero_or_allocate_without_bound_are_refused() {
        assert_eq!(bad_filter(&[]), None);
        assert_eq!(bad_filter(&[1, 10, 7, 0xff, 0xff]), None);
        assert_eq!(bad_filter(&[1, 0, 7]), Some("no bits"));
        assert_eq!(
            bad_filter(&[1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff]),
            Some("probe count out of range")
        );
        assert_eq!(
            bad_filter(&[1, 10, 0, 0xff, 0xff]),
            Some("probe count out of range")
        );
    }
}

//! Splitting long runs of updates into `Updates` messages that fit in a frame.

use crate::protocol::{Message, Updates};
use crate::update::UpdateRecord;

/// Groups `updates` (in order) into messages of at most `max_bytes` of update data each
/// (a single larger update still gets a message of its own). Every message carries `lsn`
/// (the relay: the log position of the state they come from; a client: 0).
pub fn chunk_updates(
    doc_id: &str,
    updates: Vec<UpdateRecord>,
    max_bytes: usize,
    lsn: u64,
) -> Vec<Message> {
    let mut out = Vec::new();
    let mut current: Vec<UpdateRecord> = Vec::new();
    let mut size = 0;
    for u in updates {
        let len = u.data.len() + u.origin.as_str().len() + 16;
        if !current.is_empty() && size + len > max_bytes {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(u);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.into_iter()
        .map(|updates| {
            Message::Updates(Updates {
                doc_id: doc_id.to_string(),
                updates,
                lsn,
            })
        })
        .collect()
}

//! One Yrs v1 update from the blocks a document gained since a state vector and a delete
//! set of the caller's choosing (a local edit's own deletions, `yrs_local.rs`).
//!
//! Yrs encodes the blocks since a state vector only together with the document's whole
//! delete set (`ReadTxn::encode_diff`). [`SectionEncoder`] writes v1 byte for byte as
//! `EncoderV1` does and notes where that delete set begins, so it can be cut off and the
//! edit's own written in its place.

use yrs::encoding::varint::VarInt;
use yrs::encoding::write::Write;
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{Any, ClientID, IdSet, ReadTxn, StateVector, ID};

/// The v1 update holding every block `txn`'s document has past `since`, and `deleted`.
pub(super) fn update_since(txn: &impl ReadTxn, since: &StateVector, deleted: &IdSet) -> Vec<u8> {
    let mut encoder = SectionEncoder::default();
    txn.encode_diff(since, &mut encoder);
    let mut update = encoder.blocks_section();
    let mut tail = EncoderV1::new();
    deleted.encode(&mut tail);
    update.extend_from_slice(&tail.to_vec());
    update
}

/// A v1 encoder that remembers where the delete set section starts.
///
/// A v1 update is its blocks section, then its delete set: a count of clients, then for
/// each client `reset_ds_cur_val` and its ranges. Nothing in the blocks section calls
/// `reset_ds_cur_val`, so the delete set starts at the count written just before the
/// first such call, or, with no clients, at the count written last.
#[derive(Default)]
struct SectionEncoder {
    buf: Vec<u8>,
    /// Where the latest variable-length integer began.
    last_var_at: usize,
    /// Where the delete set began, once its first client was written.
    delete_set_at: Option<usize>,
}

impl SectionEncoder {
    /// The bytes before the delete set.
    fn blocks_section(mut self) -> Vec<u8> {
        let end = self.delete_set_at.unwrap_or(self.last_var_at);
        self.buf.truncate(end);
        self.buf
    }

    fn write_id(&mut self, id: &ID) {
        self.write_var(id.client.get());
        self.write_var(id.clock)
    }
}

impl Write for SectionEncoder {
    fn write_all(&mut self, buf: &[u8]) {
        self.buf.extend_from_slice(buf)
    }

    fn write_u8(&mut self, value: u8) {
        self.buf.push(value)
    }

    fn write_var<T: VarInt>(&mut self, num: T) {
        self.last_var_at = self.buf.len();
        num.write(self)
    }
}

/// The same bytes as `yrs::updates::encoder::EncoderV1`.
impl Encoder for SectionEncoder {
    fn to_vec(self) -> Vec<u8> {
        self.buf
    }

    fn reset_ds_cur_val(&mut self) {
        self.delete_set_at.get_or_insert(self.last_var_at);
    }

    fn write_ds_clock(&mut self, clock: u32) {
        self.write_var(clock)
    }

    fn write_ds_len(&mut self, len: u32) {
        self.write_var(len)
    }

    fn write_left_id(&mut self, id: &ID) {
        self.write_id(id)
    }

    fn write_right_id(&mut self, id: &ID) {
        self.write_id(id)
    }

    fn write_client(&mut self, client: ClientID) {
        self.write_var(client.get())
    }

    fn write_info(&mut self, info: u8) {
        self.write_u8(info)
    }

    fn write_parent_info(&mut self, is_y_key: bool) {
        self.write_var(u32::from(is_y_key))
    }

    fn write_type_ref(&mut self, info: u8) {
        self.write_u8(info)
    }

    fn write_len(&mut self, len: u32) {
        self.write_var(len)
    }

    fn write_any(&mut self, any: &Any) {
        any.encode(self)
    }

    fn write_json(&mut self, any: &Any) {
        let mut json = String::new();
        any.to_json(&mut json);
        self.write_string(&json)
    }

    fn write_key(&mut self, key: &str) {
        self.write_string(key)
    }
}

#[cfg(test)]
mod tests {
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, Map, Text, Transact, Update};

    use super::*;

    /// The document's whole state as v1, through `SectionEncoder` and through Yrs.
    #[test]
    fn the_section_encoder_writes_what_encoder_v1_writes() {
        let doc = yrs::Doc::with_client_id(7);
        let text = doc.get_or_insert_text("t");
        let map = doc.get_or_insert_map("m");
        {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "héllo 🌍 world");
            map.insert(&mut txn, "k", yrs::Any::from(vec![1.5, 2.0]));
            map.insert(&mut txn, "n", "v");
        }
        text.remove_range(&mut doc.transact_mut(), 1, 3);
        let txn = doc.transact();
        let mut mine = SectionEncoder::default();
        txn.encode_diff(&StateVector::default(), &mut mine);
        assert!(mine.delete_set_at.is_some(), "the document has deletions");
        assert_eq!(mine.to_vec(), txn.encode_diff_v1(&StateVector::default()));
    }

    #[test]
    fn an_update_since_holds_the_new_blocks_and_only_the_given_deletions() {
        let doc = yrs::Doc::with_client_id(7);
        let text = doc.get_or_insert_text("t");
        text.insert(&mut doc.transact_mut(), 0, "abcdef");
        text.remove_range(&mut doc.transact_mut(), 0, 2);
        let since = doc.transact().state_vector();
        let replica = yrs::Doc::with_client_id(8);
        let theirs = replica.get_or_insert_text("t");
        let full = doc.transact().encode_diff_v1(&StateVector::default());
        replica
            .transact_mut()
            .apply_update(Update::decode_v1(&full).unwrap())
            .unwrap();

        text.insert(&mut doc.transact_mut(), 4, "XY");
        let mut deleted = IdSet::new();
        {
            let mut txn = doc.transact_mut();
            text.remove_range(&mut txn, 2, 1);
            for (client, ranges) in txn.delete_set().iter() {
                for r in ranges.iter() {
                    deleted.insert(ID::new(*client, r.start), r.end - r.start);
                }
            }
        }
        let update = update_since(&doc.transact(), &since, &deleted);
        let decoded = Update::decode_v1(&update).unwrap();
        assert_eq!(decoded.delete_set(), &deleted, "only this edit's deletions");
        replica.transact_mut().apply_update(decoded).unwrap();
        assert_eq!(theirs.get_string(&replica.transact()), "cdfXY");
        assert_eq!(text.get_string(&doc.transact()), "cdfXY");

        // With no deletions at all in the document, the section still ends where it should.
        let fresh = yrs::Doc::with_client_id(9);
        fresh
            .get_or_insert_text("t")
            .insert(&mut fresh.transact_mut(), 0, "hi");
        let update = update_since(&fresh.transact(), &StateVector::default(), &IdSet::new());
        let again = yrs::Doc::new();
        let t = again.get_or_insert_text("t");
        again
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        assert_eq!(t.get_string(&again.transact()), "hi");
    }
}

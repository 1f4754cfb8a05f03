//! Yrs: a nested type created at a map key is the same item on every device.
//!
//! A Y.Map, Y.Array or Y.Text put at a missing key of a map is inserted as an item whose id
//! (client, clock 0) comes from (parent, key, type) (see `creation_id.rs`), with no left or
//! right neighbour. Two devices that create it while offline produce the same item, which
//! Yrs integrates once, so the edits either device makes inside it meet in one type.
//!
//! The item is built as a one-item v1 update and applied inside the edit's transaction, so it
//! travels in the edit's update. If it does not end up as the key's value (the key held a
//! value before that was deleted: Yrs keeps only the rightmost entry of a key), the type is
//! created the ordinary way instead.

use yrs::encoding::write::Write;
use yrs::types::{TYPE_REFS_ARRAY, TYPE_REFS_MAP, TYPE_REFS_TEXT};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::{Encoder, EncoderV1};
use yrs::{BranchID, ClientID, Map, MapRef, Out, ReadTxn, TransactionMut, Update, ID};

use super::creation_id::CreationKey;

/// The nested type to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NestedType {
    Map,
    Array,
    Text,
}

impl NestedType {
    fn type_ref(self) -> u8 {
        match self {
            NestedType::Map => TYPE_REFS_MAP,
            NestedType::Array => TYPE_REFS_ARRAY,
            NestedType::Text => TYPE_REFS_TEXT,
        }
    }

    fn name(self) -> &'static str {
        match self {
            NestedType::Map => "map",
            NestedType::Array => "list",
            NestedType::Text => "text",
        }
    }
}

/// Item info bits (Yjs encoding): content type 7 is a nested type; 0x20 = has a key.
const ITEM_TYPE_CONTENT: u8 = 7;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

/// Creates `ty` at `key` of `map` (where nothing is visible now) as the shared item and
/// returns the new value, or `None` when the caller must create it the ordinary way.
pub(super) fn create_at_key(
    txn: &mut TransactionMut<'_>,
    map: &MapRef,
    key: &str,
    ty: NestedType,
) -> Option<Out> {
    let branch: &yrs::branch::Branch = map.as_ref();
    let parent = branch.id();
    let parent_name = match &parent {
        BranchID::Root(name) => format!("root:{name}"),
        BranchID::Nested(id) => format!("{}:{}", id.client, id.clock),
    };
    let client = CreationKey {
        parent: &parent_name,
        key,
        kind: ty.name(),
        generation: "0",
    }
    .id53();
    let client = ClientID::new(client);
    if txn.state_vector().get(&client) > 0 {
        // Already created once here (and since deleted or replaced): no shared re-creation.
        return None;
    }
    let update = Update::decode_v1(&encode_item(client, &parent, key, ty)).ok()?;
    txn.apply_update(update).ok()?;
    let value = map.get(txn, key)?;
    let id = match &value {
        Out::YMap(m) => branch_item(m.as_ref()),
        Out::YArray(a) => branch_item(a.as_ref()),
        Out::YText(t) => branch_item(t.as_ref()),
        _ => None,
    };
    (id == Some(ID::new(client, 0))).then_some(value)
}

fn branch_item(branch: &yrs::branch::Branch) -> Option<ID> {
    match branch.id() {
        BranchID::Nested(id) => Some(id),
        BranchID::Root(_) => None,
    }
}

/// A v1 update holding one item: `ty` at `key` of `parent`, id (client, 0), no neighbours.
fn encode_item(client: ClientID, parent: &BranchID, key: &str, ty: NestedType) -> Vec<u8> {
    let mut enc = EncoderV1::new();
    enc.write_var(1u32); // one client
    enc.write_var(1u32); // one block
    enc.write_client(client);
    enc.write_var(0u32); // starting clock
    enc.write_info(ITEM_TYPE_CONTENT | HAS_PARENT_SUB);
    match parent {
        BranchID::Root(name) => {
            enc.write_parent_info(true);
            enc.write_string(name);
        }
        BranchID::Nested(id) => {
            enc.write_parent_info(false);
            enc.write_left_id(id);
        }
    }
    enc.write_string(key);
    enc.write_type_ref(ty.type_ref());
    enc.write_var(0u32); // empty delete set
    enc.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Transact};

    /// The hand-built item decodes and integrates as the map's value in a fresh document.
    #[test]
    fn shared_item_integrates_as_the_keys_value() {
        let doc = Doc::new();
        let root = doc.get_or_insert_map("meta");
        let mut txn = doc.transact_mut();
        let created = create_at_key(&mut txn, &root, "tags", NestedType::Array);
        assert!(matches!(created, Some(Out::YArray(_))));
        // A second creation finds the client already used: the caller must not re-create.
        assert!(create_at_key(&mut txn, &root, "tags", NestedType::Array).is_none());
    }
}

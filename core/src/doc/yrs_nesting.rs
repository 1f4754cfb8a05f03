//! A bound on how deeply shared types (maps, arrays, texts, XML nodes) nest in a Yrs
//! document, checked on a peer's update before Yrs applies it. Yrs deletes a nested type,
//! and garbage-collects it, by recursion, one call per level; so does overwriting the map
//! key that holds it. A writer that nests maps ten thousand deep (a few tens of KiB) and
//! then deletes them overflows the applying thread's stack, which aborts the process: the
//! relay, with every connection on it, or a device.
//!
//! The walk reads each block of the update (per client, in clock order): its clock range,
//! whether it is a shared type, and how it names its parent: a root, the parent type's
//! id, or an origin (right origin) whose parent it shares. A new type's level is its
//! parent's level + 1 (a root is level 0). Parents and origins inside the update resolve
//! within it; one already in the document resolves to `outside`: the deepest level of a
//! type the document holds ([`deepest_type`]), an upper bound for any of them. The check
//! keeps every type a document accepts within [`MAX_TYPE_DEPTH`], so every subtree Yrs
//! deletes is at most that deep. What the walk cannot read is left to Yrs, which refuses it.

use std::collections::HashMap;

use yrs::encoding::read::{Cursor, Read};
use yrs::{Array, Doc, Map, Out, ReadTxn, Text, Transact, XmlFragment, XmlOut};

use crate::error::{Error, Result};
use crate::ids::DocKind;

/// The deepest level a shared type may have (a root type is level 0).
pub const MAX_TYPE_DEPTH: u32 = 128;

// The layout's constants, as yrs 0.28 names them (`block.rs`, `types/mod.rs`).
const BLOCK_GC: u8 = 0;
const BLOCK_SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const CONTENT_DELETED: u8 = 1;
const CONTENT_JSON: u8 = 2;
const CONTENT_BINARY: u8 = 3;
const CONTENT_STRING: u8 = 4;
const CONTENT_EMBED: u8 = 5;
const CONTENT_FORMAT: u8 = 6;
const CONTENT_TYPE: u8 = 7;
const CONTENT_ANY: u8 = 8;
const CONTENT_DOC: u8 = 9;
const TYPE_XML_ELEMENT: u8 = 3;

/// An item's id: client and clock.
type Id = (u64, u32);

/// How a block names its parent.
#[derive(Clone, Copy)]
enum Parent {
    /// A root type (level 0).
    Root,
    /// The parent type's own item.
    Type(Id),
    /// A neighbour (origin or right origin) with the same parent.
    Sibling(Id),
    /// None (garbage-collected or skipped ranges).
    Nothing,
}

struct Block {
    clock: u32,
    len: u32,
    parent: Parent,
    is_type: bool,
}

/// An error when `update`, applied to `doc`, would make a shared type deeper than
/// [`MAX_TYPE_DEPTH`].
pub(super) fn check_type_depth(doc: &Doc, update: &[u8]) -> Result<()> {
    check_type_depths(doc, &[update])
}

/// [`check_type_depth`] for `updates` applied to `doc` one after the other: a parent or
/// origin in an earlier one is taken at the deepest level the earlier ones create.
pub(super) fn check_type_depths(doc: &Doc, updates: &[&[u8]]) -> Result<()> {
    let mut in_doc = None;
    let mut earlier = 0;
    for update in updates {
        let Some(blocks) = parse(update) else {
            continue;
        };
        let outside = || {
            let deepest = *in_doc.get_or_insert_with(|| deepest_type(doc));
            deepest.max(earlier)
        };
        if let Some(level) = deepest_new_type(&blocks, outside) {
            if level > MAX_TYPE_DEPTH {
                return Err(Error::InvalidUpdate {
                    kind: DocKind::Yrs,
                    reason: format!("it nests shared types deeper than {MAX_TYPE_DEPTH} levels"),
                });
            }
            earlier = earlier.max(level);
        }
    }
    Ok(())
}

/// The deepest level of a shared type in `doc` (0 when it has none but roots). Walked with
/// a stack of its own: maps, arrays, texts (their embedded types) and XML nodes.
pub(super) fn deepest_type(doc: &Doc) -> u32 {
    let txn = doc.transact();
    let mut stack: Vec<(Out, u32)> = txn.root_refs().map(|(_, out)| (out, 0)).collect();
    let mut deepest = 0;
    while let Some((out, level)) = stack.pop() {
        deepest = deepest.max(level);
        let children: Vec<Out> = match &out {
            Out::YMap(m) => m.iter(&txn).map(|(_, v)| v).collect(),
            Out::YArray(a) => a.iter(&txn).collect(),
            Out::YText(t) => t
                .diff(&txn, yrs::types::text::YChange::identity)
                .into_iter()
                .map(|d| d.insert)
                .collect(),
            Out::YXmlElement(e) => e.children(&txn).map(xml_out).collect(),
            Out::YXmlFragment(f) => f.children(&txn).map(xml_out).collect(),
            Out::YXmlText(t) => t
                .diff(&txn, yrs::types::text::YChange::identity)
                .into_iter()
                .map(|d| d.insert)
                .collect(),
            // A root no one declared yet: its entries and its items.
            Out::UndefinedRef(branch) => yrs::MapRef::from(*branch)
                .iter(&txn)
                .map(|(_, v)| v)
                .chain(yrs::ArrayRef::from(*branch).iter(&txn))
                .collect(),
            _ => Vec::new(),
        };
        stack.extend(
            children
                .into_iter()
                .filter(|c| !matches!(c, Out::Any(_)))
                .map(|c| (c, level + 1)),
        );
    }
    deepest
}

fn xml_out(node: XmlOut) -> Out {
    match node {
        XmlOut::Element(e) => Out::YXmlElement(e),
        XmlOut::Fragment(f) => Out::YXmlFragment(f),
        XmlOut::Text(t) => Out::YXmlText(t),
    }
}

/// The deepest level of a type the update's `blocks` create (`None` when they create
/// none), a parent or origin outside them taken at `outside()`.
fn deepest_new_type(
    blocks: &HashMap<u64, Vec<Block>>,
    mut outside: impl FnMut() -> u32,
) -> Option<u32> {
    let total: usize = blocks.values().map(Vec::len).sum();
    let mut memo: HashMap<(u64, usize), u32> = HashMap::new();
    let mut deepest = None;
    for (client, list) in blocks {
        for (i, block) in list.iter().enumerate() {
            if block.is_type {
                let level = parent_level(blocks, &mut memo, (*client, i), total, &mut outside) + 1;
                deepest = deepest.max(Some(level));
            }
        }
    }
    deepest
}

/// The level of the parent of block `start`, following parents and origins with a stack
/// of its own; every block on the way is remembered in `memo`.
fn parent_level(
    blocks: &HashMap<u64, Vec<Block>>,
    memo: &mut HashMap<(u64, usize), u32>,
    start: (u64, usize),
    total: usize,
    outside: &mut impl FnMut() -> u32,
) -> u32 {
    // Each step: a block, and what its parent's level adds to the next block's.
    let mut chain: Vec<((u64, usize), u32)> = Vec::new();
    let mut at = start;
    let base = loop {
        if let Some(level) = memo.get(&at) {
            break *level;
        }
        if chain.len() > total {
            // Origins that go round in a circle: no update Yrs makes; refused as too deep.
            return MAX_TYPE_DEPTH + 1;
        }
        let next = match blocks[&at.0][at.1].parent {
            Parent::Root | Parent::Nothing => {
                memo.insert(at, 0);
                break 0;
            }
            Parent::Type(id) => (find(blocks, id), 1),
            Parent::Sibling(id) => (find(blocks, id), 0),
        };
        match next {
            (Some(block), add) => {
                chain.push((at, add));
                at = block;
            }
            // An existing parent type, or an existing item with an existing parent: at
            // most the document's deepest type.
            (None, _) => {
                let level = outside();
                memo.insert(at, level);
                break level;
            }
        }
    };
    let mut level = base;
    for (block, add) in chain.into_iter().rev() {
        level = level.saturating_add(add);
        memo.insert(block, level);
    }
    level
}

/// The block of the update holding `id`.
fn find(blocks: &HashMap<u64, Vec<Block>>, (client, clock): Id) -> Option<(u64, usize)> {
    let list = blocks.get(&client)?;
    let i = list.partition_point(|b| b.clock.saturating_add(b.len) <= clock);
    list.get(i)
        .filter(|b| b.clock <= clock)
        .map(|_| (client, i))
}

/// The update's blocks per client, in clock order (`None` when it does not read).
fn parse(update: &[u8]) -> Option<HashMap<u64, Vec<Block>>> {
    let r = &mut Cursor::new(update);
    let clients: u32 = r.read_var().ok()?;
    let mut blocks: HashMap<u64, Vec<Block>> = HashMap::new();
    for _ in 0..clients {
        let count: u32 = r.read_var().ok()?;
        let client: u64 = r.read_var().ok()?;
        let mut clock: u32 = r.read_var().ok()?;
        let list = blocks.entry(client).or_default();
        for _ in 0..count {
            let block = read_block(r, clock)?;
            clock = clock.checked_add(block.len)?;
            list.push(block);
        }
    }
    // Yrs sorts a client's blocks by clock; so does the search.
    for list in blocks.values_mut() {
        list.sort_by_key(|b| b.clock);
    }
    Some(blocks)
}

fn read_id(r: &mut Cursor<'_>) -> Option<Id> {
    let client: u64 = r.read_var().ok()?;
    let clock: u32 = r.read_var().ok()?;
    Some((client, clock))
}

fn read_block(r: &mut Cursor<'_>, clock: u32) -> Option<Block> {
    let info = r.read_u8().ok()?;
    if info == BLOCK_GC || info == BLOCK_SKIP {
        let len: u32 = r.read_var().ok()?;
        return Some(Block {
            clock,
            len,
            parent: Parent::Nothing,
            is_type: false,
        });
    }
    let origin = if info & HAS_ORIGIN != 0 {
        Some(read_id(r)?)
    } else {
        None
    };
    let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
        Some(read_id(r)?)
    } else {
        None
    };
    let parent = match origin.or(right_origin) {
        Some(id) => Parent::Sibling(id),
        None => {
            let named: u32 = r.read_var().ok()?;
            let parent = if named == 1 {
                r.read_string().ok()?;
                Parent::Root
            } else {
                Parent::Type(read_id(r)?)
            };
            if info & HAS_PARENT_SUB != 0 {
                r.read_string().ok()?;
            }
            parent
        }
    };
    let (len, is_type) = match info & 0b1111 {
        CONTENT_DELETED => (r.read_var().ok()?, false),
        CONTENT_JSON => {
            let count: u32 = r.read_var().ok()?;
            for _ in 0..=count {
                r.read_string().ok()?;
            }
            (count.checked_add(1)?, false)
        }
        CONTENT_BINARY => {
            r.read_buf().ok()?;
            (1, false)
        }
        CONTENT_STRING => {
            let s = r.read_string().ok()?;
            (u32::try_from(s.encode_utf16().count()).ok()?, false)
        }
        CONTENT_EMBED => {
            r.read_string().ok()?;
            (1, false)
        }
        CONTENT_FORMAT => {
            r.read_string().ok()?;
            r.read_string().ok()?;
            (1, false)
        }
        CONTENT_TYPE => {
            if r.read_u8().ok()? == TYPE_XML_ELEMENT {
                r.read_string().ok()?;
            }
            (1, true)
        }
        CONTENT_ANY => {
            let count: u32 = r.read_var().ok()?;
            for _ in 0..count {
                if !super::yrs_depth::skip_value(r) {
                    return None;
                }
            }
            (count, false)
        }
        CONTENT_DOC => {
            r.read_string().ok()?;
            if !super::yrs_depth::skip_value(r) {
                return None;
            }
            (1, false)
        }
        _ => return None,
    };
    Some(Block {
        clock,
        len,
        parent,
        is_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{ArrayPrelim, MapPrelim, WriteTxn};

    /// An update nesting `depth` maps under the root map "root" (the last at level
    /// `depth`), made on `doc`.
    fn chain(doc: &Doc, depth: u32) -> Vec<u8> {
        let mut txn = doc.transact_mut();
        let mut map = txn.get_or_insert_map("root");
        for _ in 0..depth {
            map = map.insert(&mut txn, "a", MapPrelim::default());
        }
        txn.encode_update_v1()
    }

    #[test]
    fn a_chain_in_one_update_is_measured_exactly() {
        for depth in [1, MAX_TYPE_DEPTH, MAX_TYPE_DEPTH + 1] {
            let update = chain(&Doc::new(), depth);
            let blocks = parse(&update).unwrap();
            assert_eq!(deepest_new_type(&blocks, || 0), Some(depth));
            let checked = check_type_depth(&Doc::new(), &update);
            assert_eq!(checked.is_ok(), depth <= MAX_TYPE_DEPTH, "{depth}");
        }
    }

    #[test]
    fn a_chain_grown_one_update_at_a_time_is_refused_past_the_bound() {
        use yrs::updates::decoder::Decode;
        let source = Doc::new();
        let target = Doc::new();
        let mut map = source.transact_mut().get_or_insert_map("root");
        for level in 1..=MAX_TYPE_DEPTH + 1 {
            let update = {
                let mut txn = source.transact_mut();
                map = map.insert(&mut txn, "a", MapPrelim::default());
                txn.encode_update_v1()
            };
            let checked = check_type_depth(&target, &update);
            if level > MAX_TYPE_DEPTH {
                assert!(checked.is_err(), "{level}");
                break;
            }
            checked.unwrap();
            target
                .transact_mut()
                .apply_update(yrs::Update::decode_v1(&update).unwrap())
                .unwrap();
            assert_eq!(deepest_type(&target), level);
        }
    }

    #[test]
    fn arrays_and_origins_inside_the_update_count_too() {
        let doc = Doc::new();
        let update = {
            let mut txn = doc.transact_mut();
            let root = txn.get_or_insert_array("list");
            root.push_back(&mut txn, 1);
            // Each level's array is pushed after a value: its parent comes from its origin.
            let mut inner = root.push_back(&mut txn, ArrayPrelim::default());
            for _ in 1..MAX_TYPE_DEPTH + 5 {
                inner.push_back(&mut txn, 1);
                inner = inner.push_back(&mut txn, ArrayPrelim::default());
            }
            txn.encode_update_v1()
        };
        let blocks = parse(&update).unwrap();
        assert_eq!(deepest_new_type(&blocks, || 0), Some(MAX_TYPE_DEPTH + 5));
        assert!(check_type_depth(&Doc::new(), &update).is_err());
    }
}

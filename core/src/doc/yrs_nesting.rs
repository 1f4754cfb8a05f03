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

use std::collections::{HashMap, HashSet};

use yrs::branch::BranchPtr;
use yrs::encoding::read::{Cursor, Read};
use yrs::{Array, Doc, Map, Out, ReadTxn, Text, TextRef, Transact};

use super::yrs_depth::{
    BLOCK_GC, BLOCK_SKIP, CONTENT_ANY, CONTENT_BINARY, CONTENT_DELETED, CONTENT_DOC, CONTENT_EMBED,
    CONTENT_FORMAT, CONTENT_JSON, CONTENT_STRING, CONTENT_TYPE, HAS_ORIGIN, HAS_PARENT_SUB,
    HAS_RIGHT_ORIGIN, TYPE_XML_ELEMENT,
};
use crate::error::{Error, Result};
use crate::ids::DocKind;

/// The deepest level a shared type may have (a root type is level 0).
pub const MAX_TYPE_DEPTH: u32 = 128;

/// An item's id: client and clock.
type Id = (u64, u32);

/// A block of the update: its client and index in that client's list.
type At = (u64, usize);

/// How a block names its parent.
#[derive(Clone, Copy)]
enum Parent {
    /// A root type (level 0).
    Root,
    /// The parent type's own item.
    Type(Id),
    /// Its neighbours (origin, right origin), whose parent it shares: Yrs takes the
    /// origin's, or the right origin's when the origin is garbage-collected.
    Siblings(Option<Id>, Option<Id>),
    /// None (garbage-collected or skipped ranges).
    Nothing,
}

struct Block {
    clock: u32,
    len: u32,
    parent: Parent,
    is_type: bool,
}

impl Block {
    fn is_item(&self) -> bool {
        !matches!(self.parent, Parent::Nothing)
    }
}

/// An update's blocks, per client in clock order.
struct Blocks {
    clients: HashMap<u64, Vec<Block>>,
    /// Per client, the clock below which the document already holds every item: Yrs drops
    /// a block there (a resent one may name another parent: it does not count).
    known: HashMap<u64, u32>,
}

fn refused(why: &str) -> Error {
    Error::InvalidUpdate {
        kind: DocKind::Yrs,
        reason: why.to_string(),
    }
}

/// An error when `update`, applied to `doc`, would make a shared type deeper than
/// [`MAX_TYPE_DEPTH`].
pub(super) fn check_type_depth(doc: &Doc, update: &[u8]) -> Result<()> {
    check_type_depths(doc, &[update])
}

/// [`check_type_depth`] for `updates` applied to `doc` one after the other: a parent or
/// origin in an earlier one is taken at the deepest level the earlier ones create. An
/// update the walk cannot read is refused (Yrs refuses it too, or would read it otherwise
/// than the walk).
pub(super) fn check_type_depths(doc: &Doc, updates: &[&[u8]]) -> Result<()> {
    // What the document holds (its state vector: one entry per client it knows, read only
    // for an update that makes a type), and what the earlier updates add to it.
    let mut in_doc_clocks: Option<HashMap<u64, u32>> = None;
    let mut advanced: HashMap<u64, u32> = HashMap::new();
    let mut in_doc = None;
    let mut earlier = 0;
    for update in updates {
        let mut blocks = parse(update)
            .ok_or_else(|| refused("its blocks do not read as one section per client"))?;
        if blocks.clients.values().flatten().any(|b| b.is_type) {
            let mut known = in_doc_clocks
                .get_or_insert_with(|| {
                    let txn = doc.transact();
                    let clocks = txn.state_vector();
                    clocks.iter().map(|(c, k)| (c.get(), *k)).collect()
                })
                .clone();
            for (client, end) in &advanced {
                let k = known.entry(*client).or_default();
                *k = (*k).max(*end);
            }
            blocks.known = known;
            let outside = || {
                let deepest = *in_doc.get_or_insert_with(|| deepest_type(doc));
                deepest.max(earlier)
            };
            if let Some(level) = deepest_new_type(&blocks, outside) {
                if level > MAX_TYPE_DEPTH {
                    return Err(refused(&format!(
                        "it nests shared types deeper than {MAX_TYPE_DEPTH} levels"
                    )));
                }
                earlier = earlier.max(level);
            }
        }
        for (client, list) in &blocks.clients {
            if let Some(last) = list.last() {
                let k = advanced.entry(*client).or_default();
                *k = (*k).max(last.clock + last.len);
            }
        }
    }
    Ok(())
}

/// The shared types one level below `out`: its keyed entries (map entries, XML
/// attributes) and its sequence items (array items, XML children, a text's embeds).
fn children(txn: &yrs::Transaction<'_>, out: &Out) -> Vec<Out> {
    let branch = match out {
        Out::YMap(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YArray(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YText(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YXmlElement(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YXmlFragment(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YXmlText(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::UndefinedRef(b) => *b,
        _ => return Vec::new(),
    };
    let mut found: Vec<Out> = yrs::MapRef::from(branch)
        .iter(txn)
        .map(|(_, v)| v)
        .collect();
    match out {
        // A text's characters come as chunks here, not as one value each.
        Out::YText(_) | Out::YXmlText(_) => found.extend(
            TextRef::from(branch)
                .diff(txn, yrs::types::text::YChange::identity)
                .into_iter()
                .map(|d| d.insert),
        ),
        _ => found.extend(yrs::ArrayRef::from(branch).iter(txn)),
    }
    found.retain(|c| !matches!(c, Out::Any(_)));
    found
}

/// The deepest level of a shared type in `doc` (0 when it has none but roots). Walked with
/// a stack of its own, through every keyed entry and sequence item of every type.
pub(super) fn deepest_type(doc: &Doc) -> u32 {
    let txn = doc.transact();
    let mut stack: Vec<(Out, u32)> = txn.root_refs().map(|(_, out)| (out, 0)).collect();
    let mut deepest = 0;
    while let Some((out, level)) = stack.pop() {
        deepest = deepest.max(level);
        stack.extend(children(&txn, &out).into_iter().map(|c| (c, level + 1)));
    }
    deepest
}

/// The deepest level of a type the update's `blocks` create (`None` when they create
/// none), a parent or origin the document holds taken at `outside()`.
fn deepest_new_type(blocks: &Blocks, mut outside: impl FnMut() -> u32) -> Option<u32> {
    let mut memo: HashMap<At, u32> = HashMap::new();
    let mut deepest = None;
    for (client, list) in &blocks.clients {
        let known = blocks.known.get(client).copied().unwrap_or(0);
        for (i, block) in list.iter().enumerate() {
            if block.is_type && block.clock >= known {
                let level =
                    parent_level(blocks, &mut memo, (*client, i), &mut outside).saturating_add(1);
                deepest = deepest.max(Some(level));
            }
        }
    }
    deepest
}

/// What a block's parent level is computed from.
enum Dep {
    /// Level 0 (a root, or nothing).
    Zero,
    /// A block of the update: its parent level, plus this.
    Block(At, u32),
    /// Something the document already holds: at most its deepest type.
    Outside,
    /// A garbage-collected or skipped neighbour: Yrs takes the other one.
    Gone,
}

/// The level of the parent of block `start`, with a stack of its own; every block on the
/// way is remembered in `memo`. Of two neighbours the deeper counts (Yrs takes one of
/// them). Dependencies that go round in a circle count as too deep.
fn parent_level(
    blocks: &Blocks,
    memo: &mut HashMap<At, u32>,
    start: At,
    outside: &mut impl FnMut() -> u32,
) -> u32 {
    let mut open: HashSet<At> = HashSet::new();
    let mut stack = vec![start];
    while let Some(&at) = stack.last() {
        if memo.contains_key(&at) {
            stack.pop();
            continue;
        }
        let deps = deps(blocks, at);
        let pending: Vec<At> = deps
            .iter()
            .filter_map(|d| match d {
                Dep::Block(b, _) if !memo.contains_key(b) => Some(*b),
                _ => None,
            })
            .collect();
        if !pending.is_empty() {
            if !open.insert(at) {
                return MAX_TYPE_DEPTH + 1;
            }
            stack.extend(pending);
            continue;
        }
        let levels: Vec<u32> = deps
            .iter()
            .filter_map(|d| match d {
                Dep::Zero => Some(0),
                Dep::Block(b, add) => Some(memo[b].saturating_add(*add)),
                Dep::Outside => Some(outside()),
                Dep::Gone => None,
            })
            .collect();
        // Neither neighbour is there (Yrs garbage-collects the item): the deepest counts.
        let level = levels.into_iter().max().unwrap_or_else(&mut *outside);
        memo.insert(at, level);
        open.remove(&at);
        stack.pop();
    }
    memo[&start]
}

/// What block `at`'s parent level depends on.
fn deps(blocks: &Blocks, at: At) -> Vec<Dep> {
    let resolve = |id: Id, add: u32| match find(blocks, id) {
        Some(b) if blocks.clients[&b.0][b.1].is_item() => Dep::Block(b, add),
        Some(_) => Dep::Gone,
        None => Dep::Outside,
    };
    match blocks.clients[&at.0][at.1].parent {
        Parent::Root | Parent::Nothing => vec![Dep::Zero],
        Parent::Type(id) => vec![resolve(id, 1)],
        Parent::Siblings(left, right) => [left, right]
            .into_iter()
            .flatten()
            .map(|id| resolve(id, 0))
            .collect(),
    }
}

/// The block of the update holding `id`; `None` when the document holds it already, or
/// the update does not.
fn find(blocks: &Blocks, (client, clock): Id) -> Option<At> {
    if clock < blocks.known.get(&client).copied().unwrap_or(0) {
        return None;
    }
    let list = blocks.clients.get(&client)?;
    let i = list.partition_point(|b| b.clock.saturating_add(b.len) <= clock);
    list.get(i)
        .filter(|b| b.clock <= clock)
        .map(|_| (client, i))
}

/// The update's blocks, nothing known of the document yet (`None` when they do not read,
/// a client has two sections, or a clock passes `u32::MAX`).
fn parse(update: &[u8]) -> Option<Blocks> {
    let r = &mut Cursor::new(update);
    let sections: u32 = r.read_var().ok()?;
    let mut clients: HashMap<u64, Vec<Block>> = HashMap::new();
    for _ in 0..sections {
        let count: u32 = r.read_var().ok()?;
        let client = client_id(r.read_var().ok()?);
        let mut clock: u32 = r.read_var().ok()?;
        if clients.contains_key(&client) {
            return None;
        }
        let mut list = Vec::new();
        for _ in 0..count {
            let block = read_block(r, clock)?;
            clock = clock.checked_add(block.len)?;
            list.push(block);
        }
        clients.insert(client, list);
    }
    Some(Blocks {
        clients,
        known: HashMap::new(),
    })
}

/// A client id as Yrs keeps it: its low 53 bits (as JavaScript numbers hold them).
fn client_id(raw: u64) -> u64 {
    raw & ((1 << 53) - 1)
}

fn read_id(r: &mut Cursor<'_>) -> Option<Id> {
    let client = client_id(r.read_var().ok()?);
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
    let parent = match (origin, right_origin) {
        (None, None) => {
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
        (left, right) => Parent::Siblings(left, right),
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

    fn block(clock: u32, parent: Parent, is_type: bool) -> Block {
        Block {
            clock,
            len: 1,
            parent,
            is_type,
        }
    }

    fn blocks(clients: Vec<(u64, Vec<Block>)>, known: Vec<(u64, u32)>) -> Blocks {
        Blocks {
            clients: clients.into_iter().collect(),
            known: known.into_iter().collect(),
        }
    }

    /// A block the document already holds, resent naming a shallow parent, counts as what
    /// the document holds (Yrs drops the resent copy and keeps the real one).
    #[test]
    fn a_resent_block_counts_as_the_documents() {
        let b = blocks(
            vec![
                (7, vec![block(5, Parent::Root, true)]),
                (8, vec![block(0, Parent::Type((7, 5)), true)]),
            ],
            vec![(7, 6)],
        );
        assert_eq!(
            deepest_new_type(&b, || MAX_TYPE_DEPTH),
            Some(MAX_TYPE_DEPTH + 1)
        );
    }

    /// A type whose origin is garbage-collected takes its right origin's parent, as Yrs
    /// does: a chain built that way counts every level.
    #[test]
    fn a_garbage_collected_origin_leaves_the_right_origin() {
        let gc = Block {
            clock: 0,
            len: 1,
            parent: Parent::Nothing,
            is_type: false,
        };
        // Client 8: a type in a root, then per level a value inside the last type and a
        // type beside that value (origin: the collected block; right origin: the value).
        let mut list = vec![block(0, Parent::Root, true)];
        for _ in 0..=MAX_TYPE_DEPTH {
            let last_type = list.len() as u32 - 1;
            let value = list.len() as u32;
            list.push(block(value, Parent::Type((8, last_type)), false));
            list.push(block(
                value + 1,
                Parent::Siblings(Some((9, 0)), Some((8, value))),
                true,
            ));
        }
        let b = blocks(vec![(9, vec![gc]), (8, list)], vec![]);
        assert_eq!(deepest_new_type(&b, || 0), Some(MAX_TYPE_DEPTH + 2));
    }

    #[test]
    fn origins_in_a_circle_count_as_too_deep() {
        let b = blocks(
            vec![(
                8,
                vec![
                    block(0, Parent::Siblings(Some((8, 1)), None), true),
                    block(1, Parent::Siblings(Some((8, 0)), None), true),
                ],
            )],
            vec![],
        );
        assert!(deepest_new_type(&b, || 0).unwrap() > MAX_TYPE_DEPTH);
    }

    /// Updates the walk cannot read as Yrs does are refused: a clock past u32::MAX (Yrs
    /// wraps it), and a client with two sections.
    #[test]
    fn unreadable_layouts_are_refused() {
        let mut past_max = vec![1, 1, 5];
        let mut clock = u32::MAX as u64;
        while clock >= 0x80 {
            past_max.push((clock as u8 & 0x7f) | 0x80);
            clock >>= 7;
        }
        past_max.push(clock as u8);
        past_max.extend([BLOCK_SKIP, 1, 0]);
        assert!(check_type_depth(&Doc::new(), &past_max).is_err());
        // Two sections of client 5, a collected block each; then an empty delete set.
        let twice = [2, 1, 5, 0, BLOCK_GC, 1, 1, 5, 1, BLOCK_GC, 1, 0];
        assert!(check_type_depth(&Doc::new(), &twice).is_err());
        let once = [1, 1, 5, 0, BLOCK_GC, 1, 0];
        assert!(check_type_depth(&Doc::new(), &once).is_ok());
    }
}

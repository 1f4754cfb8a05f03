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
//! within it; one the document already holds resolves to its own level there ([`InDoc`]:
//! a walk of the document's types, or of every item in its encoded state, made only for
//! an update that makes a type under something outside itself). A batch of updates is walked as one (a
//! client's blocks joined in clock order). The check keeps every type a document accepts
//! within [`MAX_TYPE_DEPTH`], so every subtree Yrs deletes is at most that deep; a deep
//! branch does not hold back a type made elsewhere. What the walk cannot read is left to
//! Yrs, which refuses it.

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
    /// None (a garbage-collected range).
    Nothing,
    /// None: a range the update skips (it does not hold it).
    Gap,
}

struct Block {
    clock: u32,
    len: u32,
    parent: Parent,
    is_type: bool,
}

impl Block {
    fn is_item(&self) -> bool {
        !matches!(self.parent, Parent::Nothing | Parent::Gap)
    }
}

/// An update's blocks, per client in clock order.
#[derive(Default)]
struct Blocks {
    clients: HashMap<u64, Vec<Block>>,
    /// Per client, the clock below which the document already holds every item: Yrs drops
    /// a block there (a resent one may name another parent: it does not count).
    known: HashMap<u64, u32>,
}

impl Blocks {
    /// Adds a later update's blocks (per client, [`Blocks::settle`] puts them in order).
    fn join(&mut self, later: Blocks) {
        for (client, list) in later.clients {
            self.clients.entry(client).or_default().extend(list);
        }
    }

    /// Puts each client's blocks in clock order, each clock once (what two updates both
    /// hold counts once, as Yrs integrates it once, from whichever came first), and
    /// refuses a hole past what the document holds: Yrs integrates the blocks after it
    /// without holding them back, past its state vector, so a later update could resend
    /// them naming another parent and have the walk believe it.
    fn settle(&mut self) -> Result<()> {
        for (client, list) in &mut self.clients {
            list.sort_by_key(|b| b.clock); // stable: the earlier update's copy first
            let known = self.known.get(client).copied().unwrap_or(0);
            let mut end = 0;
            let mut settled: Vec<Block> = Vec::with_capacity(list.len());
            for mut b in list.drain(..) {
                if held_end(&b) <= end {
                    continue;
                }
                if b.clock < end {
                    // The part past what is held: its parent is the same.
                    b.len = held_end(&b) - end;
                    b.clock = end;
                }
                let past_known = held_end(&b) > known;
                if past_known && (b.clock > end.max(known) || matches!(b.parent, Parent::Gap)) {
                    return Err(Error::MissingDependencies {
                        kind: DocKind::Yrs,
                        detail: format!(
                            "it skips clocks of client {client} this document does not have"
                        ),
                    });
                }
                end = held_end(&b);
                settled.push(b);
            }
            *list = settled;
        }
        Ok(())
    }
}

fn held_end(b: &Block) -> u32 {
    b.clock.saturating_add(b.len)
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

/// [`check_type_depth`] for `updates` applied to `doc` one after the other (in one
/// transaction: a block may refer to one of a later update). An update the walk cannot
/// read is refused (Yrs refuses it too, or would read it otherwise than the walk).
pub(super) fn check_type_depths(doc: &Doc, updates: &[&[u8]]) -> Result<()> {
    let mut batch = Blocks::default();
    for update in updates {
        let blocks = parse(update)
            .ok_or_else(|| refused("its blocks do not read as one section per client"))?;
        batch.join(blocks);
    }
    if !batch.clients.values().flatten().any(|b| b.is_type) {
        return Ok(());
    }
    // What the document holds: its state vector (one entry per client it knows), and the
    // levels of its items when the batch refers to them.
    batch.known = {
        let txn = doc.transact();
        let clocks = txn.state_vector();
        clocks.iter().map(|(c, k)| (c.get(), *k)).collect()
    };
    batch.settle()?;
    let mut in_doc = InDoc {
        doc,
        types: None,
        items: None,
    };
    match deepest_new_type(&batch, |id| in_doc.level(id)) {
        Some(level) if level > MAX_TYPE_DEPTH => Err(refused(&format!(
            "it nests shared types deeper than {MAX_TYPE_DEPTH} levels"
        ))),
        _ => Ok(()),
    }
}

/// The parent level of each item a document holds, by id.
struct DocLevels {
    /// Per client, (first clock, end clock, parent level) of its blocks in clock order;
    /// `None` for a garbage-collected range.
    ranges: HashMap<u64, Vec<(u32, u32, Option<u32>)>>,
    /// The deepest level of a type in the document (for a reference that resolves to
    /// nothing there).
    deepest: u32,
}

impl DocLevels {
    /// Walks `doc`'s encoded state as one update (every reference in it resolves inside
    /// it). A state the walk cannot read (it was not checked when stored) falls back to
    /// the deepest type for every item.
    fn of(doc: &Doc) -> DocLevels {
        let state = doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        let Some(blocks) = parse(&state) else {
            return DocLevels {
                ranges: HashMap::new(),
                deepest: deepest_type(doc),
            };
        };
        let mut memo = HashMap::new();
        let mut outside = |_: Option<Id>| Some(0);
        let mut levels = DocLevels {
            ranges: HashMap::new(),
            deepest: 0,
        };
        for (client, list) in &blocks.clients {
            let mut ranges = Vec::with_capacity(list.len());
            for (i, block) in list.iter().enumerate() {
                let level = block
                    .is_item()
                    .then(|| parent_level(&blocks, &mut memo, (*client, i), &mut outside));
                if let (true, Some(level)) = (block.is_type, level) {
                    levels.deepest = levels.deepest.max(level.saturating_add(1));
                }
                ranges.push((block.clock, block.clock.saturating_add(block.len), level));
            }
            levels.ranges.insert(*client, ranges);
        }
        levels
    }

    /// The parent level of the item holding `id`; `None` when it is garbage-collected;
    /// the deepest level when the document does not hold it.
    fn get(&self, (client, clock): Id) -> Option<u32> {
        let Some(list) = self.ranges.get(&client) else {
            return Some(self.deepest);
        };
        let i = list.partition_point(|r| r.1 <= clock);
        match list.get(i) {
            Some(&(start, _, level)) if start <= clock => level,
            _ => Some(self.deepest),
        }
    }
}

/// The shared types one level below `out`: its keyed entries (map entries, XML
/// attributes) and its sequence items (array items, XML children, a text's embeds).
fn children(txn: &yrs::Transaction<'_>, out: &Out) -> Vec<Out> {
    let Some(branch) = branch_of(out) else {
        return Vec::new();
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

fn branch_of(out: &Out) -> Option<BranchPtr> {
    Some(match out {
        Out::YMap(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YArray(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YText(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YXmlElement(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YXmlFragment(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::YXmlText(v) => BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(v)),
        Out::UndefinedRef(b) => *b,
        _ => return None,
    })
}

/// The level of every shared type `doc` shows (by its item's id; roots have none), and
/// the deepest (0 when it has none but roots). Walked with a stack of its own, through
/// every keyed entry and sequence item of every type: deleted types, and values a map
/// key held before, are not shown.
fn type_levels(doc: &Doc) -> (HashMap<Id, u32>, u32) {
    let txn = doc.transact();
    let mut stack: Vec<(Out, u32)> = txn.root_refs().map(|(_, out)| (out, 0)).collect();
    let (mut levels, mut deepest) = (HashMap::new(), 0);
    while let Some((out, level)) = stack.pop() {
        deepest = deepest.max(level);
        if let Some(yrs::BranchID::Nested(id)) = branch_of(&out).map(|b| b.id()) {
            levels.insert((client_id(id.client.get()), id.clock), level);
        }
        stack.extend(children(&txn, &out).into_iter().map(|c| (c, level + 1)));
    }
    (levels, deepest)
}

/// The deepest level of a shared type in `doc` (0 when it has none but roots).
pub(super) fn deepest_type(doc: &Doc) -> u32 {
    type_levels(doc).1
}

/// Resolves the items of a document a checked update refers to: first by the levels of
/// the types it shows (a walk of its types), then, for an item that is not one of them
/// (a value beside which a type is put, a deleted type), by [`DocLevels`] (a walk of
/// every item of its encoded state, some ten times the cost).
struct InDoc<'a> {
    doc: &'a Doc,
    types: Option<(HashMap<Id, u32>, u32)>,
    items: Option<DocLevels>,
}

impl InDoc<'_> {
    /// The parent level of the item `id` (`None`: garbage-collected); with no id, the
    /// document's deepest level.
    fn level(&mut self, id: Option<Id>) -> Option<u32> {
        let (types, deepest) = self.types.get_or_insert_with(|| type_levels(self.doc));
        let Some(id) = id else {
            return Some(*deepest);
        };
        if let Some(level) = types.get(&id) {
            return Some(level.saturating_sub(1));
        }
        self.items
            .get_or_insert_with(|| DocLevels::of(self.doc))
            .get(id)
    }
}

/// The deepest level of a type the update's `blocks` create (`None` when they create
/// none). `outside(Some(id))` is the parent level of an item the document holds (`None`
/// when it is garbage-collected there), `outside(None)` the level to take when a block's
/// parent cannot be told (the document's deepest).
fn deepest_new_type(
    blocks: &Blocks,
    mut outside: impl FnMut(Option<Id>) -> Option<u32>,
) -> Option<u32> {
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
    /// An item the document already holds: its parent level there, plus this.
    Outside(Id, u32),
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
    outside: &mut impl FnMut(Option<Id>) -> Option<u32>,
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
                Dep::Outside(id, add) => outside(Some(*id)).map(|l| l.saturating_add(*add)),
                Dep::Gone => None,
            })
            .collect();
        // Neither neighbour is there (Yrs garbage-collects the item): the deepest counts.
        let level = levels
            .into_iter()
            .max()
            .unwrap_or_else(|| outside(None).unwrap_or(MAX_TYPE_DEPTH + 1));
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
        None => Dep::Outside(id, add),
    };
    match blocks.clients[&at.0][at.1].parent {
        Parent::Root | Parent::Nothing | Parent::Gap => vec![Dep::Zero],
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
            parent: if info == BLOCK_SKIP {
                Parent::Gap
            } else {
                Parent::Nothing
            },
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
            assert_eq!(deepest_new_type(&blocks, |_| Some(0)), Some(depth));
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

    fn apply(doc: &Doc, update: &[u8]) {
        use yrs::updates::decoder::Decode;
        let update = yrs::Update::decode_v1(update).unwrap();
        doc.transact_mut().apply_update(update).unwrap();
    }

    /// An update of `doc` (made there) putting an empty map at `key` of the map at `path`
    /// below the root map "root".
    fn map_at(doc: &Doc, path: &[&str], key: &str) -> Vec<u8> {
        let mut txn = doc.transact_mut();
        let mut map = txn.get_or_insert_map("root");
        for k in path {
            map = match map.get(&txn, k) {
                Some(Out::YMap(m)) => m,
                _ => panic!("no map at {k}"),
            };
        }
        map.insert(&mut txn, key, MapPrelim::default());
        txn.encode_update_v1()
    }

    /// A branch at the bound does not hold back a type made elsewhere in the document (its
    /// parent is taken at its own level), while one more level under the branch is refused.
    #[test]
    fn a_deep_branch_holds_back_only_types_below_it() {
        let writer = Doc::with_client_id(1);
        let relay = Doc::new();
        for update in [
            map_at(&writer, &[], "shallow"),
            chain(&writer, MAX_TYPE_DEPTH),
        ] {
            check_type_depth(&relay, &update).unwrap();
            apply(&relay, &update);
            apply(&writer, &update);
        }
        assert_eq!(deepest_type(&relay), MAX_TYPE_DEPTH);
        let levels = DocLevels::of(&relay);
        assert_eq!(levels.deepest, MAX_TYPE_DEPTH);
        // Another device, which holds the document, adds a map in the shallow one.
        let other = Doc::with_client_id(2);
        apply(
            &other,
            &relay
                .transact()
                .encode_state_as_update_v1(&Default::default()),
        );
        let beside = map_at(&other, &["shallow"], "child");
        check_type_depth(&relay, &beside).unwrap();
        apply(&relay, &beside);
        // A map put beside a value (its origin, not a type: found by the walk of items).
        let push = |value: yrs::In| {
            let mut txn = other.transact_mut();
            let list = txn.get_or_insert_array("list");
            list.push_back(&mut txn, value);
            txn.encode_update_v1()
        };
        let value = push(yrs::In::Any(1.into()));
        check_type_depth(&relay, &value).unwrap();
        apply(&relay, &value);
        let map = push(yrs::In::Map(MapPrelim::default()));
        check_type_depth(&relay, &map).unwrap();
        apply(&relay, &map);
        let mut in_doc = InDoc {
            doc: &relay,
            types: None,
            items: None,
        };
        let (client, clock) = (other.client_id().get(), 1); // after "child"
        assert_eq!(in_doc.level(Some((client_id(client), clock))), Some(0));
        assert!(
            in_doc.items.is_some(),
            "a value is found by the walk of items"
        );
        let deepest: Vec<&str> = std::iter::repeat_n("a", MAX_TYPE_DEPTH as usize).collect();
        let below = map_at(&other, &deepest, "one-more");
        let err = check_type_depth(&relay, &below).unwrap_err();
        assert!(err.to_string().contains("deeper than 128"), "{err}");
    }

    /// In a batch, a block may refer to one of an earlier update: levels add up across the
    /// updates, exactly.
    #[test]
    fn a_batch_counts_levels_across_its_updates() {
        let writer = Doc::with_client_id(3);
        let half = MAX_TYPE_DEPTH / 2;
        let first = chain(&writer, half);
        let mut updates = vec![first];
        let mut path: Vec<&str> = std::iter::repeat_n("a", half as usize).collect();
        for _ in 0..half {
            updates.push(map_at(&writer, &path, "a"));
            path.push("a");
        }
        let all: Vec<&[u8]> = updates.iter().map(|u| u.as_slice()).collect();
        check_type_depths(&Doc::new(), &all).unwrap(); // 2 * half = the bound
        updates.push(map_at(&writer, &path, "a"));
        let all: Vec<&[u8]> = updates.iter().map(|u| u.as_slice()).collect();
        assert!(check_type_depths(&Doc::new(), &all).is_err());
        // Resent updates in the batch add nothing.
        let twice: Vec<&[u8]> = all[..2].iter().chain(&all[..2]).copied().collect();
        check_type_depths(&Doc::new(), &twice).unwrap();
        // A branch at the bound, from another writer in the same batch, does not hold back
        // a map made in a shallow one.
        let (a, b) = (Doc::with_client_id(4), Doc::with_client_id(5));
        let shallow = map_at(&a, &[], "shallow");
        let deep = chain(&b, MAX_TYPE_DEPTH);
        let child = map_at(&a, &["shallow"], "child");
        check_type_depths(&Doc::new(), &[&shallow, &deep, &child]).unwrap();
    }

    /// Yrs integrates blocks past a hole in a client's clocks without holding them back
    /// (and without moving its state vector): such an update is refused; in a batch, a
    /// later update that fills the hole comes first in clock order.
    #[test]
    fn a_hole_in_a_clients_clocks_is_refused_unless_the_batch_fills_it() {
        let src = Doc::with_client_id(7);
        let head = map_at(&src, &[], "x");
        let tail = map_at(&src, &[], "y");
        let err = check_type_depth(&Doc::new(), &tail).unwrap_err();
        assert!(matches!(err, Error::MissingDependencies { .. }), "{err}");
        check_type_depths(&Doc::new(), &[&tail, &head]).unwrap();
        let target = Doc::new();
        apply(&target, &head);
        check_type_depth(&target, &tail).unwrap();
        // An explicit skipped range past what the document holds: client 7, a skipped
        // clock, then the map "y" at clock 1 (as `tail` encodes it).
        let mut skipping = vec![1, 2, 7, 0, BLOCK_SKIP, 1];
        let from_tail = &tail[4..]; // after: 1 section, 1 block, client 7, clock 1
        assert_eq!(&tail[..4], &[1, 1, 7, 1]);
        skipping.extend_from_slice(from_tail);
        let err = check_type_depth(&Doc::new(), &skipping).unwrap_err();
        assert!(matches!(err, Error::MissingDependencies { .. }), "{err}");
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
        assert_eq!(
            deepest_new_type(&blocks, |_| Some(0)),
            Some(MAX_TYPE_DEPTH + 5)
        );
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
            // The document holds (7, 5) at level MAX_TYPE_DEPTH (its parent one above).
            deepest_new_type(&b, |_| Some(MAX_TYPE_DEPTH - 1)),
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
        assert_eq!(deepest_new_type(&b, |_| Some(0)), Some(MAX_TYPE_DEPTH + 2));
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
        assert!(deepest_new_type(&b, |_| Some(0)).unwrap() > MAX_TYPE_DEPTH);
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

//! A bound on how deeply the values inside a Yrs v1 update nest, checked before Yrs decodes
//! it. Yrs decodes a nested value (`Any`: arrays and maps inside arrays and maps) by
//! recursion without a limit, so one update of a few hundred KiB that nests an array in an
//! array a hundred thousand times overflows the decoding thread's stack, and a stack
//! overflow aborts the whole process (a relay, with every connection on it). The walk here
//! follows the update's layout as yrs 0.28's `Update::decode` reads it (blocks per client,
//! each block's header and content), skips over everything but nested values, and counts
//! their depth with a loop of its own. It refuses only what it has read as nesting beyond
//! [`MAX_VALUE_DEPTH`]; anything else it cannot follow is left to Yrs, which refuses it.

use yrs::encoding::read::{Cursor, Read};

use crate::error::{Error, Result};
use crate::ids::DocKind;

/// The deepest nesting of arrays and maps a value in an update may have. JSON as the
/// `serde_json` crate reads it (and Yrs reads embeds and formats as JSON text) stops at 128.
pub const MAX_VALUE_DEPTH: usize = 128;

// The layout's constants, as yrs 0.28 names them (`block.rs`, `types/mod.rs`); the
// nesting walk (`yrs_nesting.rs`) reads the same layout.
pub(super) const BLOCK_GC: u8 = 0;
pub(super) const BLOCK_SKIP: u8 = 10;
pub(super) const HAS_ORIGIN: u8 = 0b1000_0000;
pub(super) const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
pub(super) const HAS_PARENT_SUB: u8 = 0b0010_0000;
pub(super) const CONTENT_DELETED: u8 = 1;
pub(super) const CONTENT_JSON: u8 = 2;
pub(super) const CONTENT_BINARY: u8 = 3;
pub(super) const CONTENT_STRING: u8 = 4;
pub(super) const CONTENT_EMBED: u8 = 5;
pub(super) const CONTENT_FORMAT: u8 = 6;
pub(super) const CONTENT_TYPE: u8 = 7;
pub(super) const CONTENT_ANY: u8 = 8;
pub(super) const CONTENT_DOC: u8 = 9;
pub(super) const TYPE_XML_ELEMENT: u8 = 3;

/// An error when a value in the v1 `update` nests deeper than [`MAX_VALUE_DEPTH`], or when
/// it holds JSON content (see [`Walked::Json`]).
pub(crate) fn check_value_depth(update: &[u8]) -> Result<()> {
    let refused = |reason: String| {
        Err(Error::InvalidUpdate {
            kind: DocKind::Yrs,
            reason,
        })
    };
    match walk_update(&mut Cursor::new(update)) {
        Walked::TooDeep => refused(format!(
            "a value nests deeper than {MAX_VALUE_DEPTH} levels"
        )),
        Walked::Json => refused(
            "it holds JSON content (Yjs's deprecated ContentJSON), which this Yrs version \
             does not read back as it writes it"
                .into(),
        ),
        Walked::Fine | Walked::Unreadable => Ok(()),
    }
}

/// True when the walk reads all of `saved` (a saved state about to be stored as a
/// checkpoint) and finds nothing to refuse: loading exactly these bytes needs no walk.
pub(crate) fn walks_clean(saved: &[u8]) -> bool {
    walk_update(&mut Cursor::new(saved)) == Walked::Fine
}

/// What walking (part of) an update found.
#[derive(Debug, PartialEq, Eq)]
enum Walked {
    Fine,
    TooDeep,
    /// JSON content (Yjs's deprecated ContentJSON, which no current Yjs writes): yrs 0.28
    /// decodes one string more than its count says and encodes the count of what it
    /// decoded, so a saved state holding it reads out of step when loaded, from that item
    /// on, as whatever the peer put after it (up to values nested past the bound, which
    /// the walk of the update itself never saw as values).
    Json,
    /// Not the layout expected (Yrs refuses it when it decodes it).
    Unreadable,
}

impl From<yrs::encoding::read::Error> for Walked {
    fn from(_: yrs::encoding::read::Error) -> Self {
        Walked::Unreadable
    }
}

/// `?` for the walk: stops at anything but [`Walked::Fine`].
macro_rules! walk {
    ($e:expr) => {
        match $e {
            Walked::Fine => {}
            other => return other,
        }
    };
}

/// `?` for a read: stops the walk as [`Walked::Unreadable`] when the bytes run out.
macro_rules! read {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(e) => return Walked::from(e),
        }
    };
}

fn walk_update(r: &mut Cursor<'_>) -> Walked {
    let clients: u32 = read!(r.read_var());
    for _ in 0..clients {
        let blocks: u32 = read!(r.read_var());
        let _client: u64 = read!(r.read_var());
        let _clock: u32 = read!(r.read_var());
        for _ in 0..blocks {
            walk!(walk_block(r));
        }
    }
    // The delete set holds no values.
    Walked::Fine
}

fn walk_block(r: &mut Cursor<'_>) -> Walked {
    let info = read!(r.read_u8());
    match info {
        BLOCK_GC => {
            let _len: u32 = read!(r.read_var());
            return Walked::Fine;
        }
        BLOCK_SKIP => {
            let _len: u32 = read!(r.read_var());
            return Walked::Fine;
        }
        _ => {}
    }
    let has_origin = info & HAS_ORIGIN != 0;
    let has_right_origin = info & HAS_RIGHT_ORIGIN != 0;
    for present in [has_origin, has_right_origin] {
        if present {
            let _client: u64 = read!(r.read_var());
            let _clock: u32 = read!(r.read_var());
        }
    }
    if !has_origin && !has_right_origin {
        let named: u32 = read!(r.read_var());
        if named == 1 {
            read!(r.read_string());
        } else {
            let _client: u64 = read!(r.read_var());
            let _clock: u32 = read!(r.read_var());
        }
        if info & HAS_PARENT_SUB != 0 {
            read!(r.read_string());
        }
    }
    walk_content(r, info & 0b1111)
}

fn walk_content(r: &mut Cursor<'_>, content: u8) -> Walked {
    match content {
        CONTENT_DELETED => {
            let _len: u32 = read!(r.read_var());
        }
        CONTENT_JSON => return Walked::Json,
        CONTENT_BINARY => {
            read!(r.read_buf());
        }
        // Embeds and formats are JSON text, which Yrs parses with a depth limit.
        CONTENT_STRING | CONTENT_EMBED => {
            read!(r.read_string());
        }
        CONTENT_FORMAT => {
            read!(r.read_string());
            read!(r.read_string());
        }
        CONTENT_TYPE => {
            if read!(r.read_u8()) == TYPE_XML_ELEMENT {
                read!(r.read_string());
            }
        }
        CONTENT_ANY => {
            let len: u32 = read!(r.read_var());
            for _ in 0..len {
                walk!(walk_value(r));
            }
        }
        CONTENT_DOC => {
            read!(r.read_string());
            walk!(walk_value(r));
        }
        _ => return Walked::Unreadable,
    }
    Walked::Fine
}

/// Skips one value (`Any`, lib0's encoding): false when the bytes are not one, or nest
/// deeper than [`MAX_VALUE_DEPTH`].
pub(super) fn skip_value(r: &mut Cursor<'_>) -> bool {
    walk_value(r) == Walked::Fine
}

/// Walks one value (`Any`, lib0's encoding), counting its depth with an explicit stack of
/// the entries each open array or map still has.
fn walk_value(r: &mut Cursor<'_>) -> Walked {
    // Per open container: its entries still to read, and whether it is a map (whose
    // entries begin with a key).
    let mut open: Vec<(u64, bool)> = Vec::new();
    let mut first = true;
    loop {
        if !first {
            // The next value: the next entry of the innermost container with entries left.
            loop {
                match open.last_mut() {
                    None => return Walked::Fine,
                    Some((0, _)) => {
                        open.pop();
                    }
                    Some((left, is_map)) => {
                        *left -= 1;
                        if *is_map {
                            read!(r.read_string());
                        }
                        break;
                    }
                }
            }
        }
        first = false;
        match read!(r.read_u8()) {
            // undefined, null, false, true
            127 | 126 | 121 | 120 => {}
            125 => {
                let _int: i64 = read!(r.read_var());
            }
            124 => {
                read!(r.read_exact(4));
            }
            123 | 122 => {
                read!(r.read_exact(8));
            }
            119 => {
                read!(r.read_string());
            }
            116 => {
                read!(r.read_buf());
            }
            tag @ (118 | 117) => {
                let len: u64 = read!(r.read_var());
                if open.len() >= MAX_VALUE_DEPTH {
                    return Walked::TooDeep;
                }
                open.push((len, tag == 118));
            }
            _ => return Walked::Unreadable,
        }
        if open.is_empty() {
            return Walked::Fine;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::types::ToJson;
    use yrs::updates::decoder::Decode;
    use yrs::{Any, Array, Doc, Map, ReadTxn, StateVector, Text, Transact, Update, XmlFragment};

    /// An update whose one item is a value nested `depth` levels (arrays, or maps).
    fn nested(depth: usize, maps: bool) -> Vec<u8> {
        // One client, one block, client 1 clock 0; an item named-parent "t", content Any
        // with one value.
        let mut bytes = vec![1, 1, 1, 0, CONTENT_ANY, 1, 1, b't', 1];
        for _ in 0..depth {
            if maps {
                bytes.extend([118, 1, 1, b'k']);
            } else {
                bytes.extend([117, 1]);
            }
        }
        bytes.push(126);
        bytes.extend([0]); // an empty delete set
        bytes
    }

    #[test]
    fn values_up_to_the_limit_pass_and_deeper_ones_are_refused_before_yrs_decodes_them() {
        for maps in [false, true] {
            let fine = nested(MAX_VALUE_DEPTH, maps);
            check_value_depth(&fine).unwrap();
            Update::decode_v1(&fine).expect("the fixture is a real update");
            let deep = nested(MAX_VALUE_DEPTH + 1, maps);
            assert!(check_value_depth(&deep).is_err(), "maps: {maps}");
            // Deep enough to overflow a thread's stack inside Yrs: refused all the same,
            // without recursion.
            assert!(check_value_depth(&nested(1_000_000, maps)).is_err());
        }
    }

    #[test]
    fn real_updates_of_every_content_kind_pass() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("text");
        let array = doc.get_or_insert_array("array");
        let map = doc.get_or_insert_map("map");
        let frag = doc.get_or_insert_xml_fragment("xml");
        {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "héllo 👋");
            text.insert_embed(&mut txn, 1, Any::from(vec![Any::from(1.5), Any::Null]));
            text.format(
                &mut txn,
                0,
                2,
                [("bold".into(), Any::Bool(true))].into_iter().collect(),
            );
            array.insert(
                &mut txn,
                0,
                Any::from(vec![Any::from("a"), Any::from(2i64)]),
            );
            array.push_back(&mut txn, Any::Buffer(vec![1, 2, 3].into()));
            let nested: std::collections::HashMap<String, Any> = [(
                "deep".to_string(),
                Any::from(vec![Any::from(vec![Any::from(7i64)])]),
            )]
            .into_iter()
            .collect();
            map.insert(&mut txn, "obj", Any::from(nested));
            map.insert(&mut txn, "n", 3.25f32 as f64);
            map.insert(&mut txn, "sub", yrs::MapPrelim::default());
            map.insert(&mut txn, "doc", Doc::new());
            frag.push_back(&mut txn, yrs::XmlElementPrelim::empty("p"));
            text.remove_range(&mut txn, 2, 2);
            map.remove(&mut txn, "n");
        }
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(walk_update(&mut Cursor::new(&update)), Walked::Fine);
        let copy = Doc::new();
        copy.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        let copy_map = copy.get_or_insert_map("map");
        assert_eq!(
            copy_map.to_json(&copy.transact()),
            map.to_json(&doc.transact())
        );
    }

    #[test]
    fn json_content_is_refused_for_yrs_does_not_read_back_what_it_writes() {
        // Count 0 and one string: yrs 0.28 reads one more string than the count says.
        let update = [
            1,
            1,
            1,
            0,
            CONTENT_JSON,
            1,
            1,
            b't',
            0,
            3,
            b'"',
            b'x',
            b'"',
            0,
        ];
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&update).expect("yrs decodes it"))
            .expect("and integrates it");
        // Saved, the item's count is the number of strings read (1): read back, yrs takes
        // a string more than were written, and everything after it out of step.
        let saved = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let read_back = Update::decode_v1(&saved).map(|u| u.to_string());
        let direct = Update::decode_v1(&update).map(|u| u.to_string());
        assert_ne!(read_back.ok(), direct.ok(), "the round trip changes it");
        assert!(check_value_depth(&update).is_err());
        assert!(!walks_clean(&update));
        assert!(!walks_clean(&saved));
    }

    #[test]
    fn a_saved_state_walks_clean_only_if_read_whole_with_nothing_to_refuse() {
        assert!(walks_clean(&nested(MAX_VALUE_DEPTH, false)));
        assert!(!walks_clean(&nested(MAX_VALUE_DEPTH + 1, false)));
        assert!(!walks_clean(&[1, 1, 1, 0, 15]), "unreadable");
    }

    #[test]
    fn what_it_cannot_follow_is_left_to_yrs() {
        assert_eq!(walk_update(&mut Cursor::new(&[])), Walked::Unreadable);
        assert_eq!(
            walk_update(&mut Cursor::new(&[1, 1, 1, 0, 15])),
            Walked::Unreadable
        );
        check_value_depth(&[1, 1, 1, 0, 15]).unwrap();
    }
}

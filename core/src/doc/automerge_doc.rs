//! Automerge documents: edits by path, commits, and decoding of updates.
//!
//! An update is one or more Automerge change chunks, concatenated: a local edit is usually
//! one change, plus one per shared container it created (see `automerge_create.rs`).

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, Change, ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value as AmValue,
    ROOT,
};
use serde_json::Value;

use super::automerge_create::{create_at_key, Shape};
use crate::error::{Error, Result};
use crate::ids::DocKind;
use crate::path::{Path, Segment};
use crate::text_unit::TextUnit;
use automerge::TextEncoding;

fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::InvalidUpdate {
        kind: DocKind::Automerge,
        reason: reason.to_string(),
    }
}

fn edit_error(e: automerge::AutomergeError) -> Error {
    Error::InvalidEdit(e.to_string())
}

/// The magic bytes that open every Automerge chunk.
pub(super) const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk types that hold a change (plain or compressed).
const CHANGE_CHUNK_TYPES: [u8; 2] = [1, 2];
/// The chunk type of a deflate-compressed change.
pub(super) const COMPRESSED_CHANGE: u8 = 2;

/// Splits an update into its change chunks (magic, checksum, type, LEB128 length, body).
fn split_chunks(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    if bytes.is_empty() {
        return Err(invalid("an empty update"));
    }
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 10 || rest[..4] != CHUNK_MAGIC {
            return Err(invalid("not an automerge change chunk"));
        }
        if !CHANGE_CHUNK_TYPES.contains(&rest[8]) {
            return Err(invalid(format!("chunk type {} is not a change", rest[8])));
        }
        let mut len: u64 = 0;
        let mut header = 9;
        let mut shift = 0;
        loop {
            let byte = *rest
                .get(header)
                .ok_or_else(|| invalid("truncated chunk length"))?;
            header += 1;
            if shift > 63 {
                return Err(invalid("chunk length overflows"));
            }
            len |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(header))
            .filter(|t| *t <= rest.len())
            .ok_or_else(|| invalid("truncated change chunk"))?;
        if rest[8] == COMPRESSED_CHANGE {
            super::automerge_inflate::check_inflated(&rest[header..total])?;
        }
        chunks.push(&rest[..total]);
        rest = &rest[total..];
    }
    Ok(chunks)
}

/// Decodes every change of an update.
pub(super) fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>> {
    split_chunks(bytes)?
        .into_iter()
        .map(|chunk| Change::try_from(chunk).map_err(invalid))
        .collect()
}

pub(super) fn apply_changes(doc: &mut AutoCommit, updates: &[&[u8]]) -> Result<()> {
    let mut changes = Vec::new();
    for bytes in updates {
        changes.extend(decode_changes(bytes)?);
    }
    doc.apply_changes(changes).map_err(invalid)
}

/// Automerge's own encoding option for a [`TextUnit`].
pub(super) fn encoding(unit: TextUnit) -> TextEncoding {
    match unit {
        TextUnit::UnicodeScalar => TextEncoding::UnicodeCodePoint,
        TextUnit::Utf16 => TextEncoding::Utf16CodeUnit,
    }
}

/// The [`TextUnit`] a document counts in.
pub(super) fn unit_of(doc: &AutoCommit) -> TextUnit {
    match doc.text_encoding() {
        TextEncoding::Utf16CodeUnit => TextUnit::Utf16,
        _ => TextUnit::UnicodeScalar,
    }
}

/// Loads a full save, failing (rather than skipping) on any chunk that does not decode.
pub(super) fn load(bytes: &[u8], unit: TextUnit) -> Result<AutoCommit> {
    AutoCommit::load_with_options(
        bytes,
        automerge::LoadOptions::new()
            .on_partial_load(automerge::OnPartialLoad::Error)
            .text_encoding(encoding(unit)),
    )
    .map_err(invalid)
}

pub(super) fn merge_saved_state(doc: &mut AutoCommit, bytes: &[u8]) -> Result<()> {
    // Check the whole saved state decodes before merging (load_incremental skips bad chunks).
    automerge::Automerge::load_with_options(
        bytes,
        automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error),
    )
    .map_err(invalid)?;
    doc.load_incremental(bytes).map_err(invalid)?;
    Ok(())
}

/// Commits the open transaction; returns the update made since `heads_before` (every new
/// change, concatenated), if anything changed.
pub(super) fn commit(doc: &mut AutoCommit, heads_before: &[ChangeHash]) -> Option<Vec<u8>> {
    doc.commit();
    let heads = doc.get_heads();
    if heads == heads_before {
        return None;
    }
    // The common case: exactly one local change on top of what was there.
    if let Some(mut last) = doc.get_last_local_change() {
        let mut deps = last.deps().to_vec();
        deps.sort();
        let mut before = heads_before.to_vec();
        before.sort();
        if heads == [last.hash()] && deps == before {
            return Some(last.bytes().into_owned());
        }
    }
    let mut update = Vec::new();
    for mut change in doc.get_changes(heads_before) {
        update.extend_from_slice(&change.bytes());
    }
    Some(update)
}

/// Follows `segments` from the root to an object.
fn walk(doc: &AutoCommit, path: &Path, segments: &[Segment]) -> Result<(ObjId, ObjType)> {
    let mut obj = ROOT;
    let mut ty = ObjType::Map;
    for seg in segments {
        let prop = prop_for(path, ty, seg)?;
        match doc.get(&obj, prop).map_err(edit_error)? {
            Some((AmValue::Object(t), id)) => {
                obj = id;
                ty = t;
            }
            Some(_) => return Err(path.error(format!("{:?} is not a map or list", seg.as_key()))),
            None => return Err(path.error(format!("nothing at {:?}", seg.as_key()))),
        }
    }
    Ok((obj, ty))
}

fn prop_for(path: &Path, ty: ObjType, seg: &Segment) -> Result<Prop> {
    match (ty, seg) {
        (ObjType::Map | ObjType::Table, s) => Ok(Prop::Map(s.as_key())),
        (ObjType::List | ObjType::Text, Segment::Index(i)) => Ok(Prop::Seq(*i)),
        (_, Segment::Key(k)) => Err(path.error(format!("{k:?} is not a list index"))),
    }
}

fn scalar(value: &Value) -> Option<ScalarValue> {
    Some(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ScalarValue::Int(i),
            (None, Some(u), _) => ScalarValue::Uint(u),
            (_, _, Some(f)) => ScalarValue::F64(f),
            _ => ScalarValue::Null,
        },
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

fn obj_type(value: &Value) -> ObjType {
    if value.is_array() {
        ObjType::List
    } else {
        ObjType::Map
    }
}

/// Fills a freshly created map or list object with the contents of `value`.
fn fill(doc: &mut AutoCommit, obj: &ObjId, value: &Value) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                put_value(doc, obj, Prop::Map(k.clone()), v)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                insert_value(doc, obj, i, v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Puts `value` at `prop`. An object or array put at a map key where nothing is visible is
/// created as the shared container (the same object on every device).
fn put_value(doc: &mut AutoCommit, obj: &ObjId, prop: Prop, value: &Value) -> Result<()> {
    match scalar(value) {
        Some(s) => doc.put(obj, prop, s).map_err(edit_error),
        None => {
            let shape = Shape::Object(obj_type(value));
            let child = match &prop {
                Prop::Map(key) if doc.get(obj, key.as_str()).map_err(edit_error)?.is_none() => {
                    create_at_key(doc, obj, key, shape)?
                }
                _ => doc
                    .put_object(obj, prop, obj_type(value))
                    .map_err(edit_error)?,
            };
            fill(doc, &child, value)
        }
    }
}

fn insert_value(doc: &mut AutoCommit, obj: &ObjId, index: usize, value: &Value) -> Result<()> {
    match scalar(value) {
        Some(s) => doc.insert(obj, index, s).map_err(edit_error),
        None => {
            let child = doc
                .insert_object(obj, index, obj_type(value))
                .map_err(edit_error)?;
            fill(doc, &child, value)
        }
    }
}

pub(super) fn put(doc: &mut AutoCommit, path: &Path, value: &Value) -> Result<()> {
    let (parent, last) = path.split_last()?;
    let (obj, ty) = walk(doc, path, parent)?;
    match (ty, last) {
        (ObjType::Map | ObjType::Table, key) => {
            put_value(doc, &obj, Prop::Map(key.as_key()), value)
        }
        (ObjType::List, Segment::Index(i)) => {
            let len = doc.length(&obj);
            if *i < len {
                put_value(doc, &obj, Prop::Seq(*i), value)
            } else if *i == len {
                insert_value(doc, &obj, *i, value)
            } else {
                Err(path.error(format!("index {i} is past the end of a list of {len}")))
            }
        }
        (ObjType::Text, _) => Err(path.error("use text edits on text")),
        (_, Segment::Key(k)) => Err(path.error(format!("{k:?} is not a list index"))),
    }
}

pub(super) fn insert(doc: &mut AutoCommit, path: &Path, value: &Value) -> Result<()> {
    let (parent, last) = path.split_last()?;
    let (obj, ty) = walk(doc, path, parent)?;
    let (ObjType::List, Segment::Index(i)) = (ty, last) else {
        return Err(path.error("insert needs a list index as the last segment"));
    };
    let len = doc.length(&obj);
    if *i > len {
        return Err(path.error(format!("index {i} is past the end of a list of {len}")));
    }
    insert_value(doc, &obj, *i, value)
}

/// The object at `path`, created with `create` when absent from a parent map.
fn object_or_create(doc: &mut AutoCommit, path: &Path, create: ObjType) -> Result<ObjId> {
    let (parent, last) = path.split_last()?;
    let (obj, ty) = walk(doc, path, parent)?;
    let prop = prop_for(path, ty, last)?;
    match doc.get(&obj, prop.clone()).map_err(edit_error)? {
        Some((AmValue::Object(t), id)) if t == create => Ok(id),
        Some(_) => Err(path.error(format!("the value there is not a {create:?}"))),
        None => match prop {
            Prop::Map(key) => create_at_key(doc, &obj, &key, Shape::Object(create)),
            Prop::Seq(_) => Err(path.error("nothing there")),
        },
    }
}

pub(super) fn push(doc: &mut AutoCommit, path: &Path, value: &Value) -> Result<()> {
    let list = object_or_create(doc, path, ObjType::List)?;
    let len = doc.length(&list);
    insert_value(doc, &list, len, value)
}

pub(super) fn delete(doc: &mut AutoCommit, path: &Path) -> Result<()> {
    let (parent, last) = path.split_last()?;
    let (obj, ty) = walk(doc, path, parent)?;
    let prop = prop_for(path, ty, last)?;
    if doc.get(&obj, prop.clone()).map_err(edit_error)?.is_none() {
        return Err(path.error("nothing there to delete"));
    }
    doc.delete(&obj, prop).map_err(edit_error)
}

/// The text the last splice of an edit worked on, with its length after that splice: a
/// run of splices into one text (typing) finds and measures it once. Valid only for the
/// path that splice named (the caller forgets it when the path changes: `DocTxn::
/// splice_text`) and while nothing else wrote to the document: every other write of the
/// edit forgets it (`DocTxn::inner_for_write`), and `pending` (the edit's operation count
/// after that splice) is checked as well.
#[derive(Debug)]
pub(super) struct LastSplice {
    obj: ObjId,
    len: usize,
    pending: usize,
}

pub(super) fn splice_text(
    doc: &mut AutoCommit,
    last: &mut Option<LastSplice>,
    path: &Path,
    index: usize,
    delete: usize,
    text: &str,
) -> Result<()> {
    let known = last.take().filter(|l| l.pending == doc.pending_ops());
    let (obj, len) = match known {
        Some(l) => (l.obj, l.len),
        None => {
            let obj = object_or_create(doc, path, ObjType::Text)?;
            let len = doc.length(&obj);
            (obj, len)
        }
    };
    if index + delete > len {
        return Err(path.error(format!(
            "range {index}..{} is outside the text of length {len}",
            index + delete
        )));
    }
    let unit = unit_of(doc);
    if unit == TextUnit::Utf16 && (0 < index && index < len || delete > 0) {
        // Automerge would cut an astral character in two at a position inside it.
        let current = doc.text(&obj).map_err(edit_error)?;
        for pos in [index, index + delete] {
            if TextUnit::Utf16.byte_offset(&current, pos).is_none() {
                return Err(path.error(format!(
                    "position {pos} is inside the character (UTF-16 units): move it by one"
                )));
            }
        }
    }
    doc.splice_text(&obj, index, delete as isize, text)
        .map_err(edit_error)?;
    let len = len - delete + unit.len_of(text);
    debug_assert_eq!(len, doc.length(&obj), "the text's length after a splice");
    *last = Some(LastSplice {
        obj,
        len,
        pending: doc.pending_ops(),
    });
    Ok(())
}

pub(super) fn increment(doc: &mut AutoCommit, path: &Path, by: i64) -> Result<()> {
    let (parent, last) = path.split_last()?;
    let (obj, ty) = walk(doc, path, parent)?;
    let prop = prop_for(path, ty, last)?;
    match doc.get(&obj, prop.clone()).map_err(edit_error)? {
        Some((AmValue::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Counter(_)) => {
            doc.increment(&obj, prop, by).map_err(edit_error)
        }
        Some(_) => Err(path.error("the value there is not a counter")),
        None => {
            let Prop::Map(key) = &prop else {
                return Err(path.error("nothing there"));
            };
            create_at_key(doc, &obj, key, Shape::Counter)?;
            doc.increment(&obj, prop, by).map_err(edit_error)
        }
    }
}

/// True when `path` names a key of a map (not a list index).
pub(super) fn parent_is_map(doc: &AutoCommit, path: &Path) -> bool {
    let Ok((parent, _)) = path.split_last() else {
        return false;
    };
    matches!(
        walk(doc, path, parent),
        Ok((_, ObjType::Map | ObjType::Table))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A compressed change chunk around `body` (the checksum is not checked this early).
    fn compressed_chunk(body: &[u8]) -> Vec<u8> {
        let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        deflated.write_all(body).unwrap();
        let deflated = deflated.finish().unwrap();
        super::super::automerge_inflate::test_chunk(COMPRESSED_CHANGE, &deflated)
    }

    #[test]
    fn a_compressed_change_that_inflates_too_far_is_refused_before_automerge_inflates_it() {
        let bomb = compressed_chunk(&vec![0u8; super::super::MAX_INFLATED as usize + 1]);
        assert!(bomb.len() < 64 * 1024, "deflated zeros are small");
        let err = decode_changes(&bomb).unwrap_err().to_string();
        assert!(err.contains("inflates to more than"), "{err}");
        assert!(decode_changes(&compressed_chunk(b"not a change")).is_err());
    }

    #[test]
    fn a_real_compressed_change_still_decodes_and_applies() {
        let mut doc = AutoCommit::new();
        let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, &"compress me ".repeat(300))
            .unwrap();
        doc.commit();
        let mut change = doc.get_last_local_change().unwrap().clone();
        let bytes = change.bytes().into_owned();
        assert_eq!(bytes[8], COMPRESSED_CHANGE, "Automerge compressed it");
        let decoded = decode_changes(&bytes).unwrap();
        let mut copy = AutoCommit::new();
        copy.apply_changes(decoded).unwrap();
        assert_eq!(copy.get_heads(), doc.get_heads());
    }
}

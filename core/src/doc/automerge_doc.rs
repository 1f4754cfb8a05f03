//! Automerge documents: edits by path, one change per commit, change decoding.

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, Change, ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value as AmValue,
    ROOT,
};
use serde_json::Value;

use super::path::{Path, Segment};
use crate::error::{Error, Result};
use crate::ids::DocKind;

fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::InvalidUpdate {
        kind: DocKind::Automerge,
        reason: reason.to_string(),
    }
}

fn edit_error(e: automerge::AutomergeError) -> Error {
    Error::InvalidEdit(e.to_string())
}

/// Decodes exactly one change, rejecting trailing bytes.
pub(super) fn decode_change(bytes: &[u8]) -> Result<Change> {
    Change::try_from(bytes).map_err(invalid)
}

pub(super) fn apply_change(doc: &mut AutoCommit, bytes: &[u8]) -> Result<()> {
    let change = decode_change(bytes)?;
    doc.apply_changes([change]).map_err(invalid)
}

pub(super) fn apply_changes(doc: &mut AutoCommit, updates: &[&[u8]]) -> Result<()> {
    let changes = updates
        .iter()
        .map(|bytes| decode_change(bytes))
        .collect::<Result<Vec<_>>>()?;
    doc.apply_changes(changes).map_err(invalid)
}

/// Loads a full save, failing (rather than skipping) on any chunk that does not decode.
pub(super) fn load(bytes: &[u8]) -> Result<AutoCommit> {
    AutoCommit::load_with_options(
        bytes,
        automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error),
    )
    .map_err(invalid)
}

pub(super) fn apply_snapshot(doc: &mut AutoCommit, bytes: &[u8]) -> Result<()> {
    // Check the whole snapshot decodes before merging (load_incremental skips bad chunks).
    automerge::Automerge::load_with_options(
        bytes,
        automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error),
    )
    .map_err(invalid)?;
    doc.load_incremental(bytes).map_err(invalid)?;
    Ok(())
}

/// Commits the open transaction; returns the new change's bytes, if anything changed.
pub(super) fn commit(doc: &mut AutoCommit, heads_before: &[ChangeHash]) -> Option<Vec<u8>> {
    doc.commit();
    if doc.get_heads() == heads_before {
        return None;
    }
    doc.get_last_local_change()
        .map(|mut c| c.bytes().into_owned())
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

fn put_value(doc: &mut AutoCommit, obj: &ObjId, prop: Prop, value: &Value) -> Result<()> {
    match scalar(value) {
        Some(s) => doc.put(obj, prop, s).map_err(edit_error),
        None => {
            let child = doc
                .put_object(obj, prop, obj_type(value))
                .map_err(edit_error)?;
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
        None if matches!(ty, ObjType::Map | ObjType::Table) => {
            doc.put_object(&obj, prop, create).map_err(edit_error)
        }
        None => Err(path.error("nothing there")),
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

pub(super) fn splice_text(
    doc: &mut AutoCommit,
    path: &Path,
    index: usize,
    delete: usize,
    text: &str,
) -> Result<()> {
    let obj = object_or_create(doc, path, ObjType::Text)?;
    let len = doc.length(&obj);
    if index + delete > len {
        return Err(path.error(format!(
            "range {index}..{} is outside the text of length {len}",
            index + delete
        )));
    }
    doc.splice_text(&obj, index, delete as isize, text)
        .map_err(edit_error)
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
        None => doc
            .put(&obj, prop, ScalarValue::counter(by))
            .map_err(edit_error),
    }
}

//! Yrs edits by path: the first path segment names a root type, and its type follows from
//! the edit (a key below it makes a map, `push`/`insert` an array, text edits a text). Nested
//! JSON objects and arrays become nested Y.Map and Y.Array, so concurrent edits inside them
//! merge; containers created at a map key are shared (`yrs_create.rs`).

use serde_json::Value;
use yrs::types::GetString;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, In, Map, MapPrelim, MapRef, Out, ReadTxn, Text, TextRef,
    TransactionMut, WriteTxn,
};

use super::yrs_create::{create_at_key, NestedType};
use super::yrs_nesting::MAX_TYPE_DEPTH;
use super::yrs_text::{check_utf16_boundaries, scalar_range_to_utf16, AstralTexts};
use crate::error::{Error, Result};
use crate::path::{Path, Segment};
use crate::text_unit::TextUnit;

/// Puts `value` at `key` of `map`. An object or array put where nothing is visible is created
/// as the shared nested type (the same item on every device), then filled.
fn put_in_map(txn: &mut TransactionMut<'_>, map: &MapRef, key: &str, value: &Value) {
    let shape = match value {
        Value::Object(_) => NestedType::Map,
        Value::Array(_) => NestedType::Array,
        _ => {
            map.insert(txn, key, to_in(value));
            return;
        }
    };
    if map.get(txn, key).is_none() {
        match create_at_key(txn, map, key, shape) {
            Some(Out::YMap(child)) => {
                if let Value::Object(entries) = value {
                    for (k, v) in entries {
                        put_in_map(txn, &child, k, v);
                    }
                }
                return;
            }
            Some(Out::YArray(child)) => {
                if let Value::Array(items) = value {
                    for item in items {
                        child.push_back(txn, to_in(item));
                    }
                }
                return;
            }
            _ => {}
        }
    }
    map.insert(txn, key, to_in(value));
}

/// The nested type at `key` of `map`, created (shared, see `yrs_create.rs`) when absent.
fn nested_or_create(
    txn: &mut TransactionMut<'_>,
    map: &MapRef,
    key: &str,
    ty: NestedType,
) -> Container {
    if let Some(c) = create_at_key(txn, map, key, ty).and_then(as_container) {
        return c;
    }
    match ty {
        NestedType::Map => Container::Map(map.insert(txn, key, MapPrelim::default())),
        NestedType::Array => Container::Array(map.insert(txn, key, ArrayPrelim::default())),
        NestedType::Text => Container::Text(map.insert(txn, key, yrs::TextPrelim::new(""))),
    }
}

/// Converts JSON into a Yrs input: objects and arrays become shared maps and arrays.
fn to_in(value: &Value) -> In {
    match value {
        Value::Object(map) => In::Map(MapPrelim::from_iter(
            map.iter().map(|(k, v)| (k.as_str(), to_in(v))),
        )),
        Value::Array(items) => In::Array(ArrayPrelim::from_iter(items.iter().map(to_in))),
        Value::Null => In::Any(Any::Null),
        Value::Bool(b) => In::Any(Any::Bool(*b)),
        Value::Number(n) => In::Any(Any::Number(match n.as_i64() {
            Some(i) => yrs::any::Number::Int(i),
            None => yrs::any::Number::Float(n.as_f64().unwrap_or(0.0)),
        })),
        Value::String(s) => In::Any(Any::String(s.as_str().into())),
    }
}

/// A shared container reached by a path.
pub(crate) enum Container {
    Map(MapRef),
    Array(ArrayRef),
    Text(TextRef),
}

fn root_name(path: &Path) -> Result<&str> {
    match path.segments.first() {
        Some(Segment::Key(name)) => Ok(name),
        Some(Segment::Index(_)) | None => {
            Err(path.error("a yrs path starts with the name of a root type, e.g. \"notes/title\""))
        }
    }
}

fn existing_root(txn: &impl ReadTxn, name: &str) -> Option<Container> {
    ReadTxn::get(txn, name).and_then(as_container)
}

/// The root named by `path`'s first segment, created with `create`'s type if absent.
fn root(
    txn: &mut TransactionMut<'_>,
    path: &Path,
    create: fn(&mut TransactionMut<'_>, &str) -> Container,
) -> Result<Container> {
    let name = root_name(path)?;
    Ok(match existing_root(txn, name) {
        Some(c) => c,
        None => create(txn, name),
    })
}

fn new_map(txn: &mut TransactionMut<'_>, name: &str) -> Container {
    Container::Map(txn.get_or_insert_map(name))
}
fn new_array(txn: &mut TransactionMut<'_>, name: &str) -> Container {
    Container::Array(txn.get_or_insert_array(name))
}
fn new_text(txn: &mut TransactionMut<'_>, name: &str) -> Container {
    Container::Text(txn.get_or_insert_text(name))
}

fn child(
    txn: &impl ReadTxn,
    path: &Path,
    parent: &Container,
    seg: &Segment,
) -> Result<Option<Out>> {
    Ok(match (parent, seg) {
        (Container::Map(m), s) => m.get(txn, &s.as_key()),
        (Container::Array(a), Segment::Index(i)) => a.get(txn, *i as u32),
        (Container::Array(_), Segment::Key(k)) => {
            return Err(path.error(format!("{k:?} is not an array index")))
        }
        (Container::Text(_), _) => return Err(path.error("text has no children")),
    })
}

fn as_container(out: Out) -> Option<Container> {
    match out {
        Out::YMap(m) => Some(Container::Map(m)),
        Out::YArray(a) => Some(Container::Array(a)),
        Out::YText(t) => Some(Container::Text(t)),
        _ => None,
    }
}

/// Follows the segments after the root name down to a container.
fn walk(
    txn: &mut TransactionMut<'_>,
    path: &Path,
    depth: usize,
    create_root: fn(&mut TransactionMut<'_>, &str) -> Container,
) -> Result<Container> {
    let mut current = root(txn, path, create_root)?;
    for seg in &path.segments[1..depth] {
        let out = child(txn, path, &current, seg)?
            .ok_or_else(|| path.error(format!("nothing at {:?}", seg.as_key())))?;
        current = as_container(out)
            .ok_or_else(|| path.error(format!("{:?} is not a map, array or text", seg.as_key())))?;
    }
    Ok(current)
}

fn check_index(path: &Path, index: u32, len: u32) -> Result<()> {
    if index > len {
        return Err(path.error(format!("index {index} is past the end (length {len})")));
    }
    Ok(())
}

/// How deeply `value`'s objects and arrays nest (0 for a scalar, 1 for `{}` or `[]`),
/// counted without recursion, and only up to `past` (returned once reached).
fn container_depth(value: &Value, past: usize) -> usize {
    let mut deepest = 0;
    let mut open = vec![(value, 1)];
    while let Some((v, level)) = open.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        deepest = deepest.max(level);
        if deepest >= past {
            return past;
        }
        open.extend(children.map(|c| (c, level + 1)));
    }
    deepest
}

/// Refuses an edit that would make a shared type deeper than a relay accepts from a peer
/// ([`MAX_TYPE_DEPTH`], a root type being level 0): committed here, it could never sync.
/// `slot` is the level a type put by the edit would have (the edit's path has that many
/// segments after the root's), `value` what is put there, if anything.
fn check_nesting(path: &Path, slot: usize, value: Option<&Value>) -> Result<()> {
    let limit = MAX_TYPE_DEPTH as usize;
    let deepest = match value {
        Some(v) => match container_depth(v, limit + 2) {
            0 => return Ok(()),
            d => slot + d - 1,
        },
        None => slot,
    };
    if deepest > limit {
        return Err(Error::InvalidEdit(format!(
            "at {:?}, it would nest maps, lists and texts {deepest} levels deep; a Yrs \
             document syncs at most {limit} levels below its root types",
            path.raw
        )));
    }
    Ok(())
}

pub(super) fn put(txn: &mut TransactionMut<'_>, path: &Path, value: &Value) -> Result<()> {
    if path.segments.len() < 2 {
        return Err(path.error("put needs <root>/<key>: yrs values live inside root types"));
    }
    check_nesting(path, path.segments.len() - 1, Some(value))?;
    let parent = walk(txn, path, path.segments.len() - 1, new_map)?;
    let last = path.segments.last().expect("checked above");
    match (parent, last) {
        (Container::Map(m), key) => put_in_map(txn, &m, &key.as_key(), value),
        (Container::Array(a), Segment::Index(i)) => {
            let (i, len) = (*i as u32, a.len(txn));
            check_index(path, i, len)?;
            if i < len {
                a.remove(txn, i);
            }
            a.insert(txn, i, to_in(value));
        }
        (Container::Array(_), Segment::Key(k)) => {
            return Err(path.error(format!("{k:?} is not an array index")))
        }
        (Container::Text(_), _) => return Err(path.error("use text edits on text")),
    }
    Ok(())
}

pub(super) fn insert(txn: &mut TransactionMut<'_>, path: &Path, value: &Value) -> Result<()> {
    let (_, last) = path.split_last()?;
    let Segment::Index(i) = last else {
        return Err(path.error("insert needs an array index as the last segment"));
    };
    check_nesting(path, path.segments.len() - 1, Some(value))?;
    let parent = walk(txn, path, path.segments.len() - 1, new_array)?;
    let Container::Array(a) = parent else {
        return Err(path.error("insert needs an array"));
    };
    check_index(path, *i as u32, a.len(txn))?;
    a.insert(txn, *i as u32, to_in(value));
    Ok(())
}

pub(super) fn push(txn: &mut TransactionMut<'_>, path: &Path, value: &Value) -> Result<()> {
    root_name(path)?; // the root path names no type
    check_nesting(path, path.segments.len() - 1, None)?; // the array, created if absent
    check_nesting(path, path.segments.len(), Some(value))?;
    let array = if path.segments.len() == 1 {
        walk(txn, path, 1, new_array)?
    } else {
        let parent = walk(txn, path, path.segments.len() - 1, new_map)?;
        let last = path.segments.last().expect("non-empty");
        match child(txn, path, &parent, last)?.map(as_container) {
            Some(Some(c)) => c,
            Some(None) => return Err(path.error("the value there is not an array")),
            None => match parent {
                Container::Map(m) => nested_or_create(txn, &m, &last.as_key(), NestedType::Array),
                _ => return Err(path.error("nothing there")),
            },
        }
    };
    let Container::Array(a) = array else {
        return Err(path.error("the value there is not an array"));
    };
    a.push_back(txn, to_in(value));
    Ok(())
}

pub(super) fn delete(txn: &mut TransactionMut<'_>, path: &Path) -> Result<()> {
    if path.segments.len() < 2 {
        return Err(path.error("root types cannot be deleted; delete their contents"));
    }
    let parent = walk(txn, path, path.segments.len() - 1, new_map)?;
    let last = path.segments.last().expect("checked above");
    match (parent, last) {
        (Container::Map(m), key) => {
            if m.remove(txn, &key.as_key()).is_none() {
                return Err(path.error("nothing there to delete"));
            }
        }
        (Container::Array(a), Segment::Index(i)) => {
            if *i as u32 >= a.len(txn) {
                return Err(path.error("nothing there to delete"));
            }
            a.remove(txn, *i as u32);
        }
        _ => return Err(path.error("nothing there to delete")),
    }
    Ok(())
}

pub(super) fn splice_text(
    txn: &mut TransactionMut<'_>,
    astral: &mut AstralTexts,
    path: &Path,
    index: usize,
    delete: usize,
    text: &str,
) -> Result<()> {
    root_name(path)?; // the root path names no type
    check_nesting(path, path.segments.len() - 1, None)?; // the text, created if absent
    let target = if path.segments.len() == 1 {
        walk(txn, path, 1, new_text)?
    } else {
        let parent = walk(txn, path, path.segments.len() - 1, new_map)?;
        let last = path.segments.last().expect("non-empty");
        match child(txn, path, &parent, last)?.map(as_container) {
            Some(Some(c)) => c,
            Some(None) => return Err(path.error("the value there is not text")),
            None => match parent {
                Container::Map(m) => nested_or_create(txn, &m, &last.as_key(), NestedType::Text),
                _ => return Err(path.error("nothing there")),
            },
        }
    };
    let Container::Text(t) = target else {
        return Err(path.error("the value there is not text"));
    };
    let (index, delete) = match astral.unit() {
        TextUnit::UnicodeScalar if astral.may_hold(txn, &t) => {
            scalar_range_to_utf16(path, &t.get_string(txn), index, delete)?
        }
        _ => (index, delete),
    };
    let len = t.len(txn) as usize;
    if index + delete > len {
        return Err(path.error(format!(
            "range {index}..{} is outside the text of length {len}",
            index + delete
        )));
    }
    let inside = 0 < index && index < len || 0 < index + delete && index + delete < len;
    if inside && astral.unit() == TextUnit::Utf16 && astral.may_hold(txn, &t) {
        check_utf16_boundaries(path, &t.get_string(txn), &[index, index + delete])?;
    }
    if text.chars().any(|c| c.len_utf16() == 2) {
        astral.note(&t);
    }
    if delete > 0 {
        t.remove_range(txn, index as u32, delete as u32);
    }
    if !text.is_empty() {
        t.insert(txn, index as u32, text);
    }
    Ok(())
}

/// True when `path` names a key of a map (not an array index or a root).
pub(super) fn parent_is_map(txn: &impl ReadTxn, path: &Path) -> bool {
    let n = path.segments.len();
    let Some(mut current) = root_name(path)
        .ok()
        .filter(|_| n >= 2)
        .and_then(|name| existing_root(txn, name))
    else {
        return false;
    };
    for seg in &path.segments[1..n - 1] {
        match child(txn, path, &current, seg)
            .ok()
            .flatten()
            .and_then(as_container)
        {
            Some(c) => current = c,
            None => return false,
        }
    }
    matches!(current, Container::Map(_))
}

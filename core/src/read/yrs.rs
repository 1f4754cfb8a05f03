//! Reading Yrs documents: the first path segment names a root type; the document's
//! policies apply at map keys.

use serde_json::Value;
use yrs::types::ToJson;
use yrs::{Any, Array, GetString, Map, Out, ReadTxn, XmlFragment, XmlOut};

use super::policies::Policies;
use super::{lookup_json, Candidate, Reader};
use crate::error::Result;
use crate::path::{Path, Segment};
use crate::policy::register::{Shown, RESERVED_PREFIX};
use crate::policy::yrs_meta;

impl Reader {
    /// Reads `path` in a Yrs document (first segment = root type name; the empty path is
    /// the whole document, each root by name).
    pub fn yrs(&self, txn: &impl ReadTxn, path: &Path) -> Result<Option<Value>> {
        let table = yrs_meta::table(txn);
        let policies = (!table.is_empty()).then(|| Policies {
            table,
            registers: Box::new(|keys: &[String]| yrs_meta::register(txn, keys)),
        });
        self.yrs_in(txn, path, policies.as_ref())
    }

    /// [`Reader::yrs`] with the document's policies already read.
    pub(crate) fn yrs_in(
        &self,
        txn: &impl ReadTxn,
        path: &Path,
        policies: Option<&Policies<'_>>,
    ) -> Result<Option<Value>> {
        super::bounded(|| self.yrs_path(txn, path, policies))
    }

    fn yrs_path(
        &self,
        txn: &impl ReadTxn,
        path: &Path,
        policies: Option<&Policies<'_>>,
    ) -> Result<Option<Value>> {
        let Some(first) = path.segments.first() else {
            let mut out = serde_json::Map::new();
            for (name, root) in txn.root_refs() {
                if name.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                let mut keys = vec![name.to_string()];
                // The object of roots is level 0.
                out.insert(
                    name.to_string(),
                    self.yrs_json(txn, &root, &mut keys, 1, policies),
                );
            }
            return Ok(Some(Value::Object(out)));
        };
        let name = first.as_key();
        let root = ReadTxn::get(txn, &name);
        let Some(mut current) =
            self.resolve(|| name.clone(), root.into_iter().collect(), yrs_candidate)
        else {
            return Ok(None);
        };
        let mut keys = vec![name];
        for (depth, seg) in path.segments.iter().enumerate().skip(1) {
            let is_map = matches!(current, Out::YMap(_));
            let next = match &current {
                Out::YMap(m) => m.get(txn, &seg.as_key()),
                Out::YArray(a) => match seg {
                    Segment::Index(i) => a.get(txn, *i as u32),
                    Segment::Key(_) => None,
                },
                Out::Any(any) => return Ok(lookup_any(any, &path.segments[depth..])),
                _ => None,
            };
            keys.push(seg.as_key());
            if let Some(p) = policies.filter(|_| is_map) {
                let at_path = || {
                    next.as_ref()
                        .map(|n| self.yrs_json(txn, n, &mut keys.clone(), 0, Some(p)))
                };
                match p.shown(self, &keys, at_path) {
                    Some(Shown::Value(v)) => {
                        return Ok(lookup_json(v, &path.segments[depth + 1..]))
                    }
                    Some(Shown::Absent) => return Ok(None),
                    Some(Shown::AtPath) | None => {}
                }
            }
            match self.resolve(|| seg.as_key(), next.into_iter().collect(), yrs_candidate) {
                Some(n) => current = n,
                None => return Ok(None),
            }
        }
        Ok(Some(self.yrs_json(txn, &current, &mut keys, 0, policies)))
    }

    /// A Yrs value (at the path `keys`, `depth` maps and lists below the value read) and
    /// everything below it as JSON, showing what the document's policies decide at map
    /// keys.
    fn yrs_json(
        &self,
        txn: &impl ReadTxn,
        out: &Out,
        keys: &mut Vec<String>,
        depth: usize,
        policies: Option<&Policies<'_>>,
    ) -> Value {
        let Some(p) = policies else {
            return out_to_json(txn, out, keys, depth);
        };
        if matches!(out, Out::YMap(_) | Out::YArray(_)) && depth >= super::MAX_READ_DEPTH {
            return super::too_deep(keys);
        }
        match out {
            Out::YMap(m) => {
                let mut entries: Vec<(String, Out)> =
                    m.iter(txn).map(|(k, v)| (k.to_string(), v)).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut obj = serde_json::Map::new();
                for (k, v) in entries {
                    keys.push(k.clone());
                    let at_path =
                        || Some(self.yrs_json(txn, &v, &mut keys.clone(), depth + 1, Some(p)));
                    let shown = match p.shown(self, keys, at_path) {
                        Some(Shown::Value(v)) => Some(v),
                        Some(Shown::Absent) => None,
                        Some(Shown::AtPath) | None => {
                            Some(self.yrs_json(txn, &v, keys, depth + 1, Some(p)))
                        }
                    };
                    keys.pop();
                    if let Some(value) = shown {
                        obj.insert(k, value);
                    }
                }
                Value::Object(obj)
            }
            Out::YArray(a) => Value::Array(
                a.iter(txn)
                    .enumerate()
                    .map(|(i, v)| {
                        keys.push(i.to_string());
                        let value = self.yrs_json(txn, &v, keys, depth + 1, Some(p));
                        keys.pop();
                        value
                    })
                    .collect(),
            ),
            other => out_to_json(txn, other, keys, depth),
        }
    }
}

fn yrs_candidate(out: &Out) -> Candidate {
    match out {
        Out::YMap(_) => Candidate::Map,
        Out::YArray(_) => Candidate::List,
        Out::YText(_) => Candidate::Text,
        Out::Any(any) => Candidate::Value(any_to_json(any)),
        _ => Candidate::Value(Value::Null),
    }
}

/// Converts a Yrs value (at the path `keys`, `depth` maps and lists below the value read)
/// and everything below it to JSON, as Yrs's own `to_json` would, without its recursion
/// past [`MAX_READ_DEPTH`](super::MAX_READ_DEPTH). A text is its string as it is (Yrs's
/// own conversion would copy it into an `Any` first: a whole document's text, read on
/// every cold open, is the largest value most reads return).
fn out_to_json(txn: &impl ReadTxn, out: &Out, keys: &[String], depth: usize) -> Value {
    let deep = depth >= super::MAX_READ_DEPTH;
    match out {
        Out::YText(text) => Value::String(text.get_string(txn)),
        Out::YMap(_) | Out::YArray(_) if deep => super::too_deep(keys),
        Out::YMap(m) => Value::Object(
            m.iter(txn)
                .map(|(k, v)| (k.to_string(), out_to_json(txn, &v, keys, depth + 1)))
                .collect(),
        ),
        Out::YArray(a) => Value::Array(
            a.iter(txn)
                .map(|v| out_to_json(txn, &v, keys, depth + 1))
                .collect(),
        ),
        Out::YXmlElement(_) | Out::YXmlFragment(_)
            if xml_deeper_than(txn, out, super::MAX_READ_DEPTH - depth) =>
        {
            super::too_deep(keys)
        }
        other => any_to_json(&other.to_json(txn)),
    }
}

/// True when the XML element or fragment `out` nests elements deeper than `limit` (Yrs
/// turns it into its XML string by recursion), or holds a child that is not XML (only a
/// hostile update puts one there; Yrs would turn it into a string by recursion too, and
/// `children` stops at it). Walked with a stack of its own.
fn xml_deeper_than(txn: &impl ReadTxn, out: &Out, limit: usize) -> bool {
    let first = match out {
        Out::YXmlElement(e) => XmlOut::Element(e.clone()),
        Out::YXmlFragment(f) => XmlOut::Fragment(f.clone()),
        _ => return false,
    };
    let mut stack = vec![(first, 1)];
    while let Some((node, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        let (children, len): (Vec<XmlOut>, u32) = match &node {
            XmlOut::Element(e) => (e.children(txn).collect(), e.len(txn)),
            XmlOut::Fragment(f) => (f.children(txn).collect(), f.len(txn)),
            XmlOut::Text(_) => continue,
        };
        if children.len() != len as usize {
            return true;
        }
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    false
}

fn any_to_json(any: &Any) -> Value {
    match any {
        Any::Undefined | Any::Null => Value::Null,
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

/// Follows `segments` inside a plain (non-shared) Yrs value.
fn lookup_any(any: &Any, segments: &[Segment]) -> Option<Value> {
    lookup_json(any_to_json(any), segments)
}

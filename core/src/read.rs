//! The one place document values are read and turned into JSON.
//!
//! Every read of a document value — `Store::get`, `Store::to_json`, reads inside an edit —
//! goes through [`Reader`]. When a map key holds concurrent values, [`Reader::resolve`]
//! decides what the app sees; conflict policies (last-writer-wins, app merge, keep-all)
//! plug in there. Today it shows the CRDT's own deterministic winner.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value as AmValue, ROOT};
use serde_json::Value;

use crate::doc::{Path, Segment};
use crate::error::{Error, Result};

/// Turns stored CRDT values into the JSON an app sees.
#[derive(Debug, Default, Clone)]
pub struct Reader {}

impl Reader {
    /// Picks the value shown for a key that holds `candidates` (in the CRDT's order,
    /// winner first). Conflict policies replace this choice.
    fn resolve<T>(&self, mut candidates: Vec<T>) -> Option<T> {
        if candidates.is_empty() {
            None
        } else {
            Some(candidates.swap_remove(0))
        }
    }

    /// Reads `path` in an Automerge document.
    pub fn automerge(&self, doc: &impl ReadDoc, path: &Path) -> Result<Option<Value>> {
        let mut obj = ROOT;
        let mut ty = ObjType::Map;
        for (depth, seg) in path.segments.iter().enumerate() {
            let prop: automerge::Prop = match (ty, seg) {
                (ObjType::Map | ObjType::Table, s) => s.as_key().into(),
                (_, Segment::Index(i)) => (*i).into(),
                (_, Segment::Key(_)) => return Ok(None),
            };
            if ty == ObjType::Text {
                let text = doc.text(&obj).map_err(|e| Error::Corrupt(e.to_string()))?;
                let Segment::Index(i) = seg else {
                    return Ok(None);
                };
                return Ok(text
                    .chars()
                    .nth(*i)
                    .map(|c| Value::String(c.to_string()))
                    .filter(|_| depth + 1 == path.segments.len()));
            }
            let winner = self.resolve(
                doc.get_all(&obj, prop)
                    .map_err(|e| Error::Corrupt(e.to_string()))?,
            );
            match winner {
                None => return Ok(None),
                Some((AmValue::Object(t), id)) => {
                    obj = id;
                    ty = t;
                }
                Some((AmValue::Scalar(s), _)) => {
                    return Ok((depth + 1 == path.segments.len()).then(|| scalar_json(&s)));
                }
            }
        }
        Ok(Some(self.automerge_object(doc, &obj, ty)))
    }

    fn automerge_object(&self, doc: &impl ReadDoc, obj: &ObjId, ty: ObjType) -> Value {
        match ty {
            ObjType::Text => Value::String(doc.text(obj).unwrap_or_default()),
            ObjType::List => Value::Array(
                (0..doc.length(obj))
                    .map(|i| {
                        let winner = self.resolve(doc.get_all(obj, i).unwrap_or_default());
                        self.automerge_value(doc, winner)
                    })
                    .collect(),
            ),
            ObjType::Map | ObjType::Table => Value::Object(
                doc.keys(obj)
                    .map(|k| {
                        let winner = self.resolve(doc.get_all(obj, k.as_str()).unwrap_or_default());
                        (k, self.automerge_value(doc, winner))
                    })
                    .collect(),
            ),
        }
    }

    fn automerge_value(&self, doc: &impl ReadDoc, v: Option<(AmValue<'_>, ObjId)>) -> Value {
        match v {
            None => Value::Null,
            Some((AmValue::Object(t), id)) => self.automerge_object(doc, &id, t),
            Some((AmValue::Scalar(s), _)) => scalar_json(&s),
        }
    }

    /// Reads `path` in a Yrs document (first segment = root type name).
    pub fn yrs(&self, txn: &impl yrs::ReadTxn, path: &Path) -> Result<Option<Value>> {
        crate::doc::yrs_read(txn, path)
    }
}

fn scalar_json(s: &ScalarValue) -> Value {
    match s {
        ScalarValue::Bytes(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
        ScalarValue::Str(s) => Value::String(s.to_string()),
        ScalarValue::Int(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => Value::from(*f),
        ScalarValue::Counter(c) => Value::from(i64::from(c)),
        ScalarValue::Timestamp(t) => Value::from(*t),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Unknown { .. } | ScalarValue::Null => Value::Null,
    }
}

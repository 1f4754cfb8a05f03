//! Reading Automerge documents: a path step by step, or an object and everything below it,
//! with the document's policies applied at map keys.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value as AmValue, ROOT};
use serde_json::Value;

use super::policies::Policies;
use super::{lookup_json, Candidate, Reader};
use crate::error::{Error, Result};
use crate::path::{Path, Segment};
use crate::policy::automerge_meta;
use crate::policy::register::{Shown, RESERVED_PREFIX};

impl Reader {
    /// Reads `path` in an Automerge document.
    pub fn automerge(&self, doc: &impl ReadDoc, path: &Path) -> Result<Option<Value>> {
        let table = automerge_meta::table(doc);
        let policies = (!table.is_empty()).then(|| Policies {
            table,
            registers: Box::new(|keys: &[String]| automerge_meta::register(doc, keys)),
        });
        self.automerge_in(doc, path, policies.as_ref())
    }

    /// [`Reader::automerge`] with the document's policies already read.
    pub(crate) fn automerge_in(
        &self,
        doc: &impl ReadDoc,
        path: &Path,
        policies: Option<&Policies<'_>>,
    ) -> Result<Option<Value>> {
        super::bounded(|| self.automerge_path(doc, path, policies))
    }

    fn automerge_path(
        &self,
        doc: &impl ReadDoc,
        path: &Path,
        policies: Option<&Policies<'_>>,
    ) -> Result<Option<Value>> {
        let mut obj = ROOT;
        let mut ty = ObjType::Map;
        let mut keys = Vec::new();
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
            let is_map = matches!(ty, ObjType::Map | ObjType::Table);
            keys.push(seg.as_key());
            let winner = self.resolve(
                || seg.as_key(),
                doc.get_all(&obj, prop)
                    .map_err(|e| Error::Corrupt(e.to_string()))?,
                automerge_candidate,
            );
            if let Some(p) = policies.filter(|_| is_map) {
                let at_path = || {
                    let base = keys.len();
                    let v =
                        self.automerge_value(doc, winner.clone(), &mut keys.clone(), base, Some(p));
                    Some(v)
                };
                match p.shown(self, &keys, at_path) {
                    Some(Shown::Value(v)) => {
                        return Ok(lookup_json(v, &path.segments[depth + 1..]))
                    }
                    Some(Shown::Absent) => return Ok(None),
                    Some(Shown::AtPath) | None => {}
                }
            }
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
        let base = keys.len();
        Ok(Some(self.automerge_object(
            doc, &obj, ty, &mut keys, base, policies,
        )))
    }

    /// The object `obj` (at the path `keys`, the read's value at `keys[..base]`) as JSON.
    fn automerge_object(
        &self,
        doc: &impl ReadDoc,
        obj: &ObjId,
        ty: ObjType,
        keys: &mut Vec<String>,
        base: usize,
        policies: Option<&Policies<'_>>,
    ) -> Value {
        if ty != ObjType::Text && keys.len() - base >= super::MAX_READ_DEPTH {
            return super::too_deep(keys);
        }
        match ty {
            ObjType::Text => Value::String(doc.text(obj).unwrap_or_default()),
            ObjType::List => Value::Array(
                (0..doc.length(obj))
                    .map(|i| {
                        let winner = self.resolve(
                            || i.to_string(),
                            doc.get_all(obj, i).unwrap_or_default(),
                            automerge_candidate,
                        );
                        keys.push(i.to_string());
                        let v = self.automerge_value(doc, winner, keys, base, policies);
                        keys.pop();
                        v
                    })
                    .collect(),
            ),
            ObjType::Map | ObjType::Table => {
                let mut out = serde_json::Map::new();
                for k in doc.keys(obj) {
                    if keys.is_empty() && k.starts_with(RESERVED_PREFIX) {
                        continue;
                    }
                    let winner = self.resolve(
                        || k.clone(),
                        doc.get_all(obj, k.as_str()).unwrap_or_default(),
                        automerge_candidate,
                    );
                    keys.push(k.clone());
                    let shown = policies.and_then(|p| {
                        let at_path = || {
                            Some(self.automerge_value(
                                doc,
                                winner.clone(),
                                &mut keys.clone(),
                                base,
                                Some(p),
                            ))
                        };
                        p.shown(self, keys, at_path)
                    });
                    let v = match shown {
                        Some(Shown::Value(v)) => Some(v),
                        Some(Shown::Absent) => None,
                        Some(Shown::AtPath) | None => {
                            Some(self.automerge_value(doc, winner, keys, base, policies))
                        }
                    };
                    keys.pop();
                    if let Some(v) = v {
                        out.insert(k, v);
                    }
                }
                Value::Object(out)
            }
        }
    }

    fn automerge_value(
        &self,
        doc: &impl ReadDoc,
        v: Option<(AmValue<'_>, ObjId)>,
        keys: &mut Vec<String>,
        base: usize,
        policies: Option<&Policies<'_>>,
    ) -> Value {
        match v {
            None => Value::Null,
            Some((AmValue::Object(t), id)) => {
                self.automerge_object(doc, &id, t, keys, base, policies)
            }
            Some((AmValue::Scalar(s), _)) => scalar_json(&s),
        }
    }
}

fn automerge_candidate((value, _): &(AmValue<'_>, ObjId)) -> Candidate {
    match value {
        AmValue::Object(ObjType::Map | ObjType::Table) => Candidate::Map,
        AmValue::Object(ObjType::List) => Candidate::List,
        AmValue::Object(ObjType::Text) => Candidate::Text,
        AmValue::Scalar(s) => Candidate::Value(scalar_json(s)),
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

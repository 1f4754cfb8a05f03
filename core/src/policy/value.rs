//! `PlainValue`: a JSON-like value as plain data, the form merge functions take and return
//! (a foreign binding can mirror it as an enum with records; no `serde_json` type crosses).

use serde_json::{Map, Number, Value};

/// A JSON-like value. Map entries are sorted by key, so a merge function that walks them
/// sees the same order on every device.
#[derive(Debug, Clone, PartialEq)]
pub enum PlainValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<PlainValue>),
    Map(Vec<MapEntry>),
}

/// One entry of a [`PlainValue::Map`].
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    pub key: String,
    pub value: PlainValue,
}

impl From<&Value> for PlainValue {
    fn from(value: &Value) -> PlainValue {
        match value {
            Value::Null => PlainValue::Null,
            Value::Bool(b) => PlainValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => PlainValue::Int(i),
                None => PlainValue::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => PlainValue::Text(s.clone()),
            Value::Array(items) => PlainValue::List(items.iter().map(PlainValue::from).collect()),
            Value::Object(map) => {
                let mut entries: Vec<MapEntry> = map
                    .iter()
                    .map(|(k, v)| MapEntry {
                        key: k.clone(),
                        value: v.into(),
                    })
                    .collect();
                entries.sort_by(|a, b| a.key.cmp(&b.key));
                PlainValue::Map(entries)
            }
        }
    }
}

impl From<PlainValue> for Value {
    fn from(value: PlainValue) -> Value {
        match value {
            PlainValue::Null => Value::Null,
            PlainValue::Bool(b) => Value::Bool(b),
            PlainValue::Int(i) => Value::from(i),
            PlainValue::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            PlainValue::Text(s) => Value::String(s),
            PlainValue::List(items) => Value::Array(items.into_iter().map(Value::from).collect()),
            PlainValue::Map(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|e| (e.key, Value::from(e.value)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

//! `Value`: a JSON-like value crossing the FFI as plain data (a sealed class in Kotlin, an
//! enum in Swift and Python), and its conversions to JSON and to core's `PlainValue`.

use std::collections::HashMap;

use concord_core::policy::value::MapEntry;
use concord_core::PlainValue;
use serde_json::{Map, Number, Value as Json};

/// A document value. Texts, lists and maps read as their current contents; a counter reads
/// as an `Int`.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Value {
    Null,
    Bool { value: bool },
    Int { value: i64 },
    Float { value: f64 },
    Text { value: String },
    Array { items: Vec<Value> },
    Object { entries: HashMap<String, Value> },
}

impl From<&Json> for Value {
    fn from(json: &Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool { value: *b },
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int { value: i },
                None => Value::Float {
                    value: n.as_f64().unwrap_or(0.0),
                },
            },
            Json::String(s) => Value::Text { value: s.clone() },
            Json::Array(items) => Value::Array {
                items: items.iter().map(Value::from).collect(),
            },
            Json::Object(map) => Value::Object {
                entries: map.iter().map(|(k, v)| (k.clone(), v.into())).collect(),
            },
        }
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool { value } => Json::Bool(value),
            Value::Int { value } => Json::from(value),
            Value::Float { value } => Number::from_f64(value).map_or(Json::Null, Json::Number),
            Value::Text { value } => Json::String(value),
            Value::Array { items } => Json::Array(items.into_iter().map(Json::from).collect()),
            Value::Object { entries } => Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, Json::from(v)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

impl From<PlainValue> for Value {
    fn from(value: PlainValue) -> Value {
        match value {
            PlainValue::Null => Value::Null,
            PlainValue::Bool(value) => Value::Bool { value },
            PlainValue::Int(value) => Value::Int { value },
            PlainValue::Float(value) => Value::Float { value },
            PlainValue::Text(value) => Value::Text { value },
            PlainValue::List(items) => Value::Array {
                items: items.into_iter().map(Value::from).collect(),
            },
            PlainValue::Map(entries) => Value::Object {
                entries: entries
                    .into_iter()
                    .map(|e| (e.key, Value::from(e.value)))
                    .collect(),
            },
        }
    }
}

impl From<Value> for PlainValue {
    /// Map entries are sorted by key (core's order for every device).
    fn from(value: Value) -> PlainValue {
        match value {
            Value::Null => PlainValue::Null,
            Value::Bool { value } => PlainValue::Bool(value),
            Value::Int { value } => PlainValue::Int(value),
            Value::Float { value } => PlainValue::Float(value),
            Value::Text { value } => PlainValue::Text(value),
            Value::Array { items } => {
                PlainValue::List(items.into_iter().map(PlainValue::from).collect())
            }
            Value::Object { entries } => {
                let mut entries: Vec<MapEntry> = entries
                    .into_iter()
                    .map(|(key, value)| MapEntry {
                        key,
                        value: value.into(),
                    })
                    .collect();
                entries.sort_by(|a, b| a.key.cmp(&b.key));
                PlainValue::Map(entries)
            }
        }
    }
}

/// Parses JSON text given by the host.
pub(crate) fn parse_json(text: &str) -> Result<Json, crate::ConcordError> {
    Ok(serde_json::from_str(text)?)
}

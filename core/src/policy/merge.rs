//! Application merge functions: the `merge` policy's interface, and the built-in ones.
//!
//! A [`MergeFunction`] receives every concurrent value at a path (value, origin, HLC),
//! sorted by HLC, and returns the value to show. It is a `Send + Sync` trait over plain
//! data so a binding (uniffi foreign trait, JS callback) can implement it. It must be
//! deterministic and must not depend on anything but its input: every replica calls it
//! on the same values and must show the same result.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::hlc::Hlc;
use super::value::{MapEntry, PlainValue};

/// One of the concurrent values a merge function receives.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrentValue {
    pub value: PlainValue,
    /// The device that wrote it (also `hlc.origin`).
    pub origin: String,
    /// When it was written.
    pub hlc: Hlc,
}

/// Chooses or computes the value shown for a path holding several concurrent values.
pub trait MergeFunction: Send + Sync {
    /// `values` holds at least two, oldest HLC first.
    fn merge(&self, path: String, values: Vec<ConcurrentValue>) -> PlainValue;
}

/// The built-in functions, by name: `max`, `min`, `union`, `concat`.
pub const BUILTIN_NAMES: [&str; 4] = ["max", "min", "union", "concat"];

/// A built-in merge function by name.
pub fn builtin(name: &str) -> Option<Arc<dyn MergeFunction>> {
    let f: Arc<dyn MergeFunction> = match name {
        "max" => Arc::new(Extreme(Ordering::Greater)),
        "min" => Arc::new(Extreme(Ordering::Less)),
        "union" => Arc::new(Union),
        "concat" => Arc::new(Concat),
        _ => return None,
    };
    Some(f)
}

/// A total order over values: null < bools < numbers < texts < lists < maps; numbers
/// numerically, texts by code point, lists and maps element by element.
pub fn compare(a: &PlainValue, b: &PlainValue) -> Ordering {
    fn rank(v: &PlainValue) -> u8 {
        match v {
            PlainValue::Null => 0,
            PlainValue::Bool(_) => 1,
            PlainValue::Int(_) | PlainValue::Float(_) => 2,
            PlainValue::Text(_) => 3,
            PlainValue::List(_) => 4,
            PlainValue::Map(_) => 5,
        }
    }
    fn number(v: &PlainValue) -> f64 {
        match v {
            PlainValue::Int(i) => *i as f64,
            PlainValue::Float(f) => *f,
            _ => 0.0,
        }
    }
    match (a, b) {
        (PlainValue::Bool(x), PlainValue::Bool(y)) => x.cmp(y),
        (PlainValue::Int(x), PlainValue::Int(y)) => x.cmp(y),
        (
            x @ (PlainValue::Int(_) | PlainValue::Float(_)),
            y @ (PlainValue::Int(_) | PlainValue::Float(_)),
        ) => number(x).total_cmp(&number(y)),
        (PlainValue::Text(x), PlainValue::Text(y)) => x.cmp(y),
        (PlainValue::List(x), PlainValue::List(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (PlainValue::Map(x), PlainValue::Map(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| p.key.cmp(&q.key).then_with(|| compare(&p.value, &q.value)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `max` / `min`: the greatest (least) value by [`compare`].
struct Extreme(Ordering);

impl MergeFunction for Extreme {
    fn merge(&self, _path: String, values: Vec<ConcurrentValue>) -> PlainValue {
        values
            .into_iter()
            .map(|c| c.value)
            .reduce(|best, v| {
                if compare(&v, &best) == self.0 {
                    v
                } else {
                    best
                }
            })
            .unwrap_or(PlainValue::Null)
    }
}

/// `union`: maps merge key by key (the newer value of a key shared by several); otherwise
/// the distinct elements of every list (a non-list counts as a one-element list), sorted.
struct Union;

impl MergeFunction for Union {
    fn merge(&self, _path: String, values: Vec<ConcurrentValue>) -> PlainValue {
        if values.iter().all(|c| matches!(c.value, PlainValue::Map(_))) {
            let mut merged = BTreeMap::new();
            for c in values {
                if let PlainValue::Map(entries) = c.value {
                    for e in entries {
                        merged.insert(e.key, e.value);
                    }
                }
            }
            return PlainValue::Map(
                merged
                    .into_iter()
                    .map(|(key, value)| MapEntry { key, value })
                    .collect(),
            );
        }
        let mut items: Vec<PlainValue> = Vec::new();
        for c in values {
            let list = match c.value {
                PlainValue::List(list) => list,
                other => vec![other],
            };
            for item in list {
                if !items.iter().any(|i| compare(i, &item).is_eq()) {
                    items.push(item);
                }
            }
        }
        items.sort_by(compare);
        PlainValue::List(items)
    }
}

/// `concat`: in HLC order, texts joined with a newline; lists concatenated; anything else
/// collected into a list.
struct Concat;

impl MergeFunction for Concat {
    fn merge(&self, _path: String, values: Vec<ConcurrentValue>) -> PlainValue {
        if values
            .iter()
            .all(|c| matches!(c.value, PlainValue::Text(_)))
        {
            let texts: Vec<String> = values
                .into_iter()
                .filter_map(|c| match c.value {
                    PlainValue::Text(t) => Some(t),
                    _ => None,
                })
                .collect();
            return PlainValue::Text(texts.join("\n"));
        }
        let mut items = Vec::new();
        for c in values {
            match c.value {
                PlainValue::List(list) => items.extend(list),
                other => items.push(other),
            }
        }
        PlainValue::List(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(value: PlainValue, ms: u64, origin: &str) -> ConcurrentValue {
        ConcurrentValue {
            value,
            origin: origin.into(),
            hlc: Hlc {
                ms,
                counter: 0,
                origin: origin.into(),
            },
        }
    }

    #[test]
    fn builtins_merge_as_documented() {
        let nums = vec![
            at(PlainValue::Int(3), 1, "a"),
            at(PlainValue::Float(7.5), 2, "b"),
        ];
        let run = |name: &str, v: Vec<ConcurrentValue>| builtin(name).unwrap().merge("k".into(), v);
        assert_eq!(run("max", nums.clone()), PlainValue::Float(7.5));
        assert_eq!(run("min", nums), PlainValue::Int(3));
        let texts = vec![
            at(PlainValue::Text("x".into()), 1, "a"),
            at(PlainValue::Text("y".into()), 2, "b"),
        ];
        assert_eq!(
            run("concat", texts.clone()),
            PlainValue::Text("x\ny".into())
        );
        assert_eq!(
            run("union", texts),
            PlainValue::List(vec![
                PlainValue::Text("x".into()),
                PlainValue::Text("y".into())
            ])
        );
        assert!(builtin("nope").is_none());
    }
}

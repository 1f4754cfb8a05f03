//! Merge functions written in JavaScript, as core's `MergeFunction`: the JS function gets
//! `(path, values)` with `values` = `[{value, origin, hlc}]` (oldest first) and returns the
//! value to show.

use concord_core::policy::PlainValue;
use concord_core::{ConcurrentValue, MergeFunction};
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::convert::{from_json, to_json};

/// A JS function as a merge function.
pub struct JsMerge(pub js_sys::Function);

// SAFETY: wasm32 without threads: there is one thread, so the JS function is never touched
// from another one (core asks `Send + Sync` for its native hosts).
unsafe impl Send for JsMerge {}
unsafe impl Sync for JsMerge {}

impl MergeFunction for JsMerge {
    fn merge(&self, path: String, values: Vec<ConcurrentValue>) -> PlainValue {
        let list = js_sys::Array::new();
        for v in &values {
            let entry = serde_json::json!({
                "value": Value::from(v.value.clone()),
                "origin": v.origin,
                "hlc": v.hlc.encode(),
            });
            list.push(&from_json(&entry));
        }
        let fallback = values
            .last()
            .map(|v| v.value.clone())
            .unwrap_or(PlainValue::Null);
        match self
            .0
            .call2(&JsValue::NULL, &JsValue::from_str(&path), &list)
        {
            Ok(result) => match to_json(&result) {
                Ok(v) => PlainValue::from(&v),
                Err(_) => fallback,
            },
            Err(_) => fallback,
        }
    }
}

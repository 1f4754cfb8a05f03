//! Values between JavaScript and the engine: JSON values cross as JS values (through
//! `JSON.stringify`/`JSON.parse`), engine errors become JS `Error`s naming what was wrong.

use serde_json::Value;
use wasm_bindgen::{JsError, JsValue};

/// A JS value (anything `JSON.stringify` takes) as a JSON value.
pub fn to_json(value: &JsValue) -> Result<Value, JsError> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    let text: String = js_sys::JSON::stringify(value)
        .map_err(|_| JsError::new("value is not JSON-serialisable"))?
        .into();
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("bad value: {e}")))
}

/// A JSON value as a JS value.
pub fn from_json(value: &Value) -> JsValue {
    let text = value.to_string();
    js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)
}

/// An engine error as a JS `Error`.
pub fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

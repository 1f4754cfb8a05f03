//! The `Store` class JavaScript sees: documents of both kinds, edits and reads by path,
//! transactions, subscriptions, status, conflict policies (with merge functions written
//! in JS), and sync (`startSync(urls, token)` / `stopSync`) through the browser shell.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use concord_core::{DocKind, Policy, Reader, StoreOptions, Subscription, TextUnit, WallClock};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use crate::convert::{err, from_json, to_json};
use crate::merge::JsMerge;
use crate::sync_shell::Shell;

/// An open store (a device): one SQLite database, on OPFS when installed, else in memory.
#[wasm_bindgen]
pub struct Store {
    inner: concord_core::Store,
    sync: Option<Rc<RefCell<Shell>>>,
    status_listener: Option<js_sys::Function>,
    presence_listener: Option<js_sys::Function>,
    /// This device's presence per document (JSON), kept across `startSync`/`stopSync`.
    presence: std::collections::BTreeMap<String, Vec<u8>>,
}

/// A change subscription; `unsubscribe()` (or `free()`) ends it.
#[wasm_bindgen]
pub struct StoreSubscription {
    _sub: Option<Subscription>,
}

#[wasm_bindgen]
impl StoreSubscription {
    pub fn unsubscribe(&mut self) {
        self._sub = None;
    }
}

/// Options with the browser's clock, and the app's JS merge functions by name.
fn options(merges: &JsValue) -> Result<StoreOptions, JsError> {
    let mut reader = Reader::default();
    if merges.is_object() {
        let entries = js_sys::Object::entries(merges.unchecked_ref());
        for entry in entries.iter() {
            let pair: js_sys::Array = entry.unchecked_into();
            let name = pair.get(0).as_string().unwrap_or_default();
            let f: js_sys::Function = pair
                .get(1)
                .dyn_into()
                .map_err(|_| JsError::new(&format!("merge function {name:?} is not a function")))?;
            reader = reader.with_merge_function(&name, Arc::new(JsMerge(f)));
        }
    }
    Ok(StoreOptions {
        reader,
        // Text positions are JavaScript string indexes (UTF-16 code units), as in Yjs.
        text_unit: TextUnit::Utf16,
        wall_clock: WallClock::from_fn(|| js_sys::Date::now() as u64),
        ..StoreOptions::default()
    })
}

fn kind_of(kind: &str) -> Result<DocKind, JsError> {
    match kind {
        "automerge" => Ok(DocKind::Automerge),
        "yrs" => Ok(DocKind::Yrs),
        other => Err(JsError::new(&format!(
            "unknown document kind {other:?} (automerge or yrs)"
        ))),
    }
}

fn kind_name(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Automerge => "automerge",
        DocKind::Yrs => "yrs",
    }
}

#[wasm_bindgen]
impl Store {
    /// Opens (or creates) the store named `name` (a file in the OPFS pool once
    /// `installOpfs` succeeded). `mergeFunctions`: `{name: (path, values) => value}`.
    pub fn open(name: &str, merge_functions: JsValue) -> Result<Store, JsError> {
        let inner =
            concord_core::Store::open_with(name, options(&merge_functions)?).map_err(err)?;
        Ok(Store::wrap(inner))
    }

    /// A store in memory only (where OPFS is missing): lost when the page closes.
    #[wasm_bindgen(js_name = openInMemory)]
    pub fn open_in_memory(merge_functions: JsValue) -> Result<Store, JsError> {
        let inner =
            concord_core::Store::open_in_memory_with(options(&merge_functions)?).map_err(err)?;
        Ok(Store::wrap(inner))
    }

    fn wrap(inner: concord_core::Store) -> Store {
        Store {
            inner,
            sync: None,
            status_listener: None,
            presence_listener: None,
            presence: Default::default(),
        }
    }

    /// This device's id.
    #[wasm_bindgen(js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_string()
    }

    /// Creates document `id` of `kind` (`automerge` or `yrs`) unless it exists.
    #[wasm_bindgen(js_name = ensureDoc)]
    pub fn ensure_doc(&self, id: &str, kind: &str) -> Result<(), JsError> {
        self.inner.ensure_doc(id, kind_of(kind)?).map_err(err)
    }

    /// Every document: `[{id, kind}]`.
    pub fn documents(&self) -> Result<JsValue, JsError> {
        let docs = self.inner.list_docs().map_err(err)?;
        let list: Vec<Value> = docs
            .iter()
            .map(|d| json!({"id": d.id, "kind": kind_name(d.kind)}))
            .collect();
        Ok(from_json(&Value::Array(list)))
    }

    /// The value at `path` (as shown under the document's policies), or `null`.
    pub fn get(&self, id: &str, path: &str) -> Result<JsValue, JsError> {
        let value = self.inner.get(id, path).map_err(err)?;
        Ok(value.map(|v| from_json(&v)).unwrap_or(JsValue::NULL))
    }

    /// The whole document as JSON.
    #[wasm_bindgen(js_name = toJson)]
    pub fn to_json(&self, id: &str) -> Result<JsValue, JsError> {
        Ok(from_json(&self.inner.to_json(id).map_err(err)?))
    }

    /// Applies `ops` (see `txn.rs`) in one transaction: one commit, one update.
    pub fn transaction(&self, id: &str, ops: JsValue) -> Result<(), JsError> {
        let ops = to_json(&ops)?;
        let Value::Array(ops) = ops else {
            return Err(JsError::new("a transaction takes an array of operations"));
        };
        self.inner
            .transact(id, |txn| {
                for op in &ops {
                    crate::txn::apply(txn, op)?;
                }
                Ok(())
            })
            .map_err(err)
    }

    pub fn put(&self, id: &str, path: &str, value: JsValue) -> Result<(), JsError> {
        let value = to_json(&value)?;
        self.inner.transact(id, |t| t.put(path, value)).map_err(err)
    }

    pub fn delete(&self, id: &str, path: &str) -> Result<(), JsError> {
        self.inner.transact(id, |t| t.delete(path)).map_err(err)
    }

    pub fn push(&self, id: &str, path: &str, value: JsValue) -> Result<(), JsError> {
        let value = to_json(&value)?;
        self.inner
            .transact(id, |t| t.push(path, value))
            .map_err(err)
    }

    #[wasm_bindgen(js_name = spliceText)]
    pub fn splice_text(
        &self,
        id: &str,
        path: &str,
        index: usize,
        delete: usize,
        text: &str,
    ) -> Result<(), JsError> {
        self.inner
            .transact(id, |t| t.splice_text(path, index, delete, text))
            .map_err(err)
    }

    pub fn increment(&self, id: &str, path: &str, by: i64) -> Result<(), JsError> {
        self.inner
            .transact(id, |t| t.increment(path, by))
            .map_err(err)
    }

    /// Sets the conflict policy (`crdt`, `lww`, `keep-all`, `merge:<name>`) for paths
    /// matching `pattern`.
    #[wasm_bindgen(js_name = setPolicy)]
    pub fn set_policy(&self, id: &str, pattern: &str, policy: &str) -> Result<(), JsError> {
        let policy: Policy = policy.parse().map_err(|e: String| JsError::new(&e))?;
        self.inner.set_policy(id, pattern, &policy).map_err(err)
    }

    /// Every concurrent value at `path`: `[{value, hlc}]`, oldest first.
    #[wasm_bindgen(js_name = getAll)]
    pub fn get_all(&self, id: &str, path: &str) -> Result<JsValue, JsError> {
        let all = self.inner.get_all(id, path).map_err(err)?;
        let list: Vec<Value> = all
            .iter()
            .map(|v| json!({"value": v.value, "hlc": v.hlc.as_ref().map(|h| h.encode())}))
            .collect();
        Ok(from_json(&Value::Array(list)))
    }

    /// The paths holding unresolved keep-all conflicts.
    pub fn conflicts(&self, id: &str) -> Result<JsValue, JsError> {
        let paths = self.inner.conflicts(id).map_err(err)?;
        Ok(from_json(&json!(paths)))
    }

    /// Resolves the conflict at `path` with `value`.
    pub fn resolve(&self, id: &str, path: &str, value: JsValue) -> Result<(), JsError> {
        let value = to_json(&value)?;
        self.inner.resolve(id, path, value).map_err(err)
    }

    /// Calls `callback({docId, source})` after every change of `docId` (every document when
    /// `null`); `source` is `local` or `remote`.
    pub fn subscribe(
        &self,
        doc_id: Option<String>,
        callback: js_sys::Function,
    ) -> StoreSubscription {
        let callback = SendFn(callback);
        let sub = self.inner.subscribe(doc_id.as_deref(), move |event| {
            let source = match event.source {
                concord_core::ChangeSource::Local => "local",
                _ => "remote",
            };
            let e = from_json(&json!({"docId": event.doc_id, "source": source}));
            let _ = callback.0.call1(&JsValue::NULL, &e);
        });
        StoreSubscription { _sub: Some(sub) }
    }

    /// Per document: `[{id, kind, pending}]` (`pending`: updates not yet acknowledged).
    pub fn status(&self) -> Result<JsValue, JsError> {
        let docs = self.inner.status().map_err(err)?;
        let list: Vec<Value> = docs
            .iter()
            .map(|d| json!({"id": d.id, "kind": kind_name(d.kind), "pending": d.pending}))
            .collect();
        Ok(from_json(&Value::Array(list)))
    }

    /// Starts syncing with the relay whose nodes are at `urls` (`ws://host:port/sync`),
    /// reconnecting with backoff to the next node after a failure. Replaces a running sync.
    #[wasm_bindgen(js_name = startSync)]
    pub fn start_sync(&mut self, urls: Vec<String>, token: Option<String>) -> Result<(), JsError> {
        if urls.is_empty() {
            return Err(JsError::new("startSync needs at least one relay URL"));
        }
        self.stop_sync();
        let shell = Shell::start(
            self.inner.clone(),
            urls,
            token,
            self.status_listener.clone(),
        );
        shell.borrow_mut().presence_listener = self.presence_listener.clone();
        for (doc, state) in &self.presence {
            Shell::set_presence(&shell, doc, state.clone());
        }
        self.sync = Some(shell);
        Ok(())
    }

    /// Stops syncing (the store works on offline; edits wait in the outbox).
    #[wasm_bindgen(js_name = stopSync)]
    pub fn stop_sync(&mut self) {
        if let Some(shell) = self.sync.take() {
            Shell::stop(&shell);
            // Offline, nobody else is shown on the documents this device is present on:
            // told after the shell's last events, once this call has returned (as the
            // shell calls listeners).
            if let Some(listener) = self.presence_listener.clone() {
                let docs: Vec<String> = self.presence.keys().cloned().collect();
                wasm_bindgen_futures::spawn_local(async move {
                    for doc in docs {
                        let event = from_json(&json!({"docId": doc, "peers": []}));
                        let _ = listener.call1(&JsValue::NULL, &event);
                    }
                });
            }
        }
    }

    /// Sets this device's presence on `docId` (any JSON value: name, colour, cursor…;
    /// `null` withdraws it). Shown to the document's other subscribers on the same relay
    /// node while this device is connected; never stored.
    #[wasm_bindgen(js_name = setPresence)]
    pub fn set_presence(&mut self, doc_id: &str, state: JsValue) -> Result<(), JsError> {
        let value = to_json(&state)?;
        let bytes = if value.is_null() {
            Vec::new()
        } else {
            value.to_string().into_bytes()
        };
        if bytes.len() > concord_core::protocol::MAX_PRESENCE_BYTES {
            return Err(JsError::new(&format!(
                "a presence state of {} bytes is above the limit of {}",
                bytes.len(),
                concord_core::protocol::MAX_PRESENCE_BYTES
            )));
        }
        if bytes.is_empty() {
            self.presence.remove(doc_id);
        } else {
            self.presence.insert(doc_id.to_string(), bytes.clone());
        }
        if let Some(shell) = &self.sync {
            Shell::set_presence(shell, doc_id, bytes);
        }
        Ok(())
    }

    /// Calls `callback({docId, peers: [{peer, deviceId, state}]})` whenever who is present
    /// on a document changes (peers join, change, leave, time out, or this device's
    /// connection drops: then nobody is shown).
    #[wasm_bindgen(js_name = onPresence)]
    pub fn on_presence(&mut self, callback: js_sys::Function) {
        self.presence_listener = Some(callback.clone());
        if let Some(shell) = &self.sync {
            shell.borrow_mut().presence_listener = Some(callback);
        }
    }

    /// Calls `callback(status)` whenever the sync status changes.
    #[wasm_bindgen(js_name = onSyncStatus)]
    pub fn on_sync_status(&mut self, callback: js_sys::Function) {
        self.status_listener = Some(callback.clone());
        if let Some(shell) = &self.sync {
            shell.borrow_mut().listener = Some(callback);
        }
    }

    /// `{syncing, connected, retries, lastError, maxLsn, pending: {doc: n}}`.
    #[wasm_bindgen(js_name = syncStatus)]
    pub fn sync_status(&self) -> JsValue {
        let base = match &self.sync {
            Some(shell) => shell.borrow().status_json(),
            None => json!({"syncing": false, "connected": false, "retries": 0,
                "lastError": null, "maxLsn": 0}),
        };
        let mut base = base;
        let pending: serde_json::Map<String, Value> = self
            .inner
            .status()
            .map(|docs| docs.into_iter().map(|d| (d.id, json!(d.pending))).collect())
            .unwrap_or_default();
        base["pending"] = Value::Object(pending);
        from_json(&base)
    }
}

/// A JS function a store callback may hold (core asks `Send + Sync`).
struct SendFn(js_sys::Function);
// SAFETY: wasm32 without threads has one thread; the function never leaves it.
unsafe impl Send for SendFn {}
unsafe impl Sync for SendFn {}

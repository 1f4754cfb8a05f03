//! The browser sync shell: the browser `WebSocket` and a `setTimeout` timer around core's
//! sans-IO `ClientDriver`, nothing else. Socket events and the timer feed the driver
//! (`handle_*`); the shell then drains `poll_event` and does what it says (connect, send,
//! close) and re-arms the timer at `poll_timeout`. Backoff, URL rotation over the cluster's
//! nodes, keepalive and fatal errors are the driver's decisions.
//!
//! Everything runs on the Worker's one thread; callbacks hold a weak reference and a
//! connection number, so a late event of an abandoned socket is ignored.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use concord_core::sync::{
    Backoff, ClientConfig, ClientDriver, ClientStatus, Disconnect, DriverEvent, DriverMode,
    OsRandom,
};
use concord_core::{ChangeSource, Store, Subscription};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// The open socket and the closures it calls (kept alive while it is open).
struct Socket {
    ws: WebSocket,
    opened: bool,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// The state of one running sync.
pub struct Shell {
    driver: ClientDriver<Store, OsRandom>,
    origin: f64,
    socket: Option<Socket>,
    /// Numbers connections; events of an older one are ignored.
    generation: u32,
    timer: Option<(i32, Closure<dyn FnMut()>)>,
    /// Closures of retired sockets and timers, dropped from a later task (never while one
    /// of them runs).
    graveyard: Rc<RefCell<Vec<Box<dyn std::any::Any>>>>,
    status: ClientStatus,
    ended: bool,
    _local: Option<Subscription>,
    pub listener: Option<js_sys::Function>,
    pub presence_listener: Option<js_sys::Function>,
    /// Documents whose peers changed since the listener was last called.
    presence_changed: Vec<String>,
    me: Weak<RefCell<Shell>>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn global() -> js_sys::Object {
    js_sys::global()
}

/// `setTimeout(f, ms)` on the Worker or window.
fn set_timeout(f: &Closure<dyn FnMut()>, ms: i32) -> i32 {
    let set: js_sys::Function = js_sys::Reflect::get(&global(), &"setTimeout".into())
        .expect("setTimeout")
        .unchecked_into();
    set.call2(&JsValue::NULL, f.as_ref(), &JsValue::from(ms))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0) as i32
}

fn clear_timeout(id: i32) {
    if let Ok(clear) = js_sys::Reflect::get(&global(), &"clearTimeout".into()) {
        let clear: js_sys::Function = clear.unchecked_into();
        let _ = clear.call1(&JsValue::NULL, &JsValue::from(id));
    }
}

/// A JS callback the store's subscription may hold (core asks `Send + Sync`).
struct LocalNotify(Weak<RefCell<Shell>>);
// SAFETY: wasm32 without threads has one thread; the reference never leaves it.
unsafe impl Send for LocalNotify {}
unsafe impl Sync for LocalNotify {}

impl LocalNotify {
    fn shell(&self) -> Weak<RefCell<Shell>> {
        self.0.clone()
    }
}

impl Shell {
    /// Starts syncing `store` with the nodes at `urls`.
    pub fn start(
        store: Store,
        urls: Vec<String>,
        token: Option<String>,
        listener: Option<js_sys::Function>,
    ) -> Rc<RefCell<Shell>> {
        let origin = now_ms();
        let config = ClientConfig {
            token,
            ..ClientConfig::default()
        };
        let backoff = Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
        };
        let driver = ClientDriver::new(
            store.clone(),
            config,
            urls,
            DriverMode::Background { backoff },
            OsRandom,
            Duration::ZERO,
        );
        let shell = Rc::new_cyclic(|me| {
            RefCell::new(Shell {
                driver,
                origin,
                socket: None,
                generation: 0,
                timer: None,
                graveyard: Rc::default(),
                status: ClientStatus::default(),
                ended: false,
                _local: None,
                listener,
                presence_listener: None,
                presence_changed: Vec::new(),
                me: me.clone(),
            })
        });
        // Local commits are sent as they happen; the callback runs inside the commit, so
        // the driver is fed from a fresh task.
        let notify = LocalNotify(Rc::downgrade(&shell));
        let sub = store.subscribe(None, move |event| {
            if event.source != ChangeSource::Local {
                return;
            }
            let weak = notify.shell();
            let doc = event.doc_id.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(shell) = weak.upgrade() {
                    Shell::feed(&shell, |s, now| s.driver.handle_local_change(now, &doc));
                }
            });
        });
        shell.borrow_mut()._local = Some(sub);
        Shell::feed(&shell, |_, _| {});
        shell
    }

    /// Stops: applies the updates the driver holds, closes the socket, tells the status
    /// listener (not syncing, not connected), drops the timer; late events find nothing.
    pub fn stop(shell: &Rc<RefCell<Shell>>) {
        // The driver's last events (the close, its final status, the end) are carried out
        // as any others are, and the listener is called after the shell is released.
        Shell::feed(shell, |s, _| s.driver.stop());
        let mut s = shell.borrow_mut();
        s.ended = true;
        s.generation += 1;
        s.drop_socket();
        if let Some((id, closure)) = s.timer.take() {
            clear_timeout(id);
            s.bury(Box::new(closure));
        }
        s._local = None;
    }

    fn now(&self) -> Duration {
        Duration::from_secs_f64(((now_ms() - self.origin).max(0.0)) / 1000.0)
    }

    /// Sets this device's presence on `doc_id` (empty: withdraws it).
    pub fn set_presence(shell: &Rc<RefCell<Shell>>, doc_id: &str, state: Vec<u8>) {
        Shell::feed(shell, |s, now| s.driver.set_presence(now, doc_id, state));
    }

    /// `{docId, peers: [{peer, deviceId, state}]}` for one document.
    fn presence_json(&self, doc_id: &str) -> Value {
        let peers: Vec<Value> = self
            .driver
            .presence(doc_id)
            .into_iter()
            .map(|p| {
                let state: Value = serde_json::from_slice(&p.state).unwrap_or(Value::Null);
                json!({"peer": p.peer, "deviceId": p.device_id.to_string(), "state": state})
            })
            .collect();
        json!({"docId": doc_id, "peers": peers})
    }

    /// Runs `f` on the driver, then carries out its events and re-arms the timer. Status
    /// and presence listeners are called after the shell is released, from a task of
    /// their own.
    fn feed(shell: &Rc<RefCell<Shell>>, f: impl FnOnce(&mut Shell, Duration)) {
        let (status, presence) = {
            let mut s = shell.borrow_mut();
            if s.ended {
                return;
            }
            let now = s.now();
            f(&mut s, now);
            let changed = s.drain();
            s.arm_timer();
            let status = changed
                .then(|| s.listener.clone().map(|l| (l, s.status_json())))
                .flatten();
            let docs = std::mem::take(&mut s.presence_changed);
            let presence: Vec<(js_sys::Function, Value)> = match &s.presence_listener {
                Some(l) => docs
                    .iter()
                    .map(|d| (l.clone(), s.presence_json(d)))
                    .collect(),
                None => Vec::new(),
            };
            (status, presence)
        };
        if status.is_none() && presence.is_empty() {
            return;
        }
        // Called once the current call has returned: a listener may then use the store
        // (`syncStatus()`, say) even when this ran inside one of its methods (`stopSync`,
        // `startSync`, `setPresence`), which hold it borrowed.
        wasm_bindgen_futures::spawn_local(async move {
            if let Some((listener, status)) = status {
                let _ = listener.call1(&JsValue::NULL, &crate::convert::from_json(&status));
            }
            for (listener, event) in presence {
                let _ = listener.call1(&JsValue::NULL, &crate::convert::from_json(&event));
            }
        });
    }

    /// Carries out the driver's events; true when the status changed.
    fn drain(&mut self) -> bool {
        let mut changed = false;
        while let Some(event) = self.driver.poll_event() {
            match event {
                DriverEvent::Connect(url) => self.connect(&url),
                DriverEvent::Transmit(frame) => {
                    let sent = match &self.socket {
                        Some(sock) => sock.ws.send_with_u8_array(&frame).is_ok(),
                        None => true,
                    };
                    if !sent {
                        self.drop_socket();
                        let now = self.now();
                        self.driver
                            .handle_disconnected(now, Disconnect::Lost("send failed".into()));
                    }
                }
                DriverEvent::Close => self.drop_socket(),
                DriverEvent::Status(status) => {
                    self.status = status;
                    changed = true;
                }
                DriverEvent::Acked(_) => changed = true,
                DriverEvent::Presence(doc) => {
                    if !self.presence_changed.contains(&doc) {
                        self.presence_changed.push(doc);
                    }
                }
                DriverEvent::Refused(e) => {
                    web_sys::console::warn_1(
                        &format!("the relay refused {:?}: {}", e.doc_id, e.message).into(),
                    );
                }
                DriverEvent::Ended(result) => {
                    if let Err(e) = result {
                        self.status.last_error = Some(e.to_string());
                    }
                    self.ended = true;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Closes the socket (if any); its events are ignored from now on.
    fn drop_socket(&mut self) {
        self.generation += 1;
        if let Some(sock) = self.socket.take() {
            sock.ws.set_onopen(None);
            sock.ws.set_onmessage(None);
            sock.ws.set_onclose(None);
            let _ = sock.ws.close();
            for h in sock.handlers {
                self.bury(Box::new(h));
            }
        }
    }

    /// Drops `closure` from a later task (it may be the one running now).
    fn bury(&self, closure: Box<dyn std::any::Any>) {
        let first = self.graveyard.borrow().is_empty();
        self.graveyard.borrow_mut().push(closure);
        if first {
            let graveyard = self.graveyard.clone();
            wasm_bindgen_futures::spawn_local(async move {
                graveyard.borrow_mut().clear();
            });
        }
    }

    fn arm_timer(&mut self) {
        if let Some((id, closure)) = self.timer.take() {
            clear_timeout(id);
            self.bury(Box::new(closure));
        }
        if self.ended {
            return;
        }
        let Some(at) = self.driver.poll_timeout() else {
            return;
        };
        let wait = at.saturating_sub(self.now()).as_millis().min(60_000) as i32;
        let weak = self.me.clone();
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(shell) = weak.upgrade() {
                Shell::feed(&shell, |s, now| {
                    if let Some((_, closure)) = s.timer.take() {
                        s.bury(Box::new(closure));
                    }
                    s.driver.handle_timeout(now)
                });
            }
        });
        let id = set_timeout(&closure, wait);
        self.timer = Some((id, closure));
    }

    fn connect(&mut self, url: &str) {
        self.drop_socket();
        let generation = self.generation;
        let ws = match WebSocket::new(url) {
            Ok(ws) => ws,
            Err(e) => {
                let now = self.now();
                let reason = format!("{e:?}");
                let url = url.to_string();
                // Reported from a fresh task: the driver is mid-drain here.
                let weak = self.me.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    if let Some(shell) = weak.upgrade() {
                        Shell::feed(&shell, |s, _| {
                            s.driver
                                .handle_disconnected(now, Disconnect::ConnectFailed { url, reason })
                        });
                    }
                });
                return;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let url = url.to_string();
        let on = |weak: Weak<RefCell<Shell>>, f: fn(&mut Shell, Duration, JsValue, &str)| {
            let url = url.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                if let Some(shell) = weak.upgrade() {
                    if shell.borrow().generation != generation {
                        return;
                    }
                    Shell::feed(&shell, |s, now| f(s, now, event, &url));
                }
            })
        };
        let open = on(self.me.clone(), |s, now, _, _| {
            if let Some(sock) = s.socket.as_mut() {
                sock.opened = true;
            }
            s.driver.handle_connected(now)
        });
        let message = on(self.me.clone(), |s, now, event, _| {
            let event: MessageEvent = event.unchecked_into();
            let data = event.data();
            if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                let bytes = js_sys::Uint8Array::new(buf).to_vec();
                s.driver.handle_frame(now, &bytes);
            }
        });
        let close = on(self.me.clone(), |s, now, event, url| {
            let event: CloseEvent = event.unchecked_into();
            let was_open = s.socket.as_ref().is_some_and(|sock| sock.opened);
            s.drop_socket();
            let reason = if !was_open {
                Disconnect::ConnectFailed {
                    url: url.to_string(),
                    reason: format!("closed ({})", event.code()),
                }
            } else if event.code() == 1000 || event.code() == 1005 || event.code() == 1006 {
                Disconnect::Lost(format!("closed by the relay ({})", event.code()))
            } else {
                Disconnect::Closed {
                    code: event.code(),
                    reason: event.reason(),
                }
            };
            s.driver.handle_disconnected(now, reason);
        });
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        self.socket = Some(Socket {
            ws,
            opened: false,
            handlers: vec![open, message, close],
        });
    }

    /// The sync status as JSON (the pending counts are added by the store).
    pub fn status_json(&self) -> Value {
        json!({
            "syncing": !self.ended,
            "connected": self.status.connected,
            "retries": self.status.retries,
            "lastError": self.status.last_error,
            "maxLsn": self.status.max_lsn,
            "stopped": self.status.stopped.as_ref().map(|e| e.message.clone()),
        })
    }
}

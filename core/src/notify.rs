//! Change notifications: callbacks registered per document (or for all documents),
//! told about local commits and remote updates alike.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::vv::VersionVector;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    /// A commit on this device.
    Local,
    /// Updates received from a peer (through the relay).
    Remote,
}

/// A document changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub doc_id: String,
    pub source: ChangeSource,
    /// The document's version vector after the change, shared with the store: a document
    /// may know tens of thousands of origins, and the store makes no copy of them for an
    /// event (a listener that keeps it makes the next commit copy it once).
    pub version: Arc<VersionVector>,
}

type Callback = Arc<dyn Fn(&ChangeEvent) + Send + Sync>;

struct Listener {
    id: u64,
    doc_id: Option<String>,
    callback: Callback,
}

/// The registered listeners of one store.
#[derive(Default, Clone)]
pub(crate) struct Listeners {
    next_id: Arc<AtomicU64>,
    list: Arc<Mutex<Vec<Listener>>>,
}

impl Listeners {
    pub(crate) fn add(&self, doc_id: Option<String>, callback: Callback) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.list.lock().expect("listener lock").push(Listener {
            id,
            doc_id,
            callback,
        });
        Subscription {
            id,
            listeners: self.clone(),
        }
    }

    /// Calls every matching listener. Must be called without the store lock held, so that
    /// callbacks may read the store.
    pub(crate) fn emit(&self, events: &[ChangeEvent]) {
        if events.is_empty() {
            return;
        }
        let matching: Vec<(Option<String>, Callback)> = self
            .list
            .lock()
            .expect("listener lock")
            .iter()
            .map(|l| (l.doc_id.clone(), l.callback.clone()))
            .collect();
        for event in events {
            for (filter, callback) in &matching {
                if filter.as_deref().is_none_or(|d| d == event.doc_id) {
                    callback(event);
                }
            }
        }
    }
}

/// Keeps a change listener registered; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    listeners: Listeners,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut list) = self.listeners.list.lock() {
            list.retain(|l| l.id != self.id);
        }
    }
}

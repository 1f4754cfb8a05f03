//! Change listeners (a foreign trait) and the background thread that calls them: core's
//! callbacks only queue events, so a host listener never runs on the caller's thread nor
//! holds up a commit, and one that throws is contained.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use crate::types::ChangeEvent;

/// Told about every change (local commit or remote update) of the documents it watches.
/// Called on a background thread, one event at a time, in order.
#[uniffi::export(foreign)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, event: ChangeEvent);
}

type Job = Box<dyn FnOnce() + Send>;

/// One thread that runs host callbacks in order, for one store.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    jobs: Arc<Mutex<Sender<Job>>>,
}

impl Dispatcher {
    pub(crate) fn new() -> Dispatcher {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("concord-callbacks".into())
            .spawn(move || {
                // Ends when every sender (the store and its subscriptions) is gone.
                while let Ok(job) = rx.recv() {
                    // A host callback that throws panics in uniffi's glue: contain it.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .expect("spawn the callback thread");
        Dispatcher {
            jobs: Arc::new(Mutex::new(tx)),
        }
    }

    /// Queues `job` to run on the callback thread.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        if let Ok(jobs) = self.jobs.lock() {
            let _ = jobs.send(Box::new(job));
        }
    }
}

/// Keeps a listener registered. `cancel()` (or dropping it) unregisters it.
#[derive(uniffi::Object)]
pub struct Subscription {
    inner: Mutex<Option<concord_core::Subscription>>,
}

impl Subscription {
    pub(crate) fn new(inner: concord_core::Subscription) -> Subscription {
        Subscription {
            inner: Mutex::new(Some(inner)),
        }
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops the listener (events already queued may still arrive).
    pub fn cancel(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.take();
        }
    }
}

/// Registers `listener` with core: each event is queued to the dispatcher.
pub(crate) fn listen(
    store: &concord_core::Store,
    doc_id: Option<&str>,
    dispatcher: &Dispatcher,
    listener: Arc<dyn ChangeListener>,
) -> Arc<Subscription> {
    let dispatcher = dispatcher.clone();
    let inner = store.subscribe(doc_id, move |event| {
        let (listener, event) = (listener.clone(), ChangeEvent::from(event));
        dispatcher.run(move || listener.on_change(event));
    });
    Arc::new(Subscription::new(inner))
}

//! Documents, and devices' origins on them, with writes proposed by this leader and not
//! yet applied here.
//!
//! Validation checks sequence numbers against the applied state, so a device's next update
//! can look like a gap while its previous one is still being committed: under the `leader`
//! write concern the device is acknowledged (and sends on) as soon as the leader's log
//! holds the previous one. Such a write waits here until the document's earlier writes
//! are applied.
//!
//! And a write of an origin on a document is validated only while no other write of that
//! origin on it is in flight (checked and registered under the storage lock, with the
//! validation): two connections sending the same (origin, seq) with different bytes (a
//! device's copy running elsewhere) were both validated against the applied state, both
//! proposed, and the second, skipped as held when applied, was acknowledged although its
//! bytes were never stored. Now the second waits, and is refused `seq_conflict`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use concord_core::Origin;
use tokio::sync::Notify;

/// What a write in flight holds: its document, and each origin it writes on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Doc(String),
    Writer(String, Origin),
}

/// Counts of proposed, unapplied writes per key.
#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashMap<Key, usize>>,
    changed: Notify,
}

/// Marks keys as having a write in flight until dropped (once the write is applied or
/// has failed).
pub struct InFlightGuard {
    owner: Arc<InFlight>,
    keys: BTreeSet<Key>,
}

impl InFlight {
    /// `docs`, and the `writers` (document, origin) among them, have a write in flight
    /// until the guard drops.
    pub fn begin(
        self: &Arc<Self>,
        docs: BTreeSet<String>,
        writers: BTreeSet<(String, Origin)>,
    ) -> InFlightGuard {
        let keys: BTreeSet<Key> = docs
            .into_iter()
            .map(Key::Doc)
            .chain(writers.into_iter().map(|(d, o)| Key::Writer(d, o)))
            .collect();
        let mut counts = self.lock();
        for key in &keys {
            *counts.entry(key.clone()).or_default() += 1;
        }
        InFlightGuard {
            owner: self.clone(),
            keys,
        }
    }

    /// Whether `doc` has a write in flight.
    pub fn busy(&self, doc: &str) -> bool {
        self.lock().contains_key(&Key::Doc(doc.to_string()))
    }

    /// Whether any of `writers` (document, origin) has a write in flight.
    pub fn any_writer_busy(&self, writers: &BTreeSet<(String, Origin)>) -> bool {
        let counts = self.lock();
        writers
            .iter()
            .any(|(d, o)| counts.contains_key(&Key::Writer(d.clone(), o.clone())))
    }

    /// Waits until `doc` has no write in flight; false when `deadline` passes first.
    pub async fn settled(&self, doc: &str, deadline: Instant) -> bool {
        self.until(deadline, || !self.busy(doc)).await
    }

    /// Waits until none of `writers` has a write in flight; false when `deadline` passes
    /// first.
    pub async fn writers_settled(
        &self,
        writers: &BTreeSet<(String, Origin)>,
        deadline: Instant,
    ) -> bool {
        self.until(deadline, || !self.any_writer_busy(writers))
            .await
    }

    async fn until(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline.into(), changed)
                .await
                .is_err()
            {
                return done();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, usize>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self.owner.lock();
        for key in &self.keys {
            if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
        drop(counts);
        self.owner.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_document_settles_when_its_last_write_is_done() {
        let in_flight = Arc::new(InFlight::default());
        let docs = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let first = in_flight.begin(docs(&["a", "b"]), BTreeSet::new());
        let second = in_flight.begin(docs(&["a"]), BTreeSet::new());
        assert!(in_flight.busy("a") && in_flight.busy("b") && !in_flight.busy("c"));
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(!in_flight.settled("a", soon).await, "still in flight");
        drop(first);
        assert!(in_flight.busy("a") && !in_flight.busy("b"));
        let waiter = {
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                in_flight
                    .settled("a", Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(second);
        assert!(waiter.await.unwrap(), "settles once the last write is done");
    }

    #[tokio::test]
    async fn a_writer_is_busy_on_a_document_while_its_write_is_in_flight() {
        let in_flight = Arc::new(InFlight::default());
        let me = Origin::from("device-a".to_string());
        let writer =
            |doc: &str, origin: &Origin| BTreeSet::from([(doc.to_string(), origin.clone())]);
        let guard = in_flight.begin(BTreeSet::from(["a".to_string()]), writer("a", &me));
        assert!(in_flight.any_writer_busy(&writer("a", &me)));
        assert!(
            !in_flight.any_writer_busy(&writer("b", &me)),
            "another document"
        );
        let other = Origin::from("device-b".to_string());
        assert!(
            !in_flight.any_writer_busy(&writer("a", &other)),
            "another origin"
        );
        let waiter = {
            let in_flight = in_flight.clone();
            let mine = writer("a", &me);
            tokio::spawn(async move {
                in_flight
                    .writers_settled(&mine, Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        assert!(waiter.await.unwrap());
        assert!(!in_flight.busy("a"));
    }
}

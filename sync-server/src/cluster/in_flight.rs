//! Documents with writes proposed by this leader and not yet applied here. Validation
//! checks sequence numbers against the applied state, so a device's next update can look
//! like a gap while its previous one is still being committed: under the `leader` write
//! concern the device is acknowledged (and sends on) as soon as the leader's log holds the
//! previous one. Such a write waits here until the document's earlier writes are applied.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// Counts of proposed, unapplied writes per document.
#[derive(Default)]
pub struct InFlight {
    docs: Mutex<HashMap<String, usize>>,
    changed: Notify,
}

/// Marks documents as having a write in flight until dropped (once the write is applied or
/// has failed).
pub struct InFlightGuard {
    owner: Arc<InFlight>,
    docs: BTreeSet<String>,
}

impl InFlight {
    /// `docs` have a write in flight until the guard drops.
    pub fn begin(self: &Arc<Self>, docs: BTreeSet<String>) -> InFlightGuard {
        let mut counts = self.lock();
        for doc in &docs {
            *counts.entry(doc.clone()).or_default() += 1;
        }
        InFlightGuard {
            owner: self.clone(),
            docs,
        }
    }

    /// Whether `doc` has a write in flight.
    pub fn busy(&self, doc: &str) -> bool {
        self.lock().contains_key(doc)
    }

    /// Waits until `doc` has no write in flight; false when `deadline` passes first.
    pub async fn settled(&self, doc: &str, deadline: Instant) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.busy(doc) {
                return true;
            }
            if tokio::time::timeout_at(deadline.into(), changed)
                .await
                .is_err()
            {
                return !self.busy(doc);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self.owner.lock();
        for doc in &self.docs {
            if let Some(n) = counts.get_mut(doc) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(doc);
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
        let first = in_flight.begin(docs(&["a", "b"]));
        let second = in_flight.begin(docs(&["a"]));
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
}

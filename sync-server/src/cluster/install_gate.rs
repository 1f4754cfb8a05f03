//! Keeps the consensus log from being purged past what the state machine holds while a
//! snapshot is being installed. openraft 0.9 purges a follower's log up to a received
//! snapshot's last entry as soon as it hands the snapshot to the state machine, without
//! waiting for the install to finish: a crash in between left a node whose log no longer
//! held the entries its state machine (still at its old position) needed to catch up, and
//! the node could not start again. A purge past the state machine's position waits here
//! for an install under way; if the install failed, only what the state machine holds is
//! purged.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// The longest a purge waits for an install under way.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Shared by a node's log store and state machine.
#[derive(Default)]
pub struct InstallGate {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// A snapshot is being received or installed.
    receiving: bool,
    /// The log index the state machine has applied durably.
    applied: u64,
}

impl InstallGate {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state machine holds everything up to `index` durably.
    pub fn applied(&self, index: u64) {
        let mut state = self.lock();
        state.applied = state.applied.max(index);
    }

    /// A snapshot begins to arrive.
    pub fn receiving(&self) {
        self.lock().receiving = true;
    }

    /// The install ended: at `installed` (the snapshot's last index) when it succeeded.
    pub fn installed(&self, installed: Option<u64>) {
        {
            let mut state = self.lock();
            state.receiving = false;
            if let Some(index) = installed {
                state.applied = index;
            }
        }
        self.changed.notify_waiters();
    }

    /// How far a purge asked to go up to `upto` may go: all the way unless it passes what
    /// the state machine holds while a snapshot is being installed; then it waits (bounded)
    /// for the install, and goes no further than what the state machine then holds.
    pub async fn purge_limit(&self, upto: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut waited = false;
        loop {
            let changed = self.changed.notified();
            {
                let state = self.lock();
                if upto <= state.applied || (!state.receiving && !waited) {
                    return upto;
                }
                if !state.receiving {
                    return upto.min(state.applied);
                }
            }
            waited = true;
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return upto.min(self.lock().applied);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_purge_past_the_state_machine_waits_for_the_install_under_way() {
        let gate = Arc::new(InstallGate::default());
        gate.applied(10);
        assert_eq!(gate.purge_limit(8).await, 8, "within what is applied");
        assert_eq!(gate.purge_limit(50).await, 50, "no install: as asked");
        gate.receiving();
        assert_eq!(gate.purge_limit(9).await, 9, "within what is applied");
        let purge = tokio::spawn({
            let gate = gate.clone();
            async move { gate.purge_limit(50).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!purge.is_finished(), "waits for the install");
        gate.installed(Some(50));
        assert_eq!(purge.await.unwrap(), 50);
    }

    #[tokio::test]
    async fn after_a_failed_install_a_purge_keeps_what_the_state_machine_lacks() {
        let gate = Arc::new(InstallGate::default());
        gate.applied(10);
        gate.receiving();
        let purge = tokio::spawn({
            let gate = gate.clone();
            async move { gate.purge_limit(50).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.installed(None);
        assert_eq!(purge.await.unwrap(), 10);
    }
}

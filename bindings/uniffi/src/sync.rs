//! Sync for the bindings: `startSync` runs core's native `SyncClient` on an internal tokio
//! runtime (reconnecting, rotating through the node URLs) and reports its connection state
//! to a foreign `SyncStateListener`; `stopSync` ends it; `syncOnce` syncs until caught up.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use concord_core::native_client::{self, Backoff, ClientStatus, SyncClient};
use concord_core::sync::ClientConfig;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::error::{guard, panic_text, ConcordError};
use crate::store::{Shared, Store};

/// The relay's refusal that stopped a background sync for good.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncRefusal {
    /// The relay's error code (`unauthorized`, `token_expired`, ...).
    pub code: String,
    pub message: String,
}

/// The background sync's state.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncState {
    pub running: bool,
    pub connected: bool,
    /// Reconnect attempts since the last successful connection.
    pub retries: u32,
    pub last_error: Option<String>,
    /// Set when the relay refused the connection for good: sync has stopped.
    pub refused: Option<SyncRefusal>,
    /// The highest relay log position seen.
    pub max_lsn: u64,
    /// Unacknowledged local updates per document.
    pub pending: HashMap<String, u64>,
}

impl SyncState {
    fn from_status(s: ClientStatus, running: bool) -> SyncState {
        SyncState {
            running: running && s.stopped.is_none(),
            connected: s.connected,
            retries: s.retries,
            last_error: s.last_error,
            refused: s.stopped.map(|f| SyncRefusal {
                code: f.code.name().to_string(),
                message: f.message,
            }),
            max_lsn: s.max_lsn,
            pending: s.pending.into_iter().map(|(k, v)| (k, v as u64)).collect(),
        }
    }
}

/// Told every time the background sync's connection state changes, on a background thread.
#[uniffi::export(foreign)]
pub trait SyncStateListener: Send + Sync {
    fn on_state(&self, state: SyncState);
}

/// A running background sync.
pub(crate) struct Running {
    client: SyncClient,
    watcher: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

/// The runtime sync runs on (two worker threads, shared by every store).
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("concord-sync")
            .enable_all()
            .build()
            .expect("start the sync runtime")
    })
}

fn config(token: Option<String>) -> ClientConfig {
    ClientConfig {
        token,
        ..ClientConfig::default()
    }
}

fn check_urls(urls: &[String]) -> Result<(), ConcordError> {
    if urls.is_empty() {
        return Err(ConcordError::InvalidValue {
            detail: "startSync needs at least one relay URL".into(),
        });
    }
    match urls
        .iter()
        .find(|u| !(u.starts_with("ws://") || u.starts_with("wss://")))
    {
        Some(bad) => Err(ConcordError::InvalidValue {
            detail: format!("{bad:?} is not a ws:// or wss:// URL"),
        }),
        None => Ok(()),
    }
}

#[uniffi::export]
impl Store {
    /// Starts syncing every document with the relay whose nodes are at `urls` (tried in
    /// turn), in the background: local edits are sent as they commit, remote ones arrive
    /// as they happen, and a lost connection is retried with backoff. `listener`, if any,
    /// is told each connection state. Replaces a sync already running.
    pub fn start_sync(
        &self,
        urls: Vec<String>,
        token: Option<String>,
        listener: Option<Arc<dyn SyncStateListener>>,
    ) -> Result<(), ConcordError> {
        guard(|| {
            check_urls(&urls)?;
            let shared = self.shared.clone();
            let _enter = runtime().enter();
            let client = SyncClient::spawn(
                shared.store.clone(),
                urls,
                config(token),
                Backoff {
                    initial: Duration::from_millis(100),
                    max: Duration::from_secs(5),
                },
            );
            let watcher = listener.map(|listener| {
                let mut changes = client.status_changes();
                let dispatcher = shared.dispatcher.clone();
                runtime().spawn(async move {
                    while changes.changed().await.is_ok() {
                        let state =
                            SyncState::from_status(changes.borrow_and_update().clone(), true);
                        let listener = listener.clone();
                        dispatcher.run(move || listener.on_state(state));
                    }
                })
            });
            let previous = shared
                .sync
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace(Running { client, watcher });
            drop(previous);
            Ok(())
        })
    }

    /// Stops the background sync (at once; edits keep committing locally).
    pub fn stop_sync(&self) {
        let running = self
            .shared
            .sync
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(running);
    }

    /// The background sync's state now (`running` false when none runs).
    pub fn sync_state(&self) -> SyncState {
        let sync = self.shared.sync.lock().unwrap_or_else(|p| p.into_inner());
        match sync.as_ref() {
            Some(r) => SyncState::from_status(r.client.status(), true),
            None => SyncState::from_status(status_without_client(&self.shared), false),
        }
    }

    /// Connects, syncs every document until this device and the relay hold the same
    /// updates, and returns. `SyncRefused` when the relay refuses (e.g. `unauthorized`),
    /// `Network` when it cannot be reached within `timeout_ms`.
    pub async fn sync_once(
        &self,
        urls: Vec<String>,
        token: Option<String>,
        timeout_ms: u64,
    ) -> Result<(), ConcordError> {
        check_urls(&urls)?;
        let store = self.shared.store.clone();
        let task = runtime().spawn(async move {
            let timeout = Duration::from_millis(timeout_ms);
            native_client::sync_once(&store, urls, config(token), timeout).await
        });
        match task.await {
            Ok(result) => Ok(result?),
            Err(e) if e.is_panic() => Err(ConcordError::Panic {
                detail: panic_text(e.into_panic().as_ref()),
            }),
            Err(e) => Err(ConcordError::Network {
                detail: e.to_string(),
            }),
        }
    }
}

fn status_without_client(shared: &Shared) -> ClientStatus {
    ClientStatus {
        pending: shared
            .store
            .status()
            .map(|docs| docs.into_iter().map(|d| (d.id, d.pending)).collect())
            .unwrap_or_default(),
        ..ClientStatus::default()
    }
}

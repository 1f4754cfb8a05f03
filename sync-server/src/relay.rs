//! The relay's shared state and its [`RelayBackend`] for one connection: validates updates
//! against stored state, appends them durably, then fans them out.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use concord_core::doc::validate_update;
use concord_core::protocol::{self, ErrorCode, Message, Updates};
use concord_core::sync::{AppendOutcome, CatchupData, RelayBackend, RelayRefusal, Rights};
use concord_core::{DocKind, Origin, UpdateRecord, VersionVector};

use crate::auth::Auth;
use crate::hub::{ConnId, ConnQueue, Hub};
use crate::storage::{LogEntry, Storage, StorageError};

/// Limits and identity of a relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub server_id: String,
    pub max_frame_bytes: usize,
    pub max_queue: usize,
}

/// State shared by every connection.
pub struct Relay {
    pub config: RelayConfig,
    pub auth: Auth,
    storage: Mutex<Storage>,
    hub: Mutex<Hub>,
}

fn internal(e: impl std::fmt::Display) -> RelayRefusal {
    tracing::error!(error = %e, "storage failure");
    RelayRefusal::new(ErrorCode::Internal, format!("storage failure: {e}"))
}

impl Relay {
    pub fn new(config: RelayConfig, auth: Auth, storage: Storage) -> Arc<Relay> {
        Arc::new(Relay {
            config,
            auth,
            storage: Mutex::new(storage),
            hub: Mutex::new(Hub::default()),
        })
    }

    fn storage(&self) -> MutexGuard<'_, Storage> {
        self.storage.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn doc_count(&self) -> usize {
        self.storage().doc_count()
    }

    /// A backend bound to one connection.
    pub fn connection(self: &Arc<Relay>, queue: ConnQueue) -> ConnBackend {
        let id = self.hub().register(queue);
        ConnBackend {
            relay: self.clone(),
            conn: id,
        }
    }
}

/// The [`RelayBackend`] of one connection.
pub struct ConnBackend {
    relay: Arc<Relay>,
    conn: ConnId,
}

impl Drop for ConnBackend {
    fn drop(&mut self) {
        self.relay.hub().remove(self.conn);
    }
}

impl RelayBackend for ConnBackend {
    fn authenticate(&mut self, token: Option<&str>) -> Result<Rights, RelayRefusal> {
        self.relay.auth.check(token)
    }

    fn now_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn subscribe(
        &mut self,
        doc_id: &str,
        kind: DocKind,
        client_version: &VersionVector,
        may_create: bool,
    ) -> Result<CatchupData, RelayRefusal> {
        let mut storage = self.relay.storage();
        match storage.head(doc_id).map(|h| h.kind) {
            Some(actual) if actual != kind => {
                return Err(RelayRefusal::new(
                    ErrorCode::KindMismatch,
                    format!("{doc_id:?} is a {actual} document, not {kind}"),
                ))
            }
            Some(_) => {}
            None if may_create => storage
                .apply_batch(&[LogEntry::CreateDoc {
                    doc_id: doc_id.to_string(),
                    kind,
                }])
                .map_err(internal)?,
            None => {
                // Read-only and absent: nothing to send yet, but follow it.
                self.relay.hub().follow(self.conn, doc_id);
                return Ok(CatchupData {
                    kind,
                    server_version: VersionVector::new(),
                    snapshot: None,
                    updates: vec![],
                });
            }
        }
        // Following and reading under the storage lock: no append can slip between them.
        self.relay.hub().follow(self.conn, doc_id);
        storage.catchup(doc_id, client_version).map_err(internal)
    }

    fn unsubscribe(&mut self, doc_id: &str) {
        self.relay.hub().unfollow(self.conn, doc_id);
    }

    fn append(&mut self, doc_id: &str, updates: Vec<UpdateRecord>) -> AppendOutcome {
        let mut storage = self.relay.storage();
        let Some(head) = storage.head(doc_id).cloned() else {
            return AppendOutcome {
                acked: vec![],
                refusal: Some(RelayRefusal::new(
                    ErrorCode::NotSubscribed,
                    "no such document",
                )),
            };
        };
        let mut version = head.version.clone();
        let mut accepted: Vec<UpdateRecord> = Vec::new();
        let mut refusal = None;
        let mut acked: Vec<(Origin, u64)> = Vec::new();
        for update in updates {
            if version.contains(&update.origin, update.seq) {
                // Already held: the same bytes are a harmless resend, other bytes mean the
                // device reused a sequence number (restored from a backup).
                let stored = match accepted
                    .iter()
                    .find(|u| u.origin == update.origin && u.seq == update.seq)
                {
                    Some(u) => Some(u.data.clone()),
                    None => match storage.stored_update(doc_id, &update.origin, update.seq) {
                        Ok(s) => s,
                        Err(e) => {
                            refusal = Some(internal(e));
                            break;
                        }
                    },
                };
                if stored.as_deref() != Some(update.data.as_slice()) {
                    refusal = Some(RelayRefusal::new(
                        ErrorCode::SeqConflict,
                        format!(
                            "update {}:{} differs from the stored one: the device reused a sequence number",
                            update.origin, update.seq
                        ),
                    ));
                    break;
                }
                note_ack(&mut acked, &update.origin, update.seq);
                continue;
            }
            let expected = version.get(&update.origin) + 1;
            if update.seq != expected {
                refusal = Some(RelayRefusal::new(
                    ErrorCode::SeqGap,
                    format!(
                        "update {}:{} arrived before {}:{}",
                        update.origin, update.seq, update.origin, expected
                    ),
                ));
                break;
            }
            let checked = validate_update(head.kind, &update.data)
                .map_err(StorageError::from)
                .and_then(|_| storage.integrate(doc_id, &update));
            if let Err(e) = checked {
                refusal = Some(update_refusal(&update, e));
                break;
            }
            version.advance(&update.origin, update.seq);
            note_ack(&mut acked, &update.origin, update.seq);
            accepted.push(update);
        }
        if refusal.is_some() {
            // The in-memory copy may hold the refused update (or part of it): reload it.
            storage.unload(doc_id);
        }
        if !accepted.is_empty() {
            let entries: Vec<LogEntry> = accepted
                .iter()
                .map(|u| LogEntry::Append {
                    doc_id: doc_id.to_string(),
                    update: u.clone(),
                })
                .collect();
            if let Err(e) = storage.apply_batch(&entries) {
                return AppendOutcome {
                    acked: vec![],
                    refusal: Some(internal(e)),
                };
            }
            let frame = Arc::new(protocol::encode(&Message::Updates(Updates {
                doc_id: doc_id.to_string(),
                updates: accepted,
            })));
            self.relay
                .hub()
                .fan_out(doc_id, self.conn, frame, self.relay.config.max_queue);
        }
        AppendOutcome { acked, refusal }
    }

    fn list_docs(&mut self, prefix: &str) -> Result<Vec<(String, DocKind)>, RelayRefusal> {
        Ok(self.relay.storage().list(prefix))
    }
}

/// The refusal for an update that does not decode or integrate: missing causal
/// dependencies get their own code (the sender should send those first); anything else
/// (does not decode, misuses a type, cannot apply) is `invalid_update`.
fn update_refusal(update: &UpdateRecord, e: StorageError) -> RelayRefusal {
    let code = match &e {
        StorageError::Doc(concord_core::Error::MissingDependencies { .. }) => {
            ErrorCode::MissingDependencies
        }
        StorageError::Doc(_) => ErrorCode::InvalidUpdate,
        _ => return internal(e),
    };
    let reason = match e {
        StorageError::Doc(inner) => inner.to_string(),
        other => other.to_string(),
    };
    RelayRefusal::new(
        code,
        format!("update {}:{} refused: {reason}", update.origin, update.seq),
    )
}

fn note_ack(acked: &mut Vec<(Origin, u64)>, origin: &Origin, seq: u64) {
    match acked.iter_mut().find(|(o, _)| o == origin) {
        Some((_, upto)) => *upto = (*upto).max(seq),
        None => acked.push((origin.clone(), seq)),
    }
}

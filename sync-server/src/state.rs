//! The relay's shared state — storage, fan-out hub, auth — and the host side of the
//! sessions' requests: [`Relay::execute`] carries out one [`RelayRequest`] (blocking: it
//! does storage I/O; the network shell runs it off the async runtime) and returns its
//! [`Completion`].
//!
//! Appends follow the state machine's path: validate (core's append rules, then
//! integration into the in-memory document), apply the entries, and fan out from the
//! apply outcomes ([`Relay::apply`]) — the path a follower applying replicated entries
//! would take too.

use std::sync::{Arc, Mutex, MutexGuard};

use concord_core::protocol::{self, ErrorCode, Message, Updates};
use concord_core::sync::{
    plan_append, update_refusal, AppendOutcome, Authenticator, CatchupData, Completion,
    RelayOutput, RelayRefusal, RelayRequest, RelaySession, Rights,
};
use concord_core::{DocKind, UpdateRecord, VersionVector};

use crate::auth::Auth;
use crate::hub::{ConnId, ConnQueue, Hub};
use crate::storage::{ApplyOutcome, Entry, LogEntry, Storage, StorageError};

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

fn internal(e: StorageError) -> RelayRefusal {
    let e = e.chain();
    tracing::error!(error = %e, "storage failure");
    RelayRefusal::new(ErrorCode::Internal, format!("storage failure: {e}"))
}

impl Authenticator for Relay {
    fn authenticate(&self, token: Option<&str>) -> Result<Rights, RelayRefusal> {
        self.auth.check(token)
    }
}

/// Current time, Unix seconds (token expiry).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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

    /// The storage. After a panic while it was held, in-memory documents may be half
    /// changed: they are dropped (the file holds only committed state) before going on.
    fn storage(&self) -> MutexGuard<'_, Storage> {
        self.storage.lock().unwrap_or_else(|poisoned| {
            self.storage.clear_poison();
            let mut storage = poisoned.into_inner();
            storage.unload_all();
            storage
        })
    }

    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn doc_count(&self) -> usize {
        self.storage().doc_count()
    }

    /// Registers a connection with the hub; it leaves the hub when the handle drops.
    pub fn connection(self: &Arc<Relay>, queue: ConnQueue) -> Connection {
        let id = self.hub().register(queue);
        Connection {
            relay: self.clone(),
            id,
        }
    }

    /// Carries out one request of connection `conn`. Blocking (storage I/O).
    pub fn execute(&self, conn: ConnId, request: RelayRequest) -> Completion {
        match request {
            RelayRequest::Subscribe {
                doc_id,
                kind,
                client_version,
                may_create,
            } => Completion::Subscribed(self.subscribe(
                conn,
                &doc_id,
                kind,
                &client_version,
                may_create,
            )),
            RelayRequest::Append { doc_id, updates } => {
                Completion::Appended(self.append(conn, &doc_id, updates))
            }
            RelayRequest::ListDocs { prefix } => {
                Completion::Listed(Ok(self.storage().list(&prefix)))
            }
        }
    }

    /// The follower's path: applies entries replicated from a leader (validated there) and
    /// fans out what they changed to every follower of their documents.
    pub fn apply_replicated(&self, entries: &[Entry]) -> Result<Vec<ApplyOutcome>, StorageError> {
        let mut storage = self.storage();
        self.apply(&mut storage, entries, None)
    }

    /// Applies `entries` and fans out what they changed to the followers of each document
    /// (except `writer`, the connection whose request produced them, if any). Called with
    /// the storage lock held, so a subscriber's catch-up read and its following are never
    /// split by an apply.
    fn apply(
        &self,
        storage: &mut Storage,
        entries: &[Entry],
        writer: Option<ConnId>,
    ) -> Result<Vec<ApplyOutcome>, StorageError> {
        let outcomes = storage.apply(entries)?;
        let mut runs: Vec<(&str, Vec<UpdateRecord>)> = Vec::new();
        for outcome in &outcomes {
            if let ApplyOutcome::Appended { doc_id, update } = outcome {
                match runs.last_mut() {
                    Some((doc, updates)) if doc == doc_id => updates.push(update.clone()),
                    _ => runs.push((doc_id, vec![update.clone()])),
                }
            }
        }
        let hub = self.hub();
        for (doc_id, updates) in runs {
            let frame = Arc::new(protocol::encode(&Message::Updates(Updates {
                doc_id: doc_id.to_string(),
                updates,
            })));
            hub.fan_out(doc_id, writer, frame, self.config.max_queue);
        }
        Ok(outcomes)
    }

    /// The leader's path for new entries: the next log positions, then [`Relay::apply`].
    fn propose(
        &self,
        storage: &mut Storage,
        payloads: Vec<LogEntry>,
        writer: ConnId,
    ) -> Result<Vec<ApplyOutcome>, StorageError> {
        let entries: Vec<Entry> = payloads
            .into_iter()
            .zip(storage.last_applied() + 1..)
            .map(|(payload, index)| Entry { index, payload })
            .collect();
        self.apply(storage, &entries, Some(writer))
    }

    fn subscribe(
        &self,
        conn: ConnId,
        doc_id: &str,
        kind: DocKind,
        client_version: &VersionVector,
        may_create: bool,
    ) -> Result<CatchupData, RelayRefusal> {
        let mut storage = self.storage();
        match storage.head(doc_id).map(|h| h.kind) {
            Some(actual) if actual != kind => {
                return Err(RelayRefusal::new(
                    ErrorCode::KindMismatch,
                    format!("{doc_id:?} is a {actual} document, not {kind}"),
                ))
            }
            Some(_) => {}
            None if may_create => {
                let create = LogEntry::CreateDoc {
                    doc_id: doc_id.to_string(),
                    kind,
                };
                self.propose(&mut storage, vec![create], conn)
                    .map_err(internal)?;
            }
            None => {
                // Read-only and absent: nothing to send yet, but follow it.
                self.hub().follow(conn, doc_id);
                return Ok(CatchupData {
                    kind,
                    server_version: VersionVector::new(),
                    snapshot: None,
                    updates: vec![],
                });
            }
        }
        // Following and reading under the storage lock: no append can slip between them.
        self.hub().follow(conn, doc_id);
        storage.catchup(doc_id, client_version).map_err(internal)
    }

    /// Validates a batch (append rules, then integration), applies what was accepted, and
    /// acknowledges only once that is durable.
    fn append(&self, conn: ConnId, doc_id: &str, updates: Vec<UpdateRecord>) -> AppendOutcome {
        let mut storage = self.storage();
        let Some(head) = storage.head(doc_id).map(|h| h.rules_head()) else {
            return AppendOutcome {
                acked: vec![],
                refusal: Some(RelayRefusal::new(
                    ErrorCode::NotSubscribed,
                    "no such document",
                )),
            };
        };
        // The rules read stored bytes and integrate through the same storage: a cell
        // lends it to both callbacks in turn.
        let cell = std::cell::RefCell::new(&mut *storage);
        let plan = plan_append(
            &head,
            updates,
            |origin, seq| {
                cell.borrow()
                    .stored_update(doc_id, origin, seq)
                    .map_err(internal)
            },
            |update| match cell.borrow_mut().integrate(doc_id, update) {
                Ok(()) => Ok(()),
                Err(StorageError::Doc(e)) => Err(update_refusal(update, &e)),
                Err(e) => Err(internal(e)),
            },
        );
        if plan.refusal.is_some() {
            // The in-memory copy may hold the refused update (or part of it): reload it.
            storage.unload(doc_id);
        }
        if !plan.accepted.is_empty() {
            let entries = plan
                .accepted
                .into_iter()
                .map(|update| LogEntry::Append {
                    doc_id: doc_id.to_string(),
                    update,
                })
                .collect();
            if let Err(e) = self.propose(&mut storage, entries, conn) {
                return AppendOutcome {
                    acked: vec![],
                    refusal: Some(internal(e)),
                };
            }
        }
        AppendOutcome {
            acked: plan.acked,
            refusal: plan.refusal,
        }
    }
}

/// One connection's registration with the relay (fan-out queue and subscriptions).
pub struct Connection {
    relay: Arc<Relay>,
    id: ConnId,
}

impl Connection {
    pub fn id(&self) -> ConnId {
        self.id
    }

    pub fn relay(&self) -> &Arc<Relay> {
        &self.relay
    }

    /// Carries out `outputs` of this connection's session, returning the messages to send
    /// in order; requests run here, on the calling thread, and their completions are fed
    /// back until none is left. For in-process drivers (tests); the network shell awaits
    /// requests on a blocking pool instead.
    pub fn run_blocking(
        &self,
        session: &mut RelaySession,
        outputs: Vec<RelayOutput>,
    ) -> Vec<Message> {
        let mut pending = std::collections::VecDeque::from(outputs);
        let mut messages = Vec::new();
        while let Some(output) = pending.pop_front() {
            match output {
                RelayOutput::Send(m) => messages.push(m),
                RelayOutput::Unfollow(doc_id) => self.unfollow(&doc_id),
                RelayOutput::Request(id, request) => {
                    let completion = self.relay.execute(self.id, request);
                    let more = session.handle_completion(id, completion, now_secs(), &*self.relay);
                    pending.extend(more);
                }
            }
        }
        messages
    }

    /// Handles one frame to completion on the calling thread (see [`Connection::run_blocking`]).
    pub fn handle_frame_blocking(&self, session: &mut RelaySession, frame: &[u8]) -> Vec<Message> {
        let outputs = session.handle_frame(frame, now_secs(), &*self.relay);
        self.run_blocking(session, outputs)
    }

    pub fn unfollow(&self, doc_id: &str) {
        self.relay.hub().unfollow(self.id, doc_id);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.relay.hub().remove(self.id);
    }
}

//! The relay's shared state — storage, fan-out hub, auth — and the host side of the
//! sessions' requests: [`Relay::execute`] carries out one [`RelayRequest`] (blocking: it
//! does storage I/O; the network shell runs it off the async runtime) and returns its
//! [`Completion`].
//!
//! Appends follow the state machine's path: validate (core's append rules, then
//! integration into the in-memory document), apply the entries, and fan out from the
//! apply outcomes ([`Relay::fan_out`]). A single relay applies what it validated itself,
//! together with what other connections validated meanwhile (`group_commit`); in
//! a cluster the leader validates ([`Relay::validate_append`]), consensus commits, and
//! every node's state machine applies and calls [`Relay::fan_out`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use concord_core::Origin;

use concord_core::protocol::{self, DocList, ErrorCode, Message, Presence, Updates};
use concord_core::sync::{
    plan_append_batched, update_refusal, AppendOutcome, Authenticator, CatchupData, Completion,
    RelayOutput, RelayRefusal, RelayRequest, RelaySession, Rights,
};
use concord_core::{DocKind, UpdateRecord, VersionVector};

use crate::auth::Auth;
use crate::group_commit::{GroupCommit, Ticket};
use crate::hub::{ConnId, ConnQueue, Hub};
use crate::storage::{ApplyOutcome, Entry, LogEntry, Storage, StorageError};

/// Limits and identity of a relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub server_id: String,
    pub max_frame_bytes: usize,
    pub max_queue: usize,
    /// How long a connection may send nothing before it is closed (`ServerConfig`).
    pub idle_timeout: Duration,
}

impl RelayConfig {
    /// How often the relay pings a connection: a third of the idle timeout, so a live
    /// client's pongs keep it open.
    pub fn ping_every(&self) -> Duration {
        self.idle_timeout / 3
    }
}

/// State shared by every connection.
pub struct Relay {
    pub config: RelayConfig,
    pub auth: Auth,
    storage: Arc<Mutex<Storage>>,
    hub: Mutex<Hub>,
    /// The single relay's validated appends waiting to be committed together.
    group: GroupCommit,
}

/// A write checked by the leader: the entries to propose, what to acknowledge once they
/// are durable, and why the batch stopped early (if it did).
#[derive(Debug, Default)]
pub struct Validated {
    pub entries: Vec<LogEntry>,
    pub acked: Vec<(Origin, u64)>,
    pub refusal: Option<RelayRefusal>,
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
            storage: Arc::new(Mutex::new(storage)),
            hub: Mutex::new(Hub::default()),
            group: GroupCommit::default(),
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

    /// The storage, shared with a cluster's state machine.
    pub fn shared_storage(&self) -> Arc<Mutex<Storage>> {
        self.storage.clone()
    }

    /// The kind of `doc_id`, if the relay holds it.
    pub fn doc_kind(&self, doc_id: &str) -> Option<DocKind> {
        self.storage().head(doc_id).map(|h| h.kind)
    }

    /// The log position of the state this relay serves.
    pub fn applied_lsn(&self) -> u64 {
        self.storage().last_applied()
    }

    /// Drops in-memory copies of `docs` (they may hold validated updates that were not
    /// committed); they reload from the file when next needed.
    pub fn forget_docs<'a>(&self, docs: impl Iterator<Item = &'a String>) {
        let mut storage = self.storage();
        for doc_id in docs {
            storage.forget_validated(doc_id);
        }
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
                ..
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
            RelayRequest::ListDocs { prefix, rights } => {
                let storage = self.storage();
                let docs = storage.list(&prefix);
                // Under the storage lock: a document created after this listing is applied
                // after the watch begins, so it is announced (`fan_out`); none falls between.
                self.hub().watch(conn, &prefix, rights);
                Completion::Listed(Ok(docs))
            }
        }
    }

    /// Applies `entries` and fans out what they changed (see [`Relay::fan_out`]); the
    /// single relay's path for validated entries and entries replicated to it.
    pub fn apply_replicated(&self, entries: &[Entry]) -> Result<Vec<ApplyOutcome>, StorageError> {
        let mut storage = self.storage();
        let outcomes = storage.apply(entries)?;
        self.fan_out(&outcomes, None, storage.last_applied());
        Ok(outcomes)
    }

    /// Sends what `outcomes` stored to the followers of each document (except `writer`,
    /// the connection whose request produced them, if any), as committed at `lsn`. Called
    /// with the storage lock held, so a subscriber's catch-up read and its following are
    /// never split by an apply.
    pub fn fan_out(&self, outcomes: &[ApplyOutcome], writer: Option<ConnId>, lsn: u64) {
        let mut runs: Vec<(&str, Vec<UpdateRecord>)> = Vec::new();
        let mut created = Vec::new();
        for outcome in outcomes {
            match outcome {
                ApplyOutcome::Appended { doc_id, update } => match runs.last_mut() {
                    Some((doc, updates)) if doc == doc_id => updates.push(update.clone()),
                    _ => runs.push((doc_id, vec![update.clone()])),
                },
                ApplyOutcome::Created { doc_id, kind } => created.push((doc_id.clone(), *kind)),
                ApplyOutcome::Unchanged => {}
            }
        }
        let max_queue = self.config.max_queue;
        let mut hub = self.hub();
        for doc in created {
            // Connections that listed a prefix of it learn of it now, not at their next
            // listing (clients subscribe to what a `DocList` names that they lack).
            let doc_id = doc.0.clone();
            let frame = Arc::new(protocol::encode(&Message::DocList(DocList {
                docs: vec![doc],
            })));
            hub.announce(&doc_id, frame, max_queue);
        }
        for (doc_id, updates) in runs {
            let frame = Arc::new(protocol::encode(&Message::Updates(Updates {
                doc_id: doc_id.to_string(),
                updates,
                lsn,
            })));
            hub.fan_out(doc_id, writer, frame, self.config.max_queue);
        }
    }

    /// The single relay's path for new entries: the next log positions, apply, fan out.
    fn propose(
        &self,
        storage: &mut Storage,
        payloads: Vec<LogEntry>,
        writer: ConnId,
    ) -> Result<Vec<ApplyOutcome>, StorageError> {
        let outcomes = storage.apply_batch(&payloads)?;
        self.fan_out(&outcomes, Some(writer), storage.last_applied());
        Ok(outcomes)
    }

    /// Registers `conn` for live updates of `doc_id` and reads what a client at
    /// `client_version` lacks (nothing, and following it, when the relay does not hold it).
    pub fn subscribe_local(
        &self,
        conn: ConnId,
        doc_id: &str,
        kind: DocKind,
        client_version: &VersionVector,
    ) -> Result<CatchupData, RelayRefusal> {
        let storage = self.storage();
        Self::subscribe_locked(&storage, &self.hub, conn, doc_id, kind, client_version)
    }

    fn subscribe_locked(
        storage: &Storage,
        hub: &Mutex<Hub>,
        conn: ConnId,
        doc_id: &str,
        kind: DocKind,
        client_version: &VersionVector,
    ) -> Result<CatchupData, RelayRefusal> {
        let mut hub = hub.lock().unwrap_or_else(|p| p.into_inner());
        match storage.head(doc_id).map(|h| h.kind) {
            Some(actual) if actual != kind => Err(RelayRefusal::new(
                ErrorCode::KindMismatch,
                format!("{doc_id:?} is a {actual} document, not {kind}"),
            )),
            Some(_) => {
                // Following and reading under the storage lock: no append slips between.
                hub.follow(conn, doc_id);
                storage.catchup(doc_id, client_version).map_err(internal)
            }
            None => {
                // Absent: nothing to send yet, but follow it.
                hub.follow(conn, doc_id);
                Ok(CatchupData {
                    kind,
                    lsn: storage.last_applied(),
                    server_version: VersionVector::new(),
                    snapshot: None,
                    updates: vec![],
                })
            }
        }
    }

    /// The leader's check of a document creation: an entry unless it exists (of another
    /// kind: refused).
    pub fn validate_create(&self, doc_id: &str, kind: DocKind) -> Validated {
        match self.doc_kind(doc_id) {
            None => Validated {
                entries: vec![LogEntry::CreateDoc {
                    doc_id: doc_id.to_string(),
                    kind,
                }],
                ..Validated::default()
            },
            Some(actual) if actual != kind => Validated {
                refusal: Some(RelayRefusal::new(
                    ErrorCode::KindMismatch,
                    format!("{doc_id:?} is a {actual} document, not {kind}"),
                )),
                ..Validated::default()
            },
            Some(_) => Validated::default(),
        }
    }

    /// Whether `updates` leave a gap after what the relay has applied for some origin (the
    /// first update of each origin is not the next one): a write still being committed may
    /// fill it.
    pub fn starts_past_head(&self, doc_id: &str, updates: &[UpdateRecord]) -> bool {
        let storage = self.storage();
        let Some(head) = storage.head(doc_id) else {
            return false;
        };
        let mut seen: Vec<&Origin> = Vec::new();
        updates.iter().any(|u| {
            if seen.contains(&&u.origin) {
                return false;
            }
            seen.push(&u.origin);
            matches!(
                head.version.position(&u.origin, u.seq),
                concord_core::vv::SeqPosition::Gap { .. }
            )
        })
    }

    /// The leader's check of a batch of updates (append rules, then integration into the
    /// in-memory document): the entries to propose and what to acknowledge.
    pub fn validate_append(&self, doc_id: &str, updates: Vec<UpdateRecord>) -> Validated {
        let mut storage = self.storage();
        Self::validate_locked(&mut storage, doc_id, updates)
    }

    /// [`Relay::validate_append`], unless `busy` (asked under the storage lock, before
    /// validating) says the batch must wait: `None`. `then` runs on the result under the
    /// same lock (what must be noted atomically with the validation).
    pub fn validate_append_unless<T>(
        &self,
        doc_id: &str,
        updates: Vec<UpdateRecord>,
        busy: impl FnOnce() -> bool,
        then: impl FnOnce(&Validated) -> T,
    ) -> Option<(Validated, T)> {
        let mut storage = self.storage();
        if busy() {
            return None;
        }
        let validated = Self::validate_locked(&mut storage, doc_id, updates);
        let noted = then(&validated);
        Some((validated, noted))
    }

    fn validate_locked(
        storage: &mut Storage,
        doc_id: &str,
        updates: Vec<UpdateRecord>,
    ) -> Validated {
        let Some(head) = storage.rules_head(doc_id) else {
            return Validated {
                refusal: Some(RelayRefusal::new(
                    ErrorCode::NotSubscribed,
                    "no such document",
                )),
                ..Validated::default()
            };
        };
        // The rules read stored bytes and integrate through the same storage: a cell
        // lends it to both callbacks in turn.
        let cell = std::cell::RefCell::new(&mut *storage);
        // All the batch's new updates are integrated at once; only if that fails, one by
        // one from the committed state, to refuse exactly the first that does not fit.
        let plan = plan_append_batched(
            &head,
            updates,
            |origin, seq| {
                cell.borrow()
                    .held_update(doc_id, origin, seq)
                    .map_err(internal)
            },
            |batch| match cell.borrow_mut().integrate_all(doc_id, batch) {
                Ok(()) => Ok(()),
                Err(StorageError::Doc(e)) => Err(match batch {
                    [update] => update_refusal(update, &e),
                    _ => RelayRefusal::new(ErrorCode::InvalidUpdate, e.to_string()),
                }),
                Err(e) => Err(internal(e)),
            },
            || cell.borrow_mut().forget_validated(doc_id),
        );
        if plan.refusal.is_some() {
            // The in-memory copy may hold the refused update (or part of it): reload it.
            storage.forget_validated(doc_id);
        }
        Validated {
            entries: plan
                .accepted
                .into_iter()
                .map(|update| LogEntry::Append {
                    doc_id: doc_id.to_string(),
                    update,
                })
                .collect(),
            acked: plan.acked,
            refusal: plan.refusal,
        }
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
        if may_create && storage.head(doc_id).is_none() {
            let create = LogEntry::CreateDoc {
                doc_id: doc_id.to_string(),
                kind,
            };
            self.propose(&mut storage, vec![create], conn)
                .map_err(internal)?;
        }
        Self::subscribe_locked(&storage, &self.hub, conn, doc_id, kind, client_version)
    }

    /// Validates a batch, applies what was accepted (with other connections' appends
    /// validated meanwhile, in one transaction), and acknowledges only once that is
    /// durable (the single relay's path).
    fn append(&self, conn: ConnId, doc_id: &str, updates: Vec<UpdateRecord>) -> AppendOutcome {
        let (validated, ticket, lsn) = {
            let mut storage = self.storage();
            let mut validated = Self::validate_locked(&mut storage, doc_id, updates);
            let entries = std::mem::take(&mut validated.entries);
            // The next validation, on any connection, counts these as held until they are
            // committed (or fail): see `storage/queued.rs`.
            storage.note_queued(
                doc_id,
                entries.iter().filter_map(|e| match e {
                    LogEntry::Append { update, .. } => Some(update.clone()),
                    _ => None,
                }),
            );
            // An update acknowledged as held may be held only by another connection's
            // queued, uncommitted entry (the same device resending after a reconnect): the
            // ack waits for that group's commit, which an empty entry here follows.
            let waits = !validated.acked.is_empty() && storage.has_queued(doc_id);
            let ticket = (!entries.is_empty() || waits).then(|| self.group.enqueue(entries, conn));
            (validated, ticket, storage.last_applied())
        };
        let Some(ticket) = ticket else {
            return AppendOutcome {
                acked: validated.acked,
                lsn,
                refusal: validated.refusal,
            };
        };
        match self.commit_queued(&ticket) {
            Ok(lsn) => AppendOutcome {
                acked: validated.acked,
                lsn,
                refusal: validated.refusal,
            },
            Err(message) => AppendOutcome {
                acked: vec![],
                lsn,
                refusal: Some(RelayRefusal::new(ErrorCode::Internal, message)),
            },
        }
    }

    /// Waits until `ticket`'s entries are committed: by an earlier turn, or in this one
    /// together with everything queued (see `group_commit`).
    fn commit_queued(&self, ticket: &Ticket) -> Result<u64, String> {
        let _turn = self.group.turn();
        if let Some(result) = ticket.ready() {
            return result;
        }
        let mut storage = self.storage();
        let queued = self.group.take();
        let entries: Vec<LogEntry> = queued
            .iter()
            .flat_map(|q| q.entries.iter().cloned())
            .collect();
        let started = std::time::Instant::now();
        let result = match storage.apply_batch(&entries) {
            Ok(outcomes) => {
                crate::metrics::committed(entries.len(), started.elapsed());
                // One frame per document for every follower; a writer alone in the group
                // does not get its own updates back (with others, it ignores them).
                let writer = match queued.as_slice() {
                    [only] => Some(only.writer),
                    _ => None,
                };
                self.fan_out(&outcomes, writer, storage.last_applied());
                Ok(storage.last_applied())
            }
            // The storage dropped the in-memory copies that were ahead of the file.
            Err(e) => Err(format!("storage failure: {}", e.chain())),
        };
        drop(storage);
        if let Err(e) = &result {
            tracing::error!(error = %e, writers = queued.len(), "group commit failed");
        }
        for q in queued {
            q.finish(result.clone());
        }
        ticket
            .ready()
            .unwrap_or_else(|| Err("the write was not committed".into()))
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
                RelayOutput::Presence {
                    doc_id,
                    device_id,
                    state,
                } => self.presence(doc_id, device_id, state),
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

    /// The answer to this connection's listing is queued: documents announced since the
    /// listing was read follow it ([`Hub::watch`](crate::hub::Hub::watch)).
    pub fn listing_answered(&self) {
        self.relay
            .hub()
            .release(self.id, self.relay.config.max_queue);
    }

    /// The connection presented new credentials: its watches (with the old rights) end
    /// until it lists again.
    pub fn credentials_changed(&self) {
        self.relay.hub().unwatch(self.id);
    }

    /// Shows this connection's presence on `doc_id` (empty: withdraws it) to the document's
    /// other followers on this node. Presence is not stored and does not cross cluster nodes.
    pub fn presence(&self, doc_id: String, device_id: Origin, state: Vec<u8>) {
        let frames = (!state.is_empty()).then(|| {
            let frame = |state: Vec<u8>| {
                Arc::new(protocol::encode(&Message::Presence(Presence {
                    doc_id: doc_id.clone(),
                    peer: self.id,
                    device_id: device_id.clone(),
                    state,
                })))
            };
            (frame(state), frame(Vec::new()))
        });
        let max_queue = self.relay.config.max_queue;
        self.relay
            .hub()
            .set_presence(self.id, &doc_id, frames, max_queue);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.relay.hub().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::conn_queue;
    use concord_core::protocol::{self, Hello, Subscribe, Updates, PROTOCOL_VERSION};
    use concord_core::{Store, VersionVector};

    fn frame(m: Message) -> Vec<u8> {
        protocol::encode(&m)
    }

    /// An identical resend of an update another connection queued for the group commit is
    /// acknowledged only once that commit is done (the same device resending after a
    /// reconnect): it was acknowledged at once, held only by the queued entry, and a
    /// commit that then failed (or a crash) lost an acknowledged write. The test holds the
    /// commit turn, so the first writer's entry stays queued.
    #[test]
    fn an_identical_resend_waits_for_the_commit_of_the_queued_original() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("relay.db"), 64).unwrap();
        let relay = Relay::new(
            RelayConfig {
                server_id: "t".into(),
                max_frame_bytes: 1 << 20,
                max_queue: 1 << 16,
                idle_timeout: std::time::Duration::from_secs(45),
            },
            Auth::Open,
            storage,
        );
        let author = Store::open_in_memory().unwrap();
        author.create_doc("d", DocKind::Yrs).unwrap();
        author
            .transact("d", |tx| tx.insert_text("t", 0, "once"))
            .unwrap();
        let update = author.outbox("d").unwrap().remove(0);
        let send = frame(Message::Updates(Updates {
            doc_id: "d".into(),
            updates: vec![update.clone()],
            lsn: 0,
        }));
        let writer = |relay: Arc<Relay>, send: Vec<u8>| {
            std::thread::spawn(move || {
                let (queue, _rx) = conn_queue();
                let conn = relay.connection(queue);
                let mut session = RelaySession::new("t", 1 << 20);
                for m in [
                    Message::Hello(Hello {
                        protocol_version: PROTOCOL_VERSION,
                        device_id: Origin::random(),
                        token: None,
                    }),
                    Message::Subscribe(Subscribe {
                        doc_id: "d".into(),
                        min_lsn: 0,
                        linearizable: false,
                        kind: DocKind::Yrs,
                        version: VersionVector::new(),
                    }),
                ] {
                    conn.handle_frame_blocking(&mut session, &frame(m));
                }
                conn.handle_frame_blocking(&mut session, &send)
            })
        };
        let turn = relay.group.turn();
        let first = writer(relay.clone(), send.clone());
        while !relay.storage().has_queued("d") {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let second = writer(relay.clone(), send);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !second.is_finished(),
            "the resend was answered while the original was still queued: {:?}",
            second.join()
        );
        drop(turn);
        for replies in [first.join().unwrap(), second.join().unwrap()] {
            assert!(
                replies.iter().any(
                    |m| matches!(m, Message::Ack(a) if a.origin == update.origin && a.upto == 1)
                ),
                "{replies:?}"
            );
        }
        assert!(relay
            .storage()
            .stored_update("d", &update.origin, 1)
            .unwrap()
            .is_some());
    }
}

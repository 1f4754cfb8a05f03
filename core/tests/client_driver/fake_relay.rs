//! A small scripted relay for driver tests: answers `Hello`, `ListDocs`, `Subscribe` and
//! `Updates` with `Welcome`, `DocList`, `Catchup` + `Updates` and `Ack`, holds updates in
//! memory, and can be told to be down, to refuse the handshake, to refuse documents or to
//! lose what it is sent. It records every message it received. Its log position (LSN)
//! grows by one per batch that stored something; as a cluster, the node behind some URLs
//! can be made to lag (`replica_behind` for any `min_lsn` above 0) or to have no leader
//! (`unavailable` for writes).

use std::collections::{BTreeMap, BTreeSet};

use concord_core::protocol::{
    Ack, Catchup, DocList, ErrorCode, Message, Updates, Welcome, PROTOCOL_VERSION,
};
use concord_core::{DocKind, Origin, UpdateRecord, VersionVector};

#[derive(Default)]
pub struct RelayDoc {
    pub kind: Option<DocKind>,
    pub updates: Vec<UpdateRecord>,
    pub version: VersionVector,
}

pub struct FakeRelay {
    /// Connections fail while false.
    pub up: bool,
    /// Connections to these URLs fail.
    pub down: BTreeSet<String>,
    /// The handshake is refused with this code.
    pub refuse_hello: Option<ErrorCode>,
    /// Documents refused with `forbidden`.
    pub forbidden: BTreeSet<String>,
    /// Incoming frames are dropped unread (a relay that has stopped answering).
    pub black_hole: bool,
    /// Incoming frames are recorded and never answered (a node whose request path hangs
    /// while it may still forward others' updates).
    pub stalled: bool,
    pub docs: BTreeMap<String, RelayDoc>,
    pub received: Vec<Message>,
    /// The relay's log position: batches that stored something.
    pub lsn: u64,
    /// The URL the device is connected through (set by the `Pair`).
    pub url: String,
    /// Nodes (by URL) that hold nothing: a subscribe with `min_lsn` above 0 gets
    /// `replica_behind`.
    pub lagging: BTreeSet<String>,
    /// Nodes (by URL) without a leader: `Updates` get `unavailable`.
    pub leaderless: BTreeSet<String>,
    /// `Updates` that leave a gap after what is held are refused with `seq_gap` (as the
    /// real relay does) instead of being ignored.
    pub refuse_gaps: bool,
}

impl Default for FakeRelay {
    fn default() -> Self {
        FakeRelay {
            up: true,
            down: BTreeSet::new(),
            refuse_hello: None,
            forbidden: BTreeSet::new(),
            black_hole: false,
            stalled: false,
            docs: BTreeMap::new(),
            received: Vec::new(),
            lsn: 0,
            url: String::new(),
            lagging: BTreeSet::new(),
            leaderless: BTreeSet::new(),
            refuse_gaps: false,
        }
    }
}

impl FakeRelay {
    /// An update from another device, already on the relay.
    pub fn seed(&mut self, doc_id: &str, kind: DocKind, origin: &str, seq: u64, data: &[u8]) {
        let doc = self.docs.entry(doc_id.into()).or_default();
        doc.kind = Some(kind);
        doc.version.set(Origin::from(origin), seq);
        doc.updates.push(UpdateRecord {
            origin: Origin::from(origin),
            seq,
            data: data.to_vec(),
        });
    }

    pub fn holds(&self, doc_id: &str, origin: &Origin, seq: u64) -> bool {
        self.docs
            .get(doc_id)
            .is_some_and(|d| d.version.contains(origin, seq))
    }

    pub fn pings(&self) -> usize {
        self.received
            .iter()
            .filter(|m| matches!(m, Message::Ping(_)))
            .count()
    }

    /// One message from the device; returns the replies.
    pub fn handle(&mut self, message: Message) -> Vec<Message> {
        if self.black_hole {
            return vec![];
        }
        self.received.push(message.clone());
        if self.stalled {
            return vec![];
        }
        match message {
            Message::Hello(_) => match self.refuse_hello {
                Some(code) => vec![Message::error(code, "refused by the script", None)],
                None => vec![Message::Welcome(Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    server_id: "fake".into(),
                    max_frame_bytes: 1 << 20,
                })],
            },
            Message::ListDocs(list) => vec![Message::DocList(DocList {
                docs: self
                    .docs
                    .iter()
                    .filter(|(id, _)| id.starts_with(&list.prefix) && !self.forbidden.contains(*id))
                    .filter_map(|(id, d)| Some((id.clone(), d.kind?)))
                    .collect(),
            })],
            Message::Subscribe(s) => {
                if self.forbidden.contains(&s.doc_id) {
                    return vec![forbidden(&s.doc_id)];
                }
                if self.lagging.contains(&self.url) && s.min_lsn > 0 {
                    return vec![Message::error(
                        ErrorCode::ReplicaBehind,
                        format!("this node is at LSN 0, behind {}", s.min_lsn),
                        Some(&s.doc_id),
                    )];
                }
                let lsn = self.lsn;
                let doc = self.docs.entry(s.doc_id.clone()).or_default();
                doc.kind.get_or_insert(s.kind);
                let missing: Vec<UpdateRecord> = doc
                    .updates
                    .iter()
                    .filter(|u| !s.version.contains(&u.origin, u.seq))
                    .cloned()
                    .collect();
                let mut out = vec![Message::Catchup(Catchup {
                    doc_id: s.doc_id.clone(),
                    lsn,
                    kind: s.kind,
                    server_version: doc.version.clone(),
                    snapshot: None,
                })];
                if !missing.is_empty() {
                    out.push(Message::Updates(Updates {
                        doc_id: s.doc_id,
                        lsn,
                        updates: missing,
                    }));
                }
                out
            }
            Message::Updates(u) => {
                if self.forbidden.contains(&u.doc_id) {
                    return vec![forbidden(&u.doc_id)];
                }
                if self.leaderless.contains(&self.url) {
                    return vec![Message::error(
                        ErrorCode::Unavailable,
                        "no leader",
                        Some(&u.doc_id),
                    )];
                }
                let doc = self.docs.entry(u.doc_id.clone()).or_default();
                if self.refuse_gaps {
                    let mut reached = doc.version.clone();
                    if let Some(gap) = u.updates.iter().find(|x| {
                        let next = x.seq <= reached.get(&x.origin) + 1;
                        if next {
                            reached.set(x.origin.clone(), x.seq.max(reached.get(&x.origin)));
                        }
                        !next
                    }) {
                        return vec![Message::error(
                            ErrorCode::SeqGap,
                            format!("update {}:{} arrived early", gap.origin, gap.seq),
                            Some(&u.doc_id),
                        )];
                    }
                }
                let mut acked = BTreeSet::new();
                let mut stored = false;
                for update in u.updates {
                    if update.seq == doc.version.get(&update.origin) + 1 {
                        doc.version.set(update.origin.clone(), update.seq);
                        doc.updates.push(update.clone());
                        stored = true;
                    }
                    acked.insert(update.origin);
                }
                if stored {
                    self.lsn += 1;
                }
                let lsn = self.lsn;
                acked
                    .into_iter()
                    .map(|origin| {
                        Message::Ack(Ack {
                            doc_id: u.doc_id.clone(),
                            lsn,
                            upto: doc.version.get(&origin),
                            origin,
                        })
                    })
                    .collect()
            }
            Message::Ping(n) => vec![Message::Pong(n)],
            _ => vec![],
        }
    }
}

fn forbidden(doc_id: &str) -> Message {
    Message::error(
        ErrorCode::Forbidden,
        "outside the token's scope",
        Some(doc_id),
    )
}

//! Tests of [`RelaySession`] against a fake host — documents in an in-memory map, the
//! append rules from core — and a simulated clock (Unix seconds the test sets).

use std::collections::HashMap;

use crate::ids::{DocKind, Origin};
use crate::protocol::{
    self, ErrorCode, Hello, ListDocs, Message, Subscribe, Updates, PROTOCOL_VERSION,
};
use crate::sync::{
    plan_append, AppendOutcome, Authenticator, CatchupData, Completion, DocHead, RelayOutput,
    RelayRefusal, RelayRequest, RelaySession, Right, Rights,
};
use crate::update::UpdateRecord;
use crate::vv::VersionVector;
use crate::Store;

/// Tokens: `"rw"` writes everything, `"ro"` reads everything; both expire at second 100.
struct FakeAuth;

impl Authenticator for FakeAuth {
    fn authenticate(&self, token: Option<&str>) -> Result<Rights, RelayRefusal> {
        let right = match token {
            Some("rw") => Right::Write,
            Some("ro") => Right::Read,
            _ => return Err(RelayRefusal::new(ErrorCode::Unauthorized, "bad token")),
        };
        Ok(Rights {
            scopes: vec!["*".into()],
            right,
            expires_at: Some(100),
        })
    }
}

/// The fake host: documents as kind + updates in arrival order; its log position is the
/// number of appends that stored something; it records every subscribe's session
/// requirements (`min_lsn`, `linearizable`).
#[derive(Default)]
struct FakeHost {
    docs: HashMap<String, (DocKind, Vec<UpdateRecord>)>,
    lsn: u64,
    subscribes: Vec<(u64, bool)>,
}

impl FakeHost {
    fn version(&self, doc: &str) -> VersionVector {
        let mut v = VersionVector::new();
        for u in &self.docs[doc].1 {
            v.advance(&u.origin, u.seq);
        }
        v
    }

    fn execute(&mut self, request: RelayRequest) -> Completion {
        match request {
            RelayRequest::Subscribe {
                doc_id,
                kind,
                client_version,
                may_create,
                min_lsn,
                linearizable,
            } => {
                self.subscribes.push((min_lsn, linearizable));
                if !self.docs.contains_key(&doc_id) && may_create {
                    self.docs.insert(doc_id.clone(), (kind, vec![]));
                }
                Completion::Subscribed(match self.docs.get(&doc_id) {
                    Some((actual, _)) if *actual != kind => {
                        Err(RelayRefusal::new(ErrorCode::KindMismatch, "other kind"))
                    }
                    Some((actual, updates)) => Ok(CatchupData {
                        kind: *actual,
                        server_version: self.version(&doc_id),
                        snapshot: None,
                        updates: updates
                            .iter()
                            .filter(|u| !client_version.contains(&u.origin, u.seq))
                            .cloned()
                            .collect(),
                        lsn: self.lsn,
                    }),
                    None => Ok(CatchupData {
                        kind,
                        server_version: VersionVector::new(),
                        snapshot: None,
                        updates: vec![],
                        lsn: self.lsn,
                    }),
                })
            }
            RelayRequest::Append { doc_id, updates } => {
                let head = DocHead {
                    kind: self.docs[&doc_id].0,
                    version: self.version(&doc_id),
                };
                let stored = self.docs[&doc_id].1.clone();
                let plan = plan_append(
                    &head,
                    updates,
                    |o, s| {
                        Ok(stored
                            .iter()
                            .find(|u| &u.origin == o && u.seq == s)
                            .map(|u| u.data.clone()))
                    },
                    |_| Ok(()),
                );
                if !plan.accepted.is_empty() {
                    self.lsn += 1;
                }
                self.docs.get_mut(&doc_id).unwrap().1.extend(plan.accepted);
                Completion::Appended(AppendOutcome {
                    acked: plan.acked,
                    refusal: plan.refusal,
                    lsn: self.lsn,
                })
            }
            RelayRequest::ListDocs { prefix, .. } => {
                let mut docs: Vec<_> = self
                    .docs
                    .iter()
                    .filter(|(id, _)| id.starts_with(&prefix))
                    .map(|(id, (kind, _))| (id.clone(), *kind))
                    .collect();
                docs.sort();
                Completion::Listed(Ok(docs))
            }
        }
    }
}

/// A session, its host and the clock.
struct Pair {
    session: RelaySession,
    host: FakeHost,
    now: u64,
}

/// The frame limit of the session under test.
const MAX_FRAME: usize = 1 << 20;

impl Pair {
    fn new() -> Pair {
        Pair {
            session: RelaySession::new("test-relay", MAX_FRAME),
            host: FakeHost::default(),
            now: 10,
        }
    }

    /// Hands a message to the session without running its requests.
    fn deliver(&mut self, message: &Message) -> Vec<RelayOutput> {
        self.session
            .handle_frame(&protocol::encode(message), self.now, &FakeAuth)
    }

    /// Runs outputs to the end: requests are executed and completed at once.
    fn run(&mut self, outputs: Vec<RelayOutput>) -> Vec<Message> {
        let mut sent = Vec::new();
        let mut pending = std::collections::VecDeque::from(outputs);
        while let Some(output) = pending.pop_front() {
            match output {
                RelayOutput::Send(m) => sent.push(m),
                RelayOutput::Unfollow(_) | RelayOutput::Presence { .. } => {}
                RelayOutput::Request(id, request) => {
                    let completion = self.host.execute(request);
                    pending.extend(
                        self.session
                            .handle_completion(id, completion, self.now, &FakeAuth),
                    );
                }
            }
        }
        sent
    }

    fn send(&mut self, message: Message) -> Vec<Message> {
        let outputs = self.deliver(&message);
        self.run(outputs)
    }

    fn hello(&mut self, token: &str) -> Vec<Message> {
        self.send(Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: Origin::from("device".to_string()),
            token: Some(token.into()),
        }))
    }
}

fn subscribe(doc: &str, version: VersionVector) -> Message {
    Message::Subscribe(Subscribe {
        doc_id: doc.into(),
        kind: DocKind::Yrs,
        version,
        min_lsn: 0,
        linearizable: false,
    })
}

fn updates_msg(doc: &str, updates: Vec<UpdateRecord>) -> Message {
    Message::Updates(Updates {
        doc_id: doc.into(),
        updates,
        lsn: 0,
    })
}

/// `n` real Yrs updates of one device.
fn yrs_updates(n: usize) -> Vec<UpdateRecord> {
    let store = Store::open_in_memory().unwrap();
    store.create_doc("d", DocKind::Yrs).unwrap();
    for i in 0..n {
        store
            .transact("d", |tx| tx.insert_text("text", 0, &i.to_string()))
            .unwrap();
    }
    store.outbox("d").unwrap()
}

fn error_code(m: &Message) -> Option<ErrorCode> {
    match m {
        Message::Error(e) => Some(e.code),
        _ => None,
    }
}

#[test]
fn requests_before_hello_are_refused_and_hello_is_welcomed() {
    let mut p = Pair::new();
    let out = p.send(subscribe("d", VersionVector::new()));
    assert_eq!(
        out.iter().map(error_code).collect::<Vec<_>>(),
        vec![Some(ErrorCode::HelloRequired)]
    );
    assert!(p.host.docs.is_empty(), "no request reached the host");
    assert_eq!(p.send(Message::Ping(7)), vec![Message::Pong(7)]);
    let bad = p.send(Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        device_id: Origin::from("device".to_string()),
        token: Some("rw".into()),
    }));
    assert_eq!(error_code(&bad[0]), Some(ErrorCode::UnsupportedVersion));
    assert_eq!(
        error_code(&p.hello("nope")[0]),
        Some(ErrorCode::Unauthorized)
    );
    let out = p.hello("rw");
    assert!(matches!(&out[..], [Message::Welcome(w)] if w.server_id == "test-relay"));
    assert_eq!(p.session.device().map(|d| d.as_str()), Some("device"));
    assert_eq!(p.session.expires_at(), Some(100));
}

#[test]
fn subscribe_creates_the_document_and_catches_up() {
    let mut p = Pair::new();
    p.hello("rw");
    let ups = yrs_updates(3);
    p.host.docs.insert("d".into(), (DocKind::Yrs, ups.clone()));
    let mut have = VersionVector::new();
    have.advance(&ups[0].origin, 1);
    let out = p.send(subscribe("d", have));
    match &out[..] {
        [Message::Catchup(c), Message::Updates(u)] => {
            assert_eq!(c.server_version.get(&ups[0].origin), 3);
            assert_eq!(u.updates, ups[1..].to_vec());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(p.session.subscriptions().any(|d| d == "d"));
    // A new document is created by a writer; another kind is refused, naming the doc.
    let out = p.send(subscribe("new", VersionVector::new()));
    assert!(matches!(&out[..], [Message::Catchup(c)] if c.server_version.is_empty()));
    assert_eq!(p.host.docs["new"].0, DocKind::Yrs);
    p.host
        .docs
        .insert("am".into(), (DocKind::Automerge, vec![]));
    let out = p.send(subscribe("am", VersionVector::new()));
    assert!(
        matches!(&out[..], [Message::Error(e)] if e.code == ErrorCode::KindMismatch && e.doc_id.as_deref() == Some("am"))
    );
}

#[test]
fn acks_come_only_from_completed_appends_and_replies_keep_request_order() {
    let mut p = Pair::new();
    p.hello("rw");
    p.send(subscribe("d", VersionVector::new()));
    let ups = yrs_updates(3);
    let first = p.deliver(&updates_msg("d", ups[..2].to_vec()));
    let [RelayOutput::Request(id, request)] = &first[..] else {
        panic!("expected one append request, got {first:?}");
    };
    assert!(p.session.is_busy());
    // While the append is in flight, later frames wait: no Pong may overtake the Acks.
    assert!(p.deliver(&Message::Ping(1)).is_empty());
    assert!(p.deliver(&updates_msg("d", ups[2..].to_vec())).is_empty());
    assert!(p.host.docs["d"].1.is_empty(), "nothing is durable yet");
    let completion = p.host.execute(request.clone());
    let after = p
        .session
        .handle_completion(*id, completion, p.now, &FakeAuth);
    let sent = p.run(after);
    let origin = ups[0].origin.clone();
    let acks: Vec<_> = sent
        .iter()
        .map(|m| match m {
            Message::Ack(a) => format!("ack {}", a.upto),
            Message::Pong(n) => format!("pong {n}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(acks, vec!["ack 2", "pong 1", "ack 3"]);
    assert_eq!(p.host.version("d").get(&origin), 3);
    // A completion with an id that is not in flight is ignored.
    assert!(p
        .session
        .handle_completion(
            crate::sync::RequestId(999),
            Completion::Listed(Ok(vec![])),
            p.now,
            &FakeAuth
        )
        .is_empty());
}

#[test]
fn log_positions_flow_from_the_host_to_the_client_and_back() {
    let mut p = Pair::new();
    p.hello("rw");
    p.host.lsn = 40;
    // The subscribe's requirements reach the host; the catch-up names the host's position.
    let out = p.send(Message::Subscribe(Subscribe {
        doc_id: "d".into(),
        kind: DocKind::Yrs,
        version: VersionVector::new(),
        min_lsn: 39,
        linearizable: true,
    }));
    assert_eq!(p.host.subscribes, vec![(39, true)]);
    assert!(
        matches!(&out[..], [Message::Catchup(c)] if c.lsn == 40),
        "{out:?}"
    );
    // Every ack carries the position of the commit that stored its updates; a resend of
    // what is held is acked at the host's current position.
    let ups = yrs_updates(2);
    let out = p.send(updates_msg("d", ups.clone()));
    assert!(
        matches!(&out[..], [Message::Ack(a)] if a.upto == 2 && a.lsn == 41),
        "{out:?}"
    );
    p.host.lsn = 45;
    let out = p.send(updates_msg("d", ups.clone()));
    assert!(
        matches!(&out[..], [Message::Ack(a)] if a.upto == 2 && a.lsn == 45),
        "{out:?}"
    );
    // A catch-up's updates carry the position they were read at.
    let out = p.send(Message::Subscribe(Subscribe {
        doc_id: "d".into(),
        kind: DocKind::Yrs,
        version: VersionVector::new(),
        min_lsn: 45,
        linearizable: false,
    }));
    assert_eq!(p.host.subscribes.last(), Some(&(45, false)));
    match &out[..] {
        [Message::Catchup(c), Message::Updates(u)] => {
            assert_eq!((c.lsn, u.lsn), (45, 45));
            assert_eq!(u.updates, ups);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_refused_update_stops_the_batch() {
    let mut p = Pair::new();
    p.hello("rw");
    p.send(subscribe("d", VersionVector::new()));
    let ups = yrs_updates(4);
    let out = p.send(updates_msg(
        "d",
        vec![ups[0].clone(), ups[2].clone(), ups[1].clone()],
    ));
    match &out[..] {
        [Message::Ack(a), Message::Error(e)] => {
            assert_eq!(a.upto, 1);
            assert_eq!(e.code, ErrorCode::SeqGap);
            assert_eq!(e.doc_id.as_deref(), Some("d"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p.host.docs["d"].1, vec![ups[0].clone()]);
}

#[test]
fn writes_need_write_rights_and_a_subscription() {
    let mut p = Pair::new();
    p.hello("rw");
    let ups = yrs_updates(1);
    let out = p.send(updates_msg("d", ups.clone()));
    assert_eq!(error_code(&out[0]), Some(ErrorCode::NotSubscribed));
    let mut ro = Pair::new();
    ro.host.docs.insert("d".into(), (DocKind::Yrs, vec![]));
    ro.hello("ro");
    ro.send(subscribe("d", VersionVector::new()));
    let out = ro.send(updates_msg("d", ups));
    assert_eq!(error_code(&out[0]), Some(ErrorCode::Forbidden));
    let out = ro.send(Message::ListDocs(ListDocs {
        prefix: String::new(),
    }));
    assert!(
        matches!(&out[..], [Message::DocList(l)] if l.docs == vec![("d".to_string(), DocKind::Yrs)])
    );
}

#[test]
fn a_token_that_expires_mid_connection_stops_requests() {
    let mut p = Pair::new();
    p.now = 50;
    p.hello("rw");
    assert_eq!(p.session.handle_timeout(99), None);
    p.now = 100;
    let out = p.send(subscribe("d", VersionVector::new()));
    assert_eq!(error_code(&out[0]), Some(ErrorCode::TokenExpired));
    assert!(p.host.docs.is_empty());
    assert_eq!(p.send(Message::Ping(2)), vec![Message::Pong(2)]);
    let closing = p.session.handle_timeout(100).expect("expired");
    assert_eq!(error_code(&closing), Some(ErrorCode::TokenExpired));
    // A token already expired at Hello is refused there.
    let mut late = Pair::new();
    late.now = 150;
    assert_eq!(
        error_code(&late.hello("rw")[0]),
        Some(ErrorCode::TokenExpired)
    );
}

#[test]
fn an_oversized_frame_arriving_during_a_request_is_refused_in_its_turn() {
    let mut p = Pair::new();
    p.hello("rw");
    p.send(subscribe("d", VersionVector::new()));
    let first = p.deliver(&updates_msg("d", yrs_updates(1)));
    let [RelayOutput::Request(id, request)] = &first[..] else {
        panic!("expected one append request, got {first:?}");
    };
    let limit = MAX_FRAME;
    assert!(p
        .session
        .handle_frame(&vec![0u8; limit + 1], p.now, &FakeAuth)
        .is_empty());
    assert!(p.deliver(&Message::Ping(7)).is_empty());
    let completion = p.host.execute(request.clone());
    let after = p
        .session
        .handle_completion(*id, completion, p.now, &FakeAuth);
    let sent = p.run(after);
    let kinds: Vec<String> = sent
        .iter()
        .map(|m| match m {
            Message::Ack(_) => "ack".to_string(),
            Message::Pong(n) => format!("pong {n}"),
            m => format!("{:?}", error_code(m)),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "ack".to_string(),
            format!("{:?}", Some(ErrorCode::FrameTooLarge)),
            "pong 7".to_string()
        ]
    );
}

fn presence(doc: &str, state: &[u8]) -> Message {
    Message::Presence(protocol::Presence {
        doc_id: doc.into(),
        peer: 99,
        device_id: Origin::from("someone-else".to_string()),
        state: state.to_vec(),
    })
}

#[test]
fn presence_needs_a_subscription_and_a_small_state_and_names_the_device() {
    let mut p = Pair::new();
    p.hello("rw");
    // Not subscribed: refused, naming the document.
    let out = p.send(presence("d", b"{}"));
    assert!(matches!(&out[..], [Message::Error(e)]
        if e.code == ErrorCode::NotSubscribed && e.doc_id.as_deref() == Some("d")));
    p.send(subscribe("d", VersionVector::new()));
    // Subscribed: handed to the host with the handshake's device (not the one claimed).
    let outputs = p.deliver(&presence("d", b"{\"name\":\"ann\"}"));
    match &outputs[..] {
        [RelayOutput::Presence {
            doc_id,
            device_id,
            state,
        }] => {
            assert_eq!(doc_id, "d");
            assert_eq!(device_id, &Origin::from("device".to_string()));
            assert_eq!(state, b"{\"name\":\"ann\"}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Too large: refused; nothing reaches the host.
    let big = vec![b'x'; protocol::MAX_PRESENCE_BYTES + 1];
    let outputs = p.deliver(&presence("d", &big));
    assert!(
        matches!(&outputs[..], [RelayOutput::Send(Message::Error(e))]
        if e.code == ErrorCode::FrameTooLarge)
    );
}

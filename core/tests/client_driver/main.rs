//! The sans-IO client driver (`concord_core::sync::ClientDriver`) against a scripted relay
//! on a simulated clock, with an in-memory device log: syncing, keepalive, reconnect
//! backoff, fatal and per-document refusals, the outbox across reconnects; against a
//! cluster (`cluster.rs`): LSNs, `min_lsn`, moving to another node.

mod cluster;
mod fake_relay;
mod mem_log;
mod pair;

use std::time::Duration;

use concord_core::protocol::{ErrorCode, Message, Updates};
use concord_core::sync::{
    Backoff, ClientError, DeviceLog, DriverMode, SeededRandom, EXTERNAL_POLL_EVERY,
    INTAKE_HOLD_FACTOR, KEEPALIVE_AFTER, MAX_INTAKE_HOLD, PRESENCE_REFRESH,
};
use concord_core::{DocKind, Origin, UpdateRecord};

use fake_relay::FakeRelay;
use mem_log::MemLog;
use pair::Pair;

const URL: &str = "ws://relay/sync";

fn once() -> DriverMode {
    DriverMode::Once {
        timeout: Duration::from_secs(30),
    }
}

fn background(backoff: Backoff) -> DriverMode {
    DriverMode::Background { backoff }
}

/// A background client over `log`, connected to an empty relay.
fn background_pair(log: MemLog) -> Pair {
    Pair::new(
        log,
        FakeRelay::default(),
        background(Backoff::default()),
        &[URL],
        1,
    )
}

/// A background client whose relay answers its Hello with `code`.
fn hello_refused_with(code: ErrorCode) -> Pair {
    let relay = FakeRelay {
        refuse_hello: Some(code),
        ..FakeRelay::default()
    };
    Pair::new(
        device_with(&["d"]),
        relay,
        background(Backoff::default()),
        &[URL],
        1,
    )
}

fn device_with(docs: &[&str]) -> MemLog {
    let log = MemLog::new("device");
    for doc in docs {
        log.create(doc, DocKind::Automerge);
    }
    log
}

fn received_updates(relay: &FakeRelay, doc_id: &str) -> usize {
    relay
        .received
        .iter()
        .filter_map(|m| match m {
            Message::Updates(u) if u.doc_id == doc_id => Some(u.updates.len()),
            _ => None,
        })
        .sum()
}

#[test]
fn a_one_shot_sync_exchanges_updates_both_ways_then_closes() {
    let log = device_with(&["d"]);
    log.commit("d", b"mine 1");
    log.commit("d", b"mine 2");
    let mut relay = FakeRelay::default();
    relay.seed("d", DocKind::Automerge, "other", 1, b"theirs");
    relay.seed("only-on-relay", DocKind::Yrs, "other", 1, b"new doc");

    let pair = Pair::new(log.clone(), relay, once(), &[URL], 1);

    assert!(matches!(pair.ended, Some(Ok(()))), "{:?}", pair.ended);
    assert_eq!(pair.closes, 1);
    assert!(!pair.connected);
    let device = Origin::from("device");
    let other = Origin::from("other");
    assert!(pair.relay.holds("d", &device, 2));
    assert!(log.version("d").contains(&other, 1));
    assert!(log.has("only-on-relay"));
    assert!(log.version("only-on-relay").contains(&other, 1));
    assert_eq!(log.pending_of("d"), 0);
    assert_eq!(
        pair.driver.poll_timeout(),
        None,
        "an ended driver wants no timer"
    );
}

#[test]
fn a_connection_is_probed_with_a_ping_every_keepalive_period_busy_or_idle() {
    let mut pair = Pair::new(
        device_with(&["d"]),
        FakeRelay::default(),
        background(Backoff::default()),
        &[URL],
        1,
    );
    assert!(pair.status.connected);
    assert_eq!(pair.relay.pings(), 0);

    // Traffic does not defer the probe: the Pong is what shows requests are answered.
    pair.advance(KEEPALIVE_AFTER / 2);
    pair.commit("d", b"edit");
    pair.advance(KEEPALIVE_AFTER / 2 - Duration::from_millis(1));
    assert_eq!(pair.relay.pings(), 0, "a ping before the keepalive period");
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.relay.pings(), 1, "no ping on a busy connection");

    // Idle: one ping per keepalive period after the last was answered, each numbered anew.
    pair.advance(KEEPALIVE_AFTER);
    assert_eq!(pair.relay.pings(), 2);
    pair.advance(KEEPALIVE_AFTER * 3);
    assert_eq!(pair.relay.pings(), 5);
    let nonces: Vec<u64> = pair
        .relay
        .received
        .iter()
        .filter_map(|m| match m {
            Message::Ping(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(nonces, [1, 2, 3, 4, 5]);
    assert!(pair.connected && pair.ended.is_none());
    assert_eq!(pair.closes, 0, "answered pings keep the connection");
}

#[test]
fn reconnects_use_growing_capped_jittered_backoff_from_the_injected_random_source() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
    };
    let relay = FakeRelay {
        up: false,
        ..FakeRelay::default()
    };
    let seed = 7;
    let mut pair = Pair::new(
        device_with(&["d"]),
        relay,
        background(backoff.clone()),
        &[URL],
        seed,
    );

    let mut delays = Vec::new();
    for attempt in 0..8u32 {
        assert_eq!(pair.status.retries, attempt + 1);
        assert!(!pair.status.connected);
        assert!(pair.status.last_error.is_some());
        let failed_at = pair.now;
        assert!(pair.step_timeout());
        delays.push(pair.now - failed_at);
    }
    // Every delay is within [ceiling/2, ceiling] of a ceiling that doubles up to the cap.
    let ceilings: Vec<Duration> = (0..8).map(|a| backoff.ceiling(a)).collect();
    assert_eq!(
        ceilings.iter().map(|c| c.as_millis()).collect::<Vec<_>>(),
        vec![100, 200, 400, 800, 1000, 1000, 1000, 1000]
    );
    for (delay, ceiling) in delays.iter().zip(&ceilings) {
        assert!(
            *delay >= *ceiling / 2 && delay <= ceiling,
            "{delay:?} not within {ceiling:?}"
        );
    }
    // Jittered: the capped delays are not all equal. Deterministic: the same seed
    // gives the same delays.
    assert!(delays[4..].windows(2).any(|w| w[0] != w[1]), "{delays:?}");
    let mut random = SeededRandom::new(seed);
    let expected: Vec<Duration> = (0..8).map(|a| backoff.delay(a, &mut random)).collect();
    assert_eq!(delays, expected);
    assert_eq!(pair.connects.len(), 9);

    // The relay comes back: the next attempt connects and the retry count resets.
    pair.relay.up = true;
    assert!(pair.step_timeout());
    assert!(pair.connected);
    assert!(pair.status.connected);
    assert_eq!(pair.status.retries, 0);
    assert_eq!(pair.status.last_error, None);

    // After a successful handshake the backoff starts again from the bottom.
    pair.break_connection();
    let failed_at = pair.now;
    let ceiling = backoff.ceiling(0);
    let next = pair.driver.poll_timeout().unwrap() - failed_at;
    assert!(next >= ceiling / 2 && next <= ceiling, "{next:?}");
}

#[test]
fn attempts_rotate_over_the_relay_urls() {
    let relay = FakeRelay {
        up: false,
        ..FakeRelay::default()
    };
    let mut pair = Pair::new(
        device_with(&[]),
        relay,
        background(Backoff::default()),
        &["ws://a", "ws://b"],
        1,
    );
    for _ in 0..3 {
        pair.step_timeout();
    }
    let urls: Vec<&str> = pair.connects.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(urls, ["ws://a", "ws://b", "ws://a", "ws://b"]);
}

#[test]
fn an_expired_token_ends_the_session_without_reconnecting() {
    let mut pair = hello_refused_with(ErrorCode::TokenExpired);

    match &pair.ended {
        Some(Err(ClientError::Refused(e))) => assert_eq!(e.code, ErrorCode::TokenExpired),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        pair.status.stopped.as_ref().map(|e| e.code),
        Some(ErrorCode::TokenExpired)
    );
    assert!(!pair.status.connected);
    assert_eq!(pair.closes, 1);
    assert_eq!(pair.driver.poll_timeout(), None);
    pair.advance(Duration::from_secs(3600));
    assert_eq!(
        pair.connects.len(),
        1,
        "it reconnected after a fatal refusal"
    );
}

#[test]
fn a_relay_that_cannot_read_the_hello_ends_the_session_without_reconnecting() {
    // A relay of another protocol (or a proxy mangling frames) answers the handshake with
    // a framing error: the same Hello would be refused again, so the client stops and
    // says why instead of waiting for a Welcome that never comes.
    for code in [
        ErrorCode::MalformedFrame,
        ErrorCode::UnknownMessage,
        ErrorCode::FrameTooLarge,
        ErrorCode::HelloRequired,
    ] {
        let mut pair = hello_refused_with(code);
        match &pair.ended {
            Some(Err(ClientError::Refused(e))) => assert_eq!(e.code, code),
            other => panic!("{code}: expected a refusal, got {other:?}"),
        }
        assert_eq!(pair.status.stopped.as_ref().map(|e| e.code), Some(code));
        assert!(!pair.status.connected);
        pair.advance(Duration::from_secs(3600));
        assert_eq!(pair.connects.len(), 1, "{code}: it reconnected");
    }
}

#[test]
fn errors_of_a_connection_that_ended_are_not_taken_for_the_next_hellos_answer() {
    // A connection can end (on a store error) before its error frames are acted on; on
    // the next connection, before its Welcome, they would read as the relay refusing the
    // new Hello and stop the client for good.
    let mut session = concord_core::sync::ClientSession::new(
        device_with(&["d"]),
        concord_core::sync::ClientConfig::default(),
    );
    session.connected();
    let old = Message::error(ErrorCode::MalformedFrame, "from the old connection", None);
    session.handle(old).unwrap();
    session.disconnected();
    session.connected();
    assert!(session.awaiting_welcome());
    assert_eq!(session.take_errors(), vec![]);
}

#[test]
fn a_handshake_that_failed_on_the_relay_is_retried_on_a_new_connection() {
    // `internal` (the relay failed to store) is not about the Hello, but no Welcome
    // follows it: the client leaves that connection and tries again after its backoff,
    // instead of waiting on it for good.
    let mut pair = hello_refused_with(ErrorCode::Internal);
    assert!(pair.ended.is_none(), "ended: {:?}", pair.ended);
    assert!(pair.status.stopped.is_none());
    assert!(!pair.status.connected);
    assert_eq!(pair.closes, 1, "the connection was not left");
    pair.relay.refuse_hello = None;
    pair.advance(Duration::from_secs(60));
    assert!(pair.connects.len() >= 2, "no new connection");
    assert!(pair.status.connected);
    assert!(
        pair.relay
            .received
            .iter()
            .any(|m| matches!(m, Message::Subscribe(s) if s.doc_id == "d")),
        "the new connection did not get past the handshake"
    );
}

#[test]
fn a_refused_document_is_reported_once_and_the_others_sync() {
    let log = device_with(&["a", "secret", "z"]);
    for doc in ["a", "secret", "z"] {
        log.commit(doc, b"edit");
    }
    let mut relay = FakeRelay::default();
    relay.forbidden.insert("secret".into());
    let pair = Pair::new(log.clone(), relay, once(), &[URL], 1);

    assert_eq!(pair.refused.len(), 1, "{:?}", pair.refused);
    assert_eq!(pair.refused[0].doc_id.as_deref(), Some("secret"));
    assert_eq!(pair.refused[0].code, ErrorCode::Forbidden);
    match &pair.ended {
        Some(Err(ClientError::DocumentsRefused(refused))) => {
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].doc_id.as_deref(), Some("secret"));
        }
        other => panic!("expected the refused document, got {other:?}"),
    }
    let device = Origin::from("device");
    assert!(pair.relay.holds("a", &device, 1) && pair.relay.holds("z", &device, 1));
    assert_eq!((log.pending_of("a"), log.pending_of("z")), (0, 0));
    assert_eq!(
        log.pending_of("secret"),
        1,
        "a refused document keeps its outbox"
    );
}

#[test]
fn the_outbox_is_resent_after_a_reconnect() {
    let log = device_with(&["d"]);
    let mut pair = background_pair(log.clone());
    assert!(pair.connected);

    // The relay stops answering: the edit is sent but lost, and stays in the outbox.
    pair.relay.black_hole = true;
    pair.commit("d", b"lost in transit");
    assert_eq!(log.pending_of("d"), 1);
    pair.break_connection();
    pair.relay.black_hole = false;

    // The reconnect (after the backoff) resends it and the relay acknowledges it.
    assert!(pair.step_timeout());
    assert!(pair.connected);
    assert!(pair.relay.holds("d", &Origin::from("device"), 1));
    assert_eq!(received_updates(&pair.relay, "d"), 1);
    assert_eq!(log.pending_of("d"), 0);
}

#[test]
fn commits_by_another_process_are_found_by_polling() {
    let log = device_with(&["d"]);
    let mut pair = background_pair(log.clone());
    log.commit_from_another_process("d", b"from a sync --watch");
    assert_eq!(received_updates(&pair.relay, "d"), 0);

    pair.advance(EXTERNAL_POLL_EVERY);
    assert_eq!(received_updates(&pair.relay, "d"), 1);
    assert_eq!(log.pending_of("d"), 0);
}

#[test]
fn a_one_shot_sync_gives_up_at_its_timeout() {
    let relay = FakeRelay {
        black_hole: true,
        ..FakeRelay::default()
    };
    let timeout = Duration::from_secs(5);
    let mut pair = Pair::new(
        device_with(&["d"]),
        relay,
        DriverMode::Once { timeout },
        &[URL],
        1,
    );
    assert!(pair.ended.is_none());
    pair.advance(timeout);
    assert!(
        matches!(pair.ended, Some(Err(ClientError::Timeout(t))) if t == timeout),
        "{:?}",
        pair.ended
    );
    assert_eq!(pair.closes, 1);
}

#[test]
fn a_one_shot_sync_ends_when_the_connection_drops() {
    let relay = FakeRelay {
        black_hole: true,
        ..FakeRelay::default()
    };
    let mut pair = Pair::new(device_with(&["d"]), relay, once(), &[URL], 1);
    pair.break_connection();
    assert!(
        matches!(pair.ended, Some(Err(ClientError::Disconnected(_)))),
        "{:?}",
        pair.ended
    );
    assert_eq!(pair.connects.len(), 1, "a one-shot sync does not reconnect");
}

/// Another device's update `seq`, fanned out live by the relay.
fn live_update(doc_id: &str, seq: u64) -> Message {
    Message::Updates(Updates {
        doc_id: doc_id.into(),
        updates: vec![UpdateRecord {
            origin: Origin::from("other"),
            seq,
            data: format!("theirs {seq}").into_bytes(),
        }],
        lsn: 100 + seq,
    })
}

#[test]
fn a_background_client_holds_live_updates_while_its_last_apply_is_paid_for() {
    let log = device_with(&["d"]);
    let mut pair = background_pair(log.clone());
    assert!(pair.status.connected);
    let other = Origin::from("other");
    let cost = Duration::from_millis(5);
    log.set_apply_cost(cost);
    let applies = log.applies();

    // Nothing applied yet on this connection: the first update is applied at once, and
    // its cost measured.
    pair.push(&live_update("d", 1));
    assert_eq!(log.applies(), applies + 1);
    assert_eq!(log.version("d").get(&other), 1);

    // The next ones wait for a hold of about four times that cost, and are applied
    // together.
    pair.push(&live_update("d", 2));
    pair.push(&live_update("d", 3));
    assert_eq!(
        log.applies(),
        applies + 1,
        "held while the last apply is paid for"
    );
    assert_eq!(log.version("d").get(&other), 1);
    let due = pair
        .driver
        .poll_timeout()
        .expect("the held updates are due");
    assert!(
        due >= pair.now + cost * INTAKE_HOLD_FACTOR,
        "held at least 4x the apply"
    );
    assert!(
        due <= pair.now + MAX_INTAKE_HOLD,
        "never longer than the cap"
    );
    // Acks do not wait for them: a local commit is sent and acknowledged meanwhile.
    pair.commit("d", b"mine");
    assert_eq!(pair.acked.len(), 1);
    assert_eq!(log.version("d").get(&other), 1);

    pair.step_timeout();
    assert_eq!(log.applies(), applies + 2, "one apply for both");
    assert_eq!(log.version("d").get(&other), 3);
}

/// A background client whose last apply cost 5 ms: of two live updates, the first is
/// applied and the second held.
fn second_live_update_held() -> (MemLog, Pair) {
    let log = device_with(&["d"]);
    let mut pair = background_pair(log.clone());
    log.set_apply_cost(Duration::from_millis(5));
    pair.push(&live_update("d", 1));
    pair.push(&live_update("d", 2));
    assert_eq!(
        log.version("d").get(&Origin::from("other")),
        1,
        "update 2 is held"
    );
    (log, pair)
}

#[test]
fn held_live_updates_are_applied_before_the_connection_is_given_up() {
    let (log, mut pair) = second_live_update_held();
    pair.break_connection();
    assert_eq!(log.version("d").get(&Origin::from("other")), 2);
}

#[test]
fn stopping_applies_the_held_live_updates_and_closes() {
    let (log, mut pair) = second_live_update_held();
    let closes = pair.closes;
    pair.driver.stop();
    pair.drive();
    assert_eq!(log.version("d").get(&Origin::from("other")), 2);
    assert_eq!(pair.closes, closes + 1, "the connection is closed");
    assert!(pair.driver.is_ended());
    pair.driver.stop();
    assert!(
        pair.driver.poll_event().is_none(),
        "a second stop does nothing"
    );
}

/// A device syncing a prefix finds documents that others create on the relay after it
/// connected: it lists the prefix again on every presence beat and subscribes what is new
/// (before, only a new connection listed again).
#[test]
fn a_document_created_on_the_relay_after_connecting_is_found_and_subscribed() {
    let mut pair = background_pair(MemLog::new("device"));
    assert!(pair.status.connected);
    let subscribed = |pair: &Pair, doc: &str| {
        pair.relay
            .received
            .iter()
            .any(|m| matches!(m, Message::Subscribe(s) if s.doc_id == doc))
    };
    // Another device creates a document after this one listed the relay's.
    pair.relay
        .seed("late", DocKind::Automerge, "other", 1, b"made later");
    pair.advance(PRESENCE_REFRESH - Duration::from_millis(1));
    assert!(
        !subscribed(&pair, "late"),
        "not listed again before the beat"
    );
    pair.advance(Duration::from_millis(1));
    assert!(
        subscribed(&pair, "late"),
        "found on the next listing and subscribed"
    );
    assert_eq!(pair.log.doc_kind("late").unwrap(), Some(DocKind::Automerge));
}

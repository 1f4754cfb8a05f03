//! The driver against a relay cluster: log positions (LSNs) from acks and catch-ups are kept
//! for the driver's life and sent as `min_lsn` on every subscribe; a node that answers
//! `replica_behind` or `unavailable` is left for the next URL with the outbox intact; a
//! one-shot sync tries the next node.

use std::time::Duration;

use concord_core::protocol::{Message, Updates};
use concord_core::sync::{
    Backoff, ClientConfig, ClientError, DriverMode, KEEPALIVE_AFTER, SILENT_AFTER,
};
use concord_core::{DocKind, Origin, UpdateRecord};

use crate::fake_relay::FakeRelay;
use crate::mem_log::MemLog;
use crate::pair::Pair;

fn background() -> DriverMode {
    DriverMode::Background {
        backoff: Backoff::default(),
    }
}

fn device_with_doc() -> MemLog {
    let log = MemLog::new("device");
    log.create("d", DocKind::Automerge);
    log
}

/// `(min_lsn, linearizable)` of every `Subscribe` the relay received, in order.
fn subscribes(relay: &FakeRelay) -> Vec<(u64, bool)> {
    relay
        .received
        .iter()
        .filter_map(|m| match m {
            Message::Subscribe(s) => Some((s.min_lsn, s.linearizable)),
            _ => None,
        })
        .collect()
}

/// How many copies of the device's updates the relay stored (resends must not add any).
fn stored_own(relay: &FakeRelay) -> usize {
    let device = Origin::from("device");
    relay.docs["d"]
        .updates
        .iter()
        .filter(|u| u.origin == device)
        .count()
}

fn urls(pair: &Pair) -> Vec<&str> {
    pair.connects.iter().map(|(_, u)| u.as_str()).collect()
}

#[test]
fn acks_reach_the_app_with_their_lsn_and_the_highest_lsn_is_sent_on_every_resubscribe() {
    let log = device_with_doc();
    let mut pair = Pair::new(
        log.clone(),
        FakeRelay::default(),
        background(),
        &["ws://a", "ws://b"],
        1,
    );
    assert_eq!(subscribes(&pair.relay), vec![(0, false)]);

    pair.commit("d", b"one");
    pair.commit("d", b"two");
    let acks: Vec<(u64, u64)> = pair.acked.iter().map(|a| (a.upto, a.lsn)).collect();
    assert_eq!(acks, vec![(1, 1), (2, 2)]);
    assert!(pair.acked.iter().all(|a| a.doc_id == "d"));
    assert!(pair
        .acked
        .iter()
        .all(|a| a.origin == Origin::from("device")));
    assert_eq!(pair.driver.max_lsn(), 2);
    assert_eq!(pair.status.max_lsn, 2);

    // Reconnect (to the next node): the subscribe carries the highest acked position.
    pair.break_connection();
    assert!(pair.step_timeout());
    assert_eq!(urls(&pair), ["ws://a", "ws://b"]);
    assert_eq!(subscribes(&pair.relay).last(), Some(&(2, false)));

    // Served positions count too: a catch-up at LSN 9 raises it, and it survives the next
    // reconnect and node switch.
    pair.relay.lsn = 9;
    pair.break_connection();
    assert!(pair.step_timeout());
    assert_eq!(pair.driver.max_lsn(), 9);
    pair.break_connection();
    assert!(pair.step_timeout());
    assert_eq!(urls(&pair), ["ws://a", "ws://b", "ws://a", "ws://b"]);
    assert_eq!(
        subscribes(&pair.relay),
        vec![(0, false), (2, false), (2, false), (9, false)]
    );
    // A node at a lower position never lowers it.
    pair.relay.lsn = 3;
    pair.break_connection();
    assert!(pair.step_timeout());
    assert_eq!(pair.driver.max_lsn(), 9);
    assert_eq!(pair.status.max_lsn, 9);
}

#[test]
fn the_configured_linearizable_option_and_starting_lsn_are_sent_on_subscribe() {
    let config = ClientConfig {
        linearizable: true,
        min_lsn: 7,
        ..ClientConfig::default()
    };
    let pair = Pair::with_config(
        device_with_doc(),
        FakeRelay::default(),
        background(),
        &["ws://a"],
        1,
        config,
    );
    assert_eq!(subscribes(&pair.relay), vec![(7, true)]);
    assert_eq!(
        pair.driver.max_lsn(),
        7,
        "a lower catch-up LSN does not lower it"
    );
}

#[test]
fn replica_behind_sends_the_client_to_the_next_node_and_keeps_the_outbox() {
    let log = device_with_doc();
    let mut pair = Pair::new(
        log.clone(),
        FakeRelay::default(),
        background(),
        &["ws://a", "ws://b"],
        1,
    );
    pair.commit("d", b"acked");
    assert_eq!(pair.driver.max_lsn(), 1);

    // An edit is lost in transit; the connection breaks; the next node lags behind.
    pair.relay.black_hole = true;
    pair.commit("d", b"unacked");
    pair.relay.black_hole = false;
    pair.break_connection();
    pair.relay.lagging.insert("ws://b".into());
    assert!(pair.step_timeout());

    // The lagging node refused the subscribe: the driver left it and waits to try again.
    assert_eq!(urls(&pair), ["ws://a", "ws://b"]);
    assert_eq!(subscribes(&pair.relay).last(), Some(&(1, false)));
    assert!(!pair.connected && !pair.status.connected);
    assert!(pair.ended.is_none());
    assert!(pair.refused.is_empty(), "replica_behind is not a refusal");
    assert!(
        pair.status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("replica_behind")),
        "{:?}",
        pair.status.last_error
    );
    assert_eq!(log.pending_of("d"), 1, "the outbox keeps the unacked edit");

    // After the backoff, the next node serves it: the outbox is resent and acked once.
    assert!(pair.step_timeout());
    assert_eq!(urls(&pair), ["ws://a", "ws://b", "ws://a"]);
    assert!(pair.connected);
    assert_eq!(log.pending_of("d"), 0);
    assert_eq!(stored_own(&pair.relay), 2);
    assert_eq!(pair.acked.last().map(|a| (a.upto, a.lsn)), Some((2, 2)));
}

#[test]
fn an_unavailable_write_is_resent_on_the_next_node() {
    let log = device_with_doc();
    let mut relay = FakeRelay::default();
    relay.leaderless.insert("ws://a".into());
    let mut pair = Pair::new(log.clone(), relay, background(), &["ws://a", "ws://b"], 1);
    assert!(pair.connected, "subscribing needs no leader");

    pair.commit("d", b"edit");
    assert!(!pair.connected, "the driver left the node without a leader");
    assert_eq!(log.pending_of("d"), 1);
    assert!(pair.acked.is_empty());
    assert!(pair.step_timeout());
    assert_eq!(urls(&pair), ["ws://a", "ws://b"]);
    assert_eq!(log.pending_of("d"), 0);
    assert_eq!(stored_own(&pair.relay), 1);
    assert_eq!(pair.acked.len(), 1);
}

#[test]
fn a_one_shot_sync_moves_past_unreachable_and_leaderless_nodes() {
    let once = DriverMode::Once {
        timeout: Duration::from_secs(30),
    };
    // The first node is down, the second has no leader, the third serves.
    let log = device_with_doc();
    log.commit("d", b"edit");
    let mut relay = FakeRelay::default();
    relay.down.insert("ws://a".into());
    relay.leaderless.insert("ws://b".into());
    let mut pair = Pair::new(
        log.clone(),
        relay,
        once.clone(),
        &["ws://a", "ws://b", "ws://c"],
        1,
    );
    for _ in 0..10 {
        if pair.ended.is_some() {
            break;
        }
        pair.step_timeout();
    }
    assert!(matches!(pair.ended, Some(Ok(()))), "{:?}", pair.ended);
    assert_eq!(urls(&pair), ["ws://a", "ws://b", "ws://c"]);
    assert_eq!(log.pending_of("d"), 0);

    // Every node unreachable: it gives up after trying each once.
    let relay = FakeRelay {
        up: false,
        ..FakeRelay::default()
    };
    let mut pair = Pair::new(device_with_doc(), relay, once, &["ws://a", "ws://b"], 1);
    for _ in 0..10 {
        if pair.ended.is_some() {
            break;
        }
        pair.step_timeout();
    }
    assert!(
        matches!(pair.ended, Some(Err(ClientError::Connect { .. }))),
        "{:?}",
        pair.ended
    );
    assert_eq!(urls(&pair), ["ws://a", "ws://b"]);
}

#[test]
fn the_backoff_grows_while_every_node_refuses() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
    };
    let log = device_with_doc();
    let mut relay = FakeRelay::default();
    relay.leaderless.insert("ws://a".into());
    relay.leaderless.insert("ws://b".into());
    let mut pair = Pair::new(
        log.clone(),
        relay,
        DriverMode::Background {
            backoff: backoff.clone(),
        },
        &["ws://a", "ws://b"],
        3,
    );
    pair.commit("d", b"edit");
    // Each node answers the handshake, then refuses the write: the pauses still grow.
    let mut waits = Vec::new();
    for _ in 0..5 {
        let refused_at = pair.now;
        assert!(pair.step_timeout());
        waits.push(pair.connects.last().unwrap().0 - refused_at);
    }
    for (attempt, wait) in waits.iter().enumerate() {
        let ceiling = backoff.ceiling(attempt as u32);
        assert!(
            *wait >= ceiling / 2 && *wait <= ceiling,
            "{waits:?}: attempt {attempt} waited {wait:?}, not within {ceiling:?}"
        );
    }
    assert_eq!(log.pending_of("d"), 1);

    // A node that can take the write again: acked, and the backoff starts from the bottom.
    pair.relay.leaderless.clear();
    assert!(pair.step_timeout());
    assert_eq!(log.pending_of("d"), 0);
    pair.break_connection();
    let next = pair.driver.poll_timeout().unwrap() - pair.now;
    assert!(next <= backoff.ceiling(0), "{next:?}");
}

#[test]
fn a_relay_that_goes_silent_with_the_socket_open_is_left_for_the_next_node() {
    let log = device_with_doc();
    let mut pair = Pair::new(
        log.clone(),
        FakeRelay::default(),
        background(),
        &["ws://a", "ws://b"],
        1,
    );
    assert!(pair.connected);
    // The node hangs: frames go in, nothing comes back, the socket stays open.
    pair.relay.black_hole = true;
    pair.commit("d", b"waiting");
    assert_eq!(log.pending_of("d"), 1);
    let closes = pair.closes;
    pair.advance(SILENT_AFTER - Duration::from_secs(1));
    assert_eq!(
        pair.closes, closes,
        "not given up on before the silence limit"
    );
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.closes, closes + 1, "the silent connection is closed");
    // The next attempt goes to the next node, which answers: the update is acknowledged.
    pair.relay.black_hole = false;
    assert!(pair.step_timeout());
    assert_eq!(urls(&pair), ["ws://a", "ws://b"]);
    assert_eq!(log.pending_of("d"), 0);
}

/// A node whose request path hangs while it still forwards other devices' updates: the
/// connection is never silent, but the ping sent a keepalive period in goes unanswered,
/// and after [`SILENT_AFTER`] the device moves to the next node, where its update is
/// acknowledged.
#[test]
fn a_relay_that_forwards_updates_but_answers_no_request_is_left_for_the_next_node() {
    let log = device_with_doc();
    let mut pair = Pair::new(
        log.clone(),
        FakeRelay::default(),
        background(),
        &["ws://a", "ws://b"],
        1,
    );
    assert!(pair.connected);
    let connected_at = pair.now;
    pair.relay.stalled = true;
    pair.commit("d", b"waiting");
    assert_eq!(log.pending_of("d"), 1);
    let closes = pair.closes;
    let other = Origin::from("other-device");
    let mut seq = 0;
    while pair.closes == closes && pair.now < connected_at + Duration::from_secs(120) {
        seq += 1;
        pair.push(&Message::Updates(Updates {
            doc_id: "d".into(),
            updates: vec![UpdateRecord {
                origin: other.clone(),
                seq,
                data: b"fanned out".to_vec(),
            }],
            lsn: seq,
        }));
        pair.advance(Duration::from_secs(1));
    }
    assert_eq!(pair.closes, closes + 1, "the hung connection is closed");
    let pinged = pair
        .relay
        .received
        .iter()
        .any(|m| matches!(m, Message::Ping(_)));
    assert!(pinged, "a ping went out on the busy connection");
    let after = pair.now - connected_at;
    assert!(
        after >= KEEPALIVE_AFTER + SILENT_AFTER
            && after <= KEEPALIVE_AFTER + SILENT_AFTER + Duration::from_secs(1),
        "closed {after:?} after connecting: the unanswered ping decides, not the fan-out"
    );
    assert_eq!(
        log.version("d").get(&other),
        seq,
        "the fan-out was applied meanwhile"
    );
    pair.relay.stalled = false;
    assert!(pair.step_timeout());
    assert_eq!(urls(&pair), ["ws://a", "ws://b"]);
    assert_eq!(log.pending_of("d"), 0);
}

/// A relay that lost an update it acknowledged (a cluster leader that died before a
/// follower had it, under the `leader` write concern) refuses the device's next one with
/// `seq_gap`: the device resubscribes on the same connection, and the catch-up resends what
/// the relay lacks from the device's log. Nothing is refused for good.
#[test]
fn a_seq_gap_resyncs_the_document_and_resends_what_the_relay_lost() {
    let log = device_with_doc();
    let relay = FakeRelay {
        refuse_gaps: true,
        ..FakeRelay::default()
    };
    let mut pair = Pair::new(log.clone(), relay, background(), &["ws://a"], 1);
    pair.commit("d", b"one");
    pair.commit("d", b"two");
    assert_eq!(pair.acked.last().map(|a| a.upto), Some(2));

    // The relay loses seq 2 after acknowledging it.
    let device = Origin::from("device");
    let doc = pair.relay.docs.get_mut("d").unwrap();
    doc.updates.retain(|u| !(u.origin == device && u.seq == 2));
    doc.version.set(device.clone(), 1);

    pair.commit("d", b"three");
    assert!(pair.refused.is_empty(), "refused: {:?}", pair.refused);
    assert_eq!(pair.connects.len(), 1, "resynced on the same connection");
    for seq in 1..=3 {
        assert!(
            pair.relay.holds("d", &device, seq),
            "the relay lacks seq {seq}"
        );
    }
    assert_eq!(stored_own(&pair.relay), 3);
    assert_eq!(pair.acked.last().map(|a| a.upto), Some(3));
    assert_eq!(log.pending_of("d"), 0);
}

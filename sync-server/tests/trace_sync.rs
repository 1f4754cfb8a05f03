//! A real editing trace (`trace_support`) typed through two devices and a relay process:
//! one device types the first third in commits of varying size while the other follows
//! live, then the second third while the other is offline (it catches up on reconnecting),
//! then the second device types the rest while the first follows (a user moving to
//! another device); and both devices typing at once into one document. Each keystroke run
//! is a durable commit synced by background clients; the devices must hold the trace's
//! text at every hand-off and at the end, after reopening their files, with nothing left
//! to send and `Store::check` clean.

mod common;
mod trace_support;

use std::time::{Duration, Instant};

use common::ServerProcess;
use concord_core::native_client::{Backoff, SyncClient};
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};
use trace_support::{text_at, type_txns, wait_for_texts, Trace, DOC, TEXT};

fn client(store: &Store, server: &ServerProcess) -> SyncClient {
    SyncClient::spawn(
        store.clone(),
        [server.url()],
        ClientConfig::default(),
        Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
    )
}

async fn hand_off(kind: DocKind) {
    let trace = Trace::load();
    let third = trace.txns.len() / 3;
    let server = ServerProcess::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (a_path, b_path) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let a = Store::open(&a_path).unwrap();
    let b = Store::open(&b_path).unwrap();
    a.create_doc(DOC, kind).unwrap();
    if !trace.start.is_empty() {
        a.transact(DOC, |tx| tx.insert_text(TEXT, 0, &trace.start))
            .unwrap();
    }
    let a_client = client(&a, &server);
    let b_client = client(&b, &server);

    // Device A types the first third while B follows live.
    type_txns(&a, TEXT, &trace.txns[..third]);
    wait_for_texts(
        &a,
        &a_client,
        "device A (first third)",
        &[TEXT],
        &trace.text_after(third),
    )
    .await;
    wait_for_texts(
        &b,
        &b_client,
        "device B (following A)",
        &[TEXT],
        &trace.text_after(third),
    )
    .await;

    // B goes offline; A types the second third; B comes back and catches up on it all.
    b_client.stop().await;
    type_txns(&a, TEXT, &trace.txns[third..2 * third]);
    wait_for_texts(
        &a,
        &a_client,
        "device A (second third)",
        &[TEXT],
        &trace.text_after(2 * third),
    )
    .await;
    let b_client = client(&b, &server);
    wait_for_texts(
        &b,
        &b_client,
        "device B (catching up)",
        &[TEXT],
        &trace.text_after(2 * third),
    )
    .await;

    // The user moves to device B and types the rest; A follows.
    let all = trace.txns.len();
    type_txns(&b, TEXT, &trace.txns[2 * third..]);
    wait_for_texts(
        &b,
        &b_client,
        "device B (last third)",
        &[TEXT],
        &trace.text_after(all),
    )
    .await;
    wait_for_texts(
        &a,
        &a_client,
        "device A (following B)",
        &[TEXT],
        &trace.text_after(all),
    )
    .await;
    a_client.stop().await;
    b_client.stop().await;

    for (name, store, path) in [("A", a, a_path), ("B", b, b_path)] {
        drop(store);
        let reopened = Store::open(&path).unwrap();
        assert_eq!(
            text_at(&reopened, TEXT).as_deref(),
            Some(trace.end.as_str()),
            "device {name} after reopening its file"
        );
        let report = reopened.check().unwrap();
        assert!(report.is_ok(), "device {name}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_trace_typed_on_two_devices_in_turn_arrives_whole_automerge() {
    hand_off(DocKind::Automerge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_trace_typed_on_two_devices_in_turn_arrives_whole_yrs() {
    hand_off(DocKind::Yrs).await;
}

/// Both devices type the same stretch of the trace at the same time, each into a text of
/// its own in the one document (concurrent commits, merged on both sides while typing
/// goes on): both end with both texts whole.
async fn typing_at_once(kind: DocKind) {
    let trace = Trace::load();
    let n = trace.txns.len() / 2;
    let server = ServerProcess::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a.db")).unwrap();
    let b = Store::open(dir.path().join("b.db")).unwrap();
    a.create_doc(DOC, kind).unwrap();
    let (a_client, b_client) = (client(&a, &server), client(&b, &server));
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.doc_kind(DOC).ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "device B never saw the document");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::thread::scope(|s| {
        for (store, path) in [(&a, "left"), (&b, "right")] {
            let (start, txns) = (&trace.start, &trace.txns[..n]);
            s.spawn(move || {
                if !start.is_empty() {
                    store
                        .transact(DOC, |tx| tx.insert_text(path, 0, start))
                        .unwrap();
                }
                type_txns(store, path, txns)
            });
        }
    });
    let expected = trace.text_after(n);
    for (name, store, client) in [("device A", &a, &a_client), ("device B", &b, &b_client)] {
        wait_for_texts(store, client, name, &["left", "right"], &expected).await;
    }
    a_client.stop().await;
    b_client.stop().await;
    assert!(a.check().unwrap().is_ok());
    assert!(b.check().unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_typing_at_once_into_one_document_automerge() {
    typing_at_once(DocKind::Automerge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_typing_at_once_into_one_document_yrs() {
    typing_at_once(DocKind::Yrs).await;
}

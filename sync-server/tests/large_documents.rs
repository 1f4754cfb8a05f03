//! A document larger than a WebSocket frame's usual bound: its catch-up snapshot (the
//! relay's checkpoint, sent whole in one message) is above the 16 MiB that tungstenite
//! clients take by default. A new device still gets the whole document.

mod common;

use std::time::Duration;

use common::ServerProcess;
use concord_core::native_client::sync_once;
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_whose_snapshot_is_above_16_mib_reaches_a_new_device() {
    // A checkpoint after every 2 updates: the catch-up of a new device is one snapshot.
    let server = ServerProcess::start(&["--checkpoint-every", "2"]).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path().join("writer.db")).unwrap();
    writer.create_doc("big", DocKind::Yrs).unwrap();
    // Six edits of 3 MB each (each under the relay's 4 MiB frame limit): 18 MB of text.
    let chunk: String = (0..3_000_000u32)
        .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
        .collect();
    for _ in 0..6 {
        writer
            .transact("big", |tx| tx.insert_text("body", 0, &chunk))
            .unwrap();
    }
    sync_once(&writer, [&url], ClientConfig::default(), WAIT)
        .await
        .unwrap();
    assert!(
        writer.outbox("big").unwrap().is_empty(),
        "every edit acknowledged"
    );

    let reader = Store::open(dir.path().join("reader.db")).unwrap();
    reader.create_doc("big", DocKind::Yrs).unwrap();
    sync_once(&reader, [&url], ClientConfig::default(), WAIT)
        .await
        .expect("the new device syncs the large document");
    assert_eq!(reader.text_len("big", "body").unwrap(), 18_000_000);
    assert_eq!(
        reader.get("big", "body").unwrap(),
        writer.get("big", "body").unwrap()
    );
}

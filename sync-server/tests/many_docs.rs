//! Done-when: "1,000 documents sync over one connection; a device subscribes to all and
//! gets them". One device uploads many documents (Automerge and Yrs) in one `sync_once`;
//! an empty device syncs everything (`SyncScope::Prefix("")`) in one `sync_once` and ends
//! with every document, equal to the original.
//!
//! Both a 200- and a 1,000-document run are part of the default suite.

mod common;

use std::time::Duration;

use common::ServerProcess;
use concord_core::native_client::sync_once;
use concord_core::sync::{ClientConfig, SyncScope};
use concord_core::{DocKind, Store};

fn doc_id(i: usize) -> String {
    format!("doc/{i:04}")
}

/// Device A creates `count` documents (even: Automerge, odd: Yrs), one edit each, and
/// uploads them over one connection; empty device B downloads all of them over one.
async fn documents_sync_over_one_connection_each_way(count: usize) {
    let server = ServerProcess::start(&[]).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(120);

    let a = Store::open(dir.path().join("a.db")).unwrap();
    for i in 0..count {
        let id = doc_id(i);
        if i % 2 == 0 {
            a.create_doc(&id, DocKind::Automerge).unwrap();
            a.transact(&id, |tx| {
                tx.put("n", i as i64)?;
                tx.insert_text("title", 0, &format!("doc {i}"))
            })
            .unwrap();
        } else {
            a.create_doc(&id, DocKind::Yrs).unwrap();
            a.transact(&id, |tx| tx.insert_text("body", 0, &format!("text {i}")))
                .unwrap();
        }
    }
    // One connection uploads everything (LocalDocs: no listing needed).
    let upload = ClientConfig {
        token: None,
        scope: SyncScope::LocalDocs,
        ..ClientConfig::default()
    };
    sync_once(&a, [&url], upload, timeout).await.unwrap();
    for info in a.list_docs().unwrap() {
        assert_eq!(a.pending(&info.id).unwrap(), 0, "{} acknowledged", info.id);
    }
    assert_eq!(server.healthz().await["documents"], count);

    // An empty device subscribes to everything over one connection and gets it all.
    let b = Store::open(dir.path().join("b.db")).unwrap();
    let download = ClientConfig {
        token: None,
        scope: SyncScope::Prefix(String::new()),
        ..ClientConfig::default()
    };
    sync_once(&b, [&url], download, timeout).await.unwrap();

    let a_docs = a.list_docs().unwrap();
    let b_docs = b.list_docs().unwrap();
    assert_eq!(b_docs.len(), count);
    assert_eq!(b_docs, a_docs, "same ids and kinds");
    for info in &a_docs {
        assert_eq!(
            b.to_json(&info.id).unwrap(),
            a.to_json(&info.id).unwrap(),
            "{}",
            info.id
        );
        assert_eq!(
            b.version_vector(&info.id).unwrap(),
            a.version_vector(&info.id).unwrap(),
            "{}",
            info.id
        );
        assert_eq!(b.pending(&info.id).unwrap(), 0);
    }
    assert_eq!(
        b.to_json(&doc_id(2)).unwrap(),
        serde_json::json!({"n": 2, "title": "doc 2"})
    );
    let last = count - 1; // odd: a Yrs document
    assert_eq!(
        b.get(&doc_id(last), "body").unwrap(),
        Some(format!("text {last}").into())
    );
    // The download created nothing on the server.
    assert_eq!(server.healthz().await["documents"], count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_thousand_documents_sync_over_one_connection_each_way() {
    documents_sync_over_one_connection_each_way(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_documents_sync_over_one_connection_each_way() {
    documents_sync_over_one_connection_each_way(200).await;
}

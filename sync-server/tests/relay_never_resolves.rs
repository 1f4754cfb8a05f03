//! The relay never resolves conflicts: it stores and forwards the updates devices made,
//! byte for byte, and adds none of its own. Concurrent values written under keep-all and
//! last-writer-wins policies reach a new device still concurrent, with their stamps, so it
//! resolves them itself exactly as the writers do. Real server process, real sockets,
//! real SQLite stores.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{read_doc, ServerProcess};
use concord_core::native_client::sync_once;
use concord_core::policy::Policy;
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store, VersionVector};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_values_pass_through_the_relay_unresolved() {
    let server = ServerProcess::start(&[]).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let t = Duration::from_secs(20);
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let doc = format!("conflicts-{kind}");
        let (keep, last) = match kind {
            DocKind::Automerge => ("color", "title"),
            DocKind::Yrs => ("m/color", "m/title"),
        };
        let a = Store::open(dir.path().join(format!("a-{kind}.db"))).unwrap();
        let b = Store::open(dir.path().join(format!("b-{kind}.db"))).unwrap();
        a.create_doc(&doc, kind).unwrap();
        a.set_policy(&doc, keep, &Policy::KeepAll).unwrap();
        a.set_policy(&doc, last, &Policy::Lww).unwrap();
        sync_once(&a, [&url], ClientConfig::default(), t)
            .await
            .unwrap();
        sync_once(&b, [&url], ClientConfig::default(), t)
            .await
            .unwrap();

        for (store, v) in [(&a, "from a"), (&b, "from b")] {
            store
                .transact(&doc, |tx| {
                    tx.put(keep, v)?;
                    tx.put(last, v)
                })
                .unwrap();
        }
        for store in [&a, &b, &a] {
            sync_once(store, [&url], ClientConfig::default(), t)
                .await
                .unwrap();
        }

        // What the relay serves a new device is exactly what the two devices made.
        let dump = read_doc(&url, None, &doc, kind).await;
        assert!(
            dump.catchup.snapshot.is_none(),
            "a small document is served as updates"
        );
        let made: BTreeSet<_> = a
            .updates_missing_from(&doc, &VersionVector::new())
            .unwrap()
            .into_iter()
            .map(|r| (r.origin, r.seq, r.data))
            .collect();
        let served: BTreeSet<_> = dump
            .updates
            .iter()
            .map(|r| (r.origin.clone(), r.seq, r.data.clone()))
            .collect();
        assert_eq!(
            served, made,
            "{kind}: the relay added, dropped or changed updates"
        );
        let authors: BTreeSet<_> = served.iter().map(|(o, _, _)| o.clone()).collect();
        assert_eq!(authors, BTreeSet::from([a.device_id(), b.device_id()]));

        // A new device holds both concurrent values and resolves them as the writers do.
        let c = Store::open(dir.path().join(format!("c-{kind}.db"))).unwrap();
        c.create_doc(&doc, kind).unwrap();
        c.apply_remote(&doc, &dump.updates).unwrap();
        let kept: BTreeSet<_> = c
            .get_all(&doc, keep)
            .unwrap()
            .into_iter()
            .map(|v| v.value.to_string())
            .collect();
        assert_eq!(
            kept,
            BTreeSet::from([json!("from a").to_string(), json!("from b").to_string()])
        );
        assert_eq!(c.conflicts(&doc).unwrap(), vec![keep.to_string()]);
        assert_eq!(
            c.get_all(&doc, last).unwrap().len(),
            2,
            "both LWW writes travel"
        );
        assert_eq!(c.get(&doc, last).unwrap(), a.get(&doc, last).unwrap());
        assert_eq!(c.to_json(&doc).unwrap(), b.to_json(&doc).unwrap());
    }
}

//! A real editing trace (`trace_support`) typed through a three-node cluster of real
//! `concord-server` processes while the leader is killed (kill -9) mid-typing: the device
//! keeps committing, its client moves on to the nodes that elect a new leader, and every
//! keystroke arrives; the killed node comes back and catches up. Then a second device,
//! attached to another node, types the rest while the first follows. At the end both
//! devices hold the trace's text and every node's log holds exactly the updates the
//! devices made (the same version vector as theirs).

mod trace_support;

use std::collections::BTreeMap;
use std::time::Duration;

use concord_core::native_client::SyncClient;
use concord_core::sync::{Backoff, ClientConfig};
use concord_core::{DocKind, Store};
use concord_testkit::cluster::{Cluster, ClusterSpec};
use trace_support::{type_txns, wait_for_texts, Trace, DOC, TEXT};

fn client(store: &Store, urls: Vec<String>) -> SyncClient {
    SyncClient::spawn(
        store.clone(),
        urls,
        ClientConfig::default(),
        Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(300),
        },
    )
}

async fn through_a_failover(kind: DocKind) {
    let trace = Trace::load();
    let spec = ClusterSpec::new(3).binary(env!("CARGO_BIN_EXE_concord-server"));
    let mut cluster = Cluster::start(spec).await.unwrap();
    let leader = cluster.wait_for_leader().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a.db")).unwrap();
    let b = Store::open(dir.path().join("b.db")).unwrap();
    a.create_doc(DOC, kind).unwrap();
    let a_client = client(&a, cluster.client_urls(0));
    let b_client = client(&b, cluster.client_urls(1));

    // Device A types the first half; the leader is killed a quarter of the way in.
    let (quarter, half) = (trace.txns.len() / 4, trace.txns.len() / 2);
    type_txns(&a, TEXT, &trace.txns[..quarter]);
    cluster.kill9(leader).unwrap();
    type_txns(&a, TEXT, &trace.txns[quarter..half]);
    let expected = trace.text_after(half);
    wait_for_texts(&a, &a_client, "device A (first half)", &[TEXT], &expected).await;
    wait_for_texts(&b, &b_client, "device B (following A)", &[TEXT], &expected).await;
    cluster.restart(leader).await.unwrap();

    // Device B types the rest; A follows.
    type_txns(&b, TEXT, &trace.txns[half..]);
    wait_for_texts(&b, &b_client, "device B (second half)", &[TEXT], &trace.end).await;
    wait_for_texts(&a, &a_client, "device A (following B)", &[TEXT], &trace.end).await;
    a_client.stop().await;
    b_client.stop().await;

    let version: BTreeMap<String, u64> = a
        .version_vector(DOC)
        .unwrap()
        .iter()
        .map(|(origin, seq)| (origin.as_str().to_string(), seq))
        .collect();
    assert_eq!(b.version_vector(DOC).unwrap().iter().count(), version.len());
    cluster.wait_caught_up().await.unwrap();
    let digests = cluster.stop_and_digest().await.unwrap();
    assert_eq!(digests.len(), 3);
    for (node, digest) in digests {
        let doc = digest
            .docs
            .get(DOC)
            .unwrap_or_else(|| panic!("node {node} has no {DOC}"));
        assert_eq!(doc.version, version, "node {node}'s version vector");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_trace_survives_a_leader_kill_automerge() {
    through_a_failover(DocKind::Automerge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_trace_survives_a_leader_kill_yrs() {
    through_a_failover(DocKind::Yrs).await;
}

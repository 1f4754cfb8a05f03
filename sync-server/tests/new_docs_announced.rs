//! A document created on the relay is announced at once to every connection that listed a
//! prefix of it (`ListDocs`) and may read it: an unsolicited `DocList` naming it, which a
//! client answers by subscribing. Before, a device learned of documents others created
//! only at its next listing (every 10 s). The raw clients here never list again, so a
//! `DocList` they receive after their one listing is the announcement. On one relay, on
//! a token's scopes, and on a cluster follower for a document created through the leader.

mod common;

use common::{edit, now_secs, signed_token, RawClient, ServerProcess, WAIT};
use concord_core::protocol::{DocList, ListDocs, Message};
use concord_core::{DocKind, Store, VersionVector};
use concord_testkit::cluster::{Cluster, ClusterSpec};

const SECRET: &str = "announce secret";

/// Lists `prefix` and returns the answer.
async fn list(client: &mut RawClient, prefix: &str) -> DocList {
    client
        .send(&Message::ListDocs(ListDocs {
            prefix: prefix.into(),
        }))
        .await;
    match client.recv().await {
        Message::DocList(list) => list,
        other => panic!("expected the DocList answering ListDocs, got {other:?}"),
    }
}

/// Creates `doc_id` through `client` (a subscription that creates it) with one update.
async fn create(client: &mut RawClient, doc_id: &str) {
    client.subscribe_all(doc_id, DocKind::Automerge).await;
    let store = Store::open_in_memory().unwrap();
    store.create_doc(doc_id, DocKind::Automerge).unwrap();
    let update = edit(&store, doc_id, 1);
    let origin = update.origin.clone();
    client.send_updates(doc_id, vec![update]).await;
    client.expect_ack(doc_id, &origin, 1).await;
}

/// The next message `client` receives must announce exactly `doc_id`.
async fn expect_announced(client: &mut RawClient, doc_id: &str) {
    match client.recv_within(WAIT).await {
        Some(Message::DocList(list)) => {
            assert_eq!(list.docs, vec![(doc_id.to_string(), DocKind::Automerge)])
        }
        other => panic!("expected a DocList announcing {doc_id:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_document_is_announced_to_who_listed_its_prefix() {
    let server = ServerProcess::start(&[]).await;
    let mut watcher = RawClient::connect_hello(&server.url(), None).await;
    let mut elsewhere = RawClient::connect_hello(&server.url(), None).await;
    let mut writer = RawClient::connect_hello(&server.url(), None).await;
    create(&mut writer, "team/old").await;
    assert_eq!(
        list(&mut watcher, "team/").await.docs,
        vec![("team/old".to_string(), DocKind::Automerge)]
    );
    assert!(list(&mut elsewhere, "other/").await.docs.is_empty());

    // Outside the prefix first: were it announced, it would come before the next one.
    create(&mut writer, "other-team/x").await;
    create(&mut writer, "team/new").await;
    expect_announced(&mut watcher, "team/new").await;

    // The announced document is there to subscribe to, with its update.
    let dump = watcher.subscribe_all("team/new", DocKind::Automerge).await;
    assert_eq!(dump.server_version().total(), 1);

    // A document is announced once: a write to an existing one announces nothing, so the
    // next announcement is the next new document.
    create(&mut writer, "team/old").await;
    create(&mut writer, "other/y").await;
    create(&mut writer, "team/third").await;
    expect_announced(&mut watcher, "team/third").await;
    expect_announced(&mut elsewhere, "other/y").await;
}

fn token(docs: &[&str]) -> Option<String> {
    Some(signed_token(SECRET, docs, "write", now_secs() + 3600))
}

#[tokio::test]
async fn only_documents_the_token_reads_are_announced() {
    let server = ServerProcess::start(&["--auth-secret", SECRET]).await;
    let mut watcher = RawClient::connect_hello(&server.url(), token(&["team/*"])).await;
    let mut writer = RawClient::connect_hello(&server.url(), token(&["*"])).await;
    // Listing everything: the token limits what is named now and what is announced later.
    assert!(list(&mut watcher, "").await.docs.is_empty());
    create(&mut writer, "secret/plans").await;
    create(&mut writer, "team/notes").await;
    expect_announced(&mut watcher, "team/notes").await;
}

// The cluster's proxies run on this runtime: several workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_announces_a_document_created_through_the_leader() {
    let cluster = Cluster::start(ClusterSpec::new(3).binary(env!("CARGO_BIN_EXE_concord-server")))
        .await
        .expect("start a 3-node cluster");
    let leader = cluster.wait_for_leader().await.expect("a leader");
    let followers = cluster.followers().await.expect("the followers");
    let url = |id: u64| format!("ws://{}/sync", cluster.node(id).unwrap().client_addr);
    let mut watcher = RawClient::connect_hello(&url(followers[0]), None).await;
    assert!(list(&mut watcher, "").await.docs.is_empty());
    let mut writer = RawClient::connect_hello(&url(leader), None).await;
    create(&mut writer, "made-on-the-leader").await;
    expect_announced(&mut watcher, "made-on-the-leader").await;
    let dump = watcher
        .subscribe(
            "made-on-the-leader",
            DocKind::Automerge,
            VersionVector::new(),
        )
        .await
        .expect("subscribe on the follower");
    assert_eq!(dump.server_version().total(), 1);
}

#[tokio::test]
async fn a_new_hello_ends_what_the_old_token_watched() {
    let server = ServerProcess::start(&["--auth-secret", SECRET]).await;
    let mut watcher = RawClient::connect_hello(&server.url(), token(&["*"])).await;
    let mut writer = RawClient::connect_hello(&server.url(), token(&["*"])).await;
    assert!(list(&mut watcher, "").await.docs.is_empty());
    // The same connection now reads only team/*.
    assert!(matches!(
        watcher.hello(token(&["team/*"])).await,
        Message::Welcome(_)
    ));
    create(&mut writer, "secret/plans").await;
    create(&mut writer, "team/notes").await;
    // Nothing was announced under the old token's rights: the next message is the answer
    // to a new listing, which names only what the new token reads.
    assert_eq!(
        list(&mut watcher, "").await.docs,
        vec![("team/notes".to_string(), DocKind::Automerge)]
    );
    create(&mut writer, "secret/more").await;
    create(&mut writer, "team/more").await;
    expect_announced(&mut watcher, "team/more").await;
}

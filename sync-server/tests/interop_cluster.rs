//! Interop clients on a 3-node cluster of real `concord-server` processes: a Yjs client
//! (`y-websocket` in node) attached to one follower and an automerge-repo client attached
//! to the other converge with a Concord CLI device syncing with the leader — their writes
//! are forwarded to the leader and quorum-committed, and the leader's commits reach them.

mod interop_support;

use concord_testkit::cluster::{Cluster, ClusterSpec};
use interop_support::{CliDevice, JsClient};
use serde_json::json;

// The cluster's fault proxies run on this runtime while the CLI device's commands block a
// worker: several workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interop_clients_on_followers_converge_with_a_device_on_the_leader() {
    let cluster = Cluster::start(ClusterSpec::new(3).binary(env!("CARGO_BIN_EXE_concord-server")))
        .await
        .expect("start a 3-node cluster");
    let leader = cluster.wait_for_leader().await.expect("a leader");
    let followers = cluster.followers().await.expect("the followers");
    assert_eq!(followers.len(), 2);
    let addr = |id: u64| cluster.node(id).unwrap().client_addr;
    let leader_url = format!("ws://{}/sync", addr(leader));

    // Yjs on the first follower.
    let device = CliDevice::new();
    device.run(&["create", "board", "--kind", "yrs"]);
    device.run(&["insert-text", "board", "body", "0", "leader."]);
    device.sync(&leader_url, None);
    let yjs_url = format!("ws://{}/yjs", addr(followers[0]));
    let mut yjs = JsClient::spawn("yjs-client.mjs", &[&yjs_url, "board"]);
    yjs.call(json!({"cmd": "wait_synced"})).await;
    yjs.call(json!({"cmd": "wait_text", "contains": "leader."}))
        .await;
    yjs.call(json!({"cmd": "insert", "text": " follower."}))
        .await;
    let text = device
        .sync_until_text(&leader_url, None, "board", "body", "follower.")
        .await;
    assert_eq!(text, "leader. follower.");
    device.run(&["insert-text", "board", "body", "0", "live "]);
    device.sync(&leader_url, None);
    let seen = yjs
        .call(json!({"cmd": "wait_text", "contains": "live leader."}))
        .await;
    assert_eq!(seen["text"], "live leader. follower.");

    // automerge-repo on the other follower.
    let am_url = format!("ws://{}/automerge", addr(followers[1]));
    let mut am = JsClient::spawn("automerge-client.mjs", &[&am_url]);
    let url = am
        .call(json!({"cmd": "create", "text": "from a follower."}))
        .await["url"]
        .as_str()
        .unwrap()
        .to_string();
    let text = device
        .sync_until_text(&leader_url, None, &url, "text", "from a follower.")
        .await;
    assert_eq!(text, "from a follower.");
    device.run(&["insert-text", &url, "text", "0", "leader saw it: "]);
    device.sync(&leader_url, None);
    am.call(json!({"cmd": "wait_text", "contains": "leader saw it: from a follower."}))
        .await;
    yjs.exit().await;
    am.exit().await;
}

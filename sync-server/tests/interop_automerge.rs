//! Unmodified automerge-repo clients (`@automerge/automerge-repo` + its WebSocket network
//! adapter in node) against a real `concord-server` process on `/automerge`: a document an
//! automerge-repo client creates is a Concord document (`automerge:<documentId>`) that a
//! CLI device edits, and the other way round; both converge, live; a document the relay
//! does not hold is unavailable; ephemeral messages reach the document's other clients.

mod common;
mod interop_support;

use common::ServerProcess;
use interop_support::{CliDevice, JsClient};
use serde_json::json;

fn automerge(server: &ServerProcess) -> JsClient {
    let url = format!("ws://127.0.0.1:{}/automerge", server.port());
    JsClient::spawn("automerge-client.mjs", &[&url])
}

#[tokio::test]
async fn a_document_made_by_automerge_repo_is_edited_by_a_concord_device() {
    let server = ServerProcess::start(&[]).await;
    let mut ann = automerge(&server);
    let created = ann
        .call(json!({"cmd": "create", "text": "from automerge-repo."}))
        .await;
    let url = created["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("automerge:"));

    // The Concord document's id is the automerge URL.
    let device = CliDevice::new();
    let text = device
        .sync_until_text(&server.url(), None, &url, "text", "from automerge-repo.")
        .await;
    assert_eq!(text, "from automerge-repo.");
    device.run(&["insert-text", &url, "text", "0", "concord: "]);
    device.sync(&server.url(), None);
    let seen = ann
        .call(json!({"cmd": "wait_text", "contains": "concord: from"}))
        .await;
    assert_eq!(seen["text"], "concord: from automerge-repo.");

    // Another automerge-repo client finds it on the relay and adds to it.
    let mut bob = automerge(&server);
    let found = bob.call(json!({"cmd": "find", "url": url})).await;
    assert_eq!(found["text"], "concord: from automerge-repo.");
    bob.call(json!({"cmd": "splice", "text": " bob was here."}))
        .await;
    let text = device
        .sync_until_text(&server.url(), None, &url, "text", "bob was here.")
        .await;
    assert_eq!(text, "concord: from automerge-repo. bob was here.");
    ann.call(json!({"cmd": "wait_text", "contains": "bob was here."}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

#[tokio::test]
async fn a_document_made_by_a_concord_device_is_found_by_automerge_repo() {
    let server = ServerProcess::start(&[]).await;
    let mut client = automerge(&server);
    let url = client.call(json!({"cmd": "new_url"})).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    // Not on the relay yet: unavailable.
    let missing = client
        .try_call(json!({"cmd": "find", "url": url, "timeout_ms": 5000}))
        .await;
    assert!(
        missing.get("error").is_some(),
        "found a missing document: {missing}"
    );

    let device = CliDevice::new();
    device.run(&["create", &url, "--kind", "automerge"]);
    device.run(&["insert-text", &url, "text", "0", "written offline."]);
    device.sync(&server.url(), None);
    let mut reader = automerge(&server);
    let found = reader.call(json!({"cmd": "find", "url": url})).await;
    assert_eq!(found["text"], "written offline.");
    reader
        .call(json!({"cmd": "splice", "index": 0, "text": "synced: "}))
        .await;
    let text = device
        .sync_until_text(&server.url(), None, &url, "text", "synced: ")
        .await;
    assert_eq!(text, "synced: written offline.");
    client.exit().await;
    reader.exit().await;
}

#[tokio::test]
async fn ephemeral_messages_reach_the_documents_other_clients() {
    let server = ServerProcess::start(&[]).await;
    let mut ann = automerge(&server);
    let url = ann.call(json!({"cmd": "create", "text": "x"})).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    let device = CliDevice::new();
    device
        .sync_until_text(&server.url(), None, &url, "text", "x")
        .await;
    let mut bob = automerge(&server);
    bob.call(json!({"cmd": "find", "url": url})).await;
    ann.call(json!({"cmd": "broadcast", "message": {"cursor": 1, "from": "ann"}}))
        .await;
    bob.call(json!({"cmd": "wait_ephemeral", "message": {"cursor": 1, "from": "ann"}}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

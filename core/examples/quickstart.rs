//! The shortest path through Concord from Rust: open a store, edit a document offline,
//! subscribe to changes, and sync with a relay.
//!
//! ```sh
//! cargo run -p concord-server &            # a relay on 127.0.0.1:8787
//! cargo run -p concord-core --features native-client --example quickstart
//! ```

use std::time::Duration;

use concord_core::native_client::sync_once;
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8787/sync".into());
    let dir = tempfile::tempdir()?;

    // A device: one SQLite file holding many documents.
    let phone = Store::open(dir.path().join("phone.db"))?;
    phone.create_doc("groceries", DocKind::Automerge)?;
    let _changes = phone.subscribe(Some("groceries"), |event| {
        println!(
            "groceries changed ({:?}), now at {}",
            event.source, event.version
        );
    });

    // Edits commit locally and durably, online or not.
    phone.transact("groceries", |tx| {
        tx.put("title", "Saturday")?;
        tx.push("items", "milk")?;
        tx.insert_text("note", 0, "before noon")
    })?;

    // Sync with the relay, then a second device gets everything.
    sync_once(
        &phone,
        [&url],
        ClientConfig::default(),
        Duration::from_secs(10),
    )
    .await?;
    let laptop = Store::open(dir.path().join("laptop.db"))?;
    sync_once(
        &laptop,
        [&url],
        ClientConfig::default(),
        Duration::from_secs(10),
    )
    .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&laptop.to_json("groceries")?)?
    );
    assert_eq!(laptop.to_json("groceries")?, phone.to_json("groceries")?);
    Ok(())
}

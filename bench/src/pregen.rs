//! Updates generated before a measurement, so producing them costs nothing while it runs:
//! an in-memory [`Store`] makes `n` one-edit commits to a document and hands back its
//! outbox (origin, seq 1..=n, bytes), ready to be sent as `Updates` frames by a raw client.

use anyhow::{ensure, Result};
use concord_core::{DocKind, Origin, Store, UpdateRecord};

/// One device's updates of one document, in sequence order.
pub struct Pregenerated {
    pub doc: String,
    pub kind: DocKind,
    pub origin: Origin,
    pub updates: Vec<UpdateRecord>,
}

/// `n` updates of `doc`, each one edit: an Automerge counter increment (after one update
/// creating the counter) or a one-character Yrs text insert.
pub fn updates(doc: &str, kind: DocKind, n: usize) -> Result<Pregenerated> {
    ensure!(n >= 1, "at least one update");
    let store = Store::open_in_memory()?;
    store.create_doc(doc, kind)?;
    for i in 0..n {
        store.transact(doc, |tx| match kind {
            DocKind::Automerge if i == 0 => tx.increment("n", 0),
            DocKind::Automerge => tx.increment("n", 1),
            _ => tx.insert_text("text", i, "x"),
        })?;
    }
    let updates = store.outbox(doc)?;
    ensure!(
        updates.len() == n,
        "expected {n} updates in the outbox, found {}",
        updates.len()
    );
    Ok(Pregenerated {
        doc: doc.to_string(),
        kind,
        origin: store.device_id(),
        updates,
    })
}

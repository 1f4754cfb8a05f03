//! Shared parts of the editing-trace tests: the fixture (the first 2,000 txns of
//! sveltecomponent, josephg/editing-traces, CC BY 4.0; `fixtures/README.md`), its plain
//! string replay, typing it into a store in commits of varying size, and waiting for a
//! device to hold a text with nothing left to send.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use concord_core::native_client::SyncClient;
use concord_core::Store;
use serde::Deserialize;

pub const DOC: &str = "svelte";
pub const TEXT: &str = "text";

/// One trace txn: `[position, deleted, inserted]` patches, positions counting Unicode
/// scalar values as the store does by default.
pub type Txn = Vec<(usize, usize, String)>;

#[derive(Deserialize)]
pub struct Trace {
    #[serde(rename = "startContent")]
    pub start: String,
    #[serde(rename = "endContent")]
    pub end: String,
    pub txns: Vec<Txn>,
}

impl Trace {
    pub fn load() -> Trace {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sveltecomponent-2000.json");
        let trace: Trace = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(
            trace.text_after(trace.txns.len()),
            trace.end,
            "the fixture's end text"
        );
        trace
    }

    /// The text after the first `n` txns, as a plain string.
    pub fn text_after(&self, n: usize) -> String {
        let mut text: Vec<char> = self.start.chars().collect();
        for (pos, del, ins) in self.txns[..n].iter().flatten() {
            text.splice(*pos..*pos + *del, ins.chars());
        }
        text.into_iter().collect()
    }
}

/// Types `txns` into the text at `path` of [`DOC`], a varying number of them per durable
/// commit (1 to 12: single keystrokes and runs), the splices as the trace gives them.
pub fn type_txns(store: &Store, path: &str, txns: &[Txn]) {
    let mut at = 0;
    let mut step = 0;
    while at < txns.len() {
        let run = [1, 3, 1, 12, 2, 1, 7][step % 7].min(txns.len() - at);
        step += 1;
        store
            .transact(DOC, |tx| {
                for (pos, del, ins) in txns[at..at + run].iter().flatten() {
                    tx.splice_text(path, *pos, *del, ins)?;
                }
                Ok(())
            })
            .unwrap();
        at += run;
    }
}

/// The text at `path` of [`DOC`], if there is one.
pub fn text_at(store: &Store, path: &str) -> Option<String> {
    match store.get(DOC, path) {
        Ok(Some(serde_json::Value::String(text))) => Some(text),
        _ => None,
    }
}

/// Waits (bounded) until `store` holds `expected` at every path of `paths` and its client
/// has nothing unsent.
pub async fn wait_for_texts(
    store: &Store,
    client: &SyncClient,
    who: &str,
    paths: &[&str],
    expected: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let texts: Vec<Option<String>> = paths.iter().map(|p| text_at(store, p)).collect();
        let idle = client.status().pending.values().all(|n| *n == 0);
        if idle && texts.iter().all(|t| t.as_deref() == Some(expected)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} never reached the trace's text: {:?} chars of {}, status {:?}",
            texts
                .iter()
                .map(|t| t.as_ref().map(|t| t.chars().count()))
                .collect::<Vec<_>>(),
            expected.chars().count(),
            client.status()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

//! The store's reader: an app-provided conflict policy chooses what a key holding
//! concurrent values shows, in every read (get, whole-document JSON, reads inside an edit).

use std::sync::{Arc, Mutex};

use concord_core::{Candidate, ConflictPolicy, DocKind, Reader, Store, StoreOptions};
use serde_json::json;

/// Each question a policy was asked: the key and its candidates.
type Asked = Arc<Mutex<Vec<(String, Vec<Candidate>)>>>;

/// Shows the last candidate instead of the CRDT's winner, and records what it was asked.
#[derive(Default, Clone)]
struct LastWins {
    asked: Asked,
}

impl ConflictPolicy for LastWins {
    fn choose(&self, key: &str, candidates: &[Candidate]) -> usize {
        self.asked
            .lock()
            .unwrap()
            .push((key.to_string(), candidates.to_vec()));
        candidates.len() - 1
    }
}

fn with_reader(reader: Reader) -> Store {
    Store::open_in_memory_with(StoreOptions {
        reader,
        ..Default::default()
    })
    .unwrap()
}

/// Each store writes `title` without seeing the other's write, then both exchange updates.
fn concurrent_titles(a: &Store, b: &Store, kind: DocKind) {
    for (store, title) in [(a, "from a"), (b, "from b")] {
        store.create_doc("d", kind).unwrap();
        let path = if kind == DocKind::Yrs {
            "m/title"
        } else {
            "title"
        };
        store.transact("d", |tx| tx.put(path, title)).unwrap();
    }
    let (from_a, from_b) = (a.outbox("d").unwrap(), b.outbox("d").unwrap());
    a.apply_remote("d", &from_b).unwrap();
    b.apply_remote("d", &from_a).unwrap();
}

#[test]
fn an_app_conflict_policy_chooses_what_concurrent_automerge_values_show() {
    let policy = LastWins::default();
    let plain = Store::open_in_memory().unwrap();
    let with_policy = with_reader(Reader::with_policy(policy.clone()));
    concurrent_titles(&plain, &with_policy, DocKind::Automerge);

    let winner = plain.get("d", "title").unwrap().unwrap();
    let other = if winner == json!("from a") {
        json!("from b")
    } else {
        json!("from a")
    };
    assert_eq!(with_policy.get("d", "title").unwrap(), Some(other.clone()));
    assert_eq!(with_policy.to_json("d").unwrap(), json!({ "title": other }));
    let seen_in_edit = with_policy.transact("d", |tx| tx.get("title")).unwrap();
    assert_eq!(seen_in_edit, Some(other.clone()));

    let asked = policy.asked.lock().unwrap();
    assert!(!asked.is_empty());
    for (key, candidates) in asked.iter() {
        assert_eq!(key, "title");
        assert_eq!(
            candidates,
            &vec![
                Candidate::Value(winner.clone()),
                Candidate::Value(other.clone())
            ],
            "the CRDT's winner first"
        );
    }
}

#[test]
fn yrs_reads_go_through_the_reader_and_show_the_value_yrs_settled_on() {
    let policy = LastWins::default();
    let plain = Store::open_in_memory().unwrap();
    let with_policy = with_reader(Reader::with_policy(policy.clone()));
    concurrent_titles(&plain, &with_policy, DocKind::Yrs);

    let shown = plain.get("d", "m/title").unwrap();
    assert!(shown.is_some());
    assert_eq!(with_policy.get("d", "m/title").unwrap(), shown);
    assert_eq!(
        with_policy.to_json("d").unwrap(),
        plain.to_json("d").unwrap()
    );
    assert_eq!(
        with_policy.transact("d", |tx| tx.get("m/title")).unwrap(),
        shown
    );
    assert!(
        policy.asked.lock().unwrap().is_empty(),
        "Yrs keeps one value per key: there is never a choice to make"
    );
}

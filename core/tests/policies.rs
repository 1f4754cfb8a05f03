//! Conflict policies on real stores (SQLite files) exchanging updates directly: LWW by
//! hybrid logical clock, merge functions (built-in and the app's), keep-all with resolve,
//! containers created concurrently, and the clock persisted across reopen and migration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use concord_core::policy::{ConcurrentValue, MergeFunction, PlainValue, Policy};
use concord_core::{DocKind, Error, Reader, Store, StoreOptions, WallClock};
use serde_json::{json, Value};

const HOUR: u64 = 3_600_000;
const BASE: u64 = 1_800_000_000_000;

struct Device {
    store: Store,
    _clock: Arc<AtomicU64>,
}

fn device(dir: &tempfile::TempDir, name: &str, now: u64, reader: Reader) -> Device {
    let clock = Arc::new(AtomicU64::new(now));
    let c = clock.clone();
    let store = Store::open_with(
        dir.path().join(name),
        StoreOptions {
            reader,
            wall_clock: WallClock::from_fn(move || c.load(Ordering::SeqCst)),
            max_drift_ms: HOUR,
            ..Default::default()
        },
    )
    .unwrap();
    Device {
        store,
        _clock: clock,
    }
}

fn send(from: &Store, to: &Store, doc: &str) {
    let missing = from
        .updates_missing_from(doc, &to.version_vector(doc).unwrap())
        .unwrap();
    assert_eq!(to.apply_remote(doc, &missing).unwrap().gap, None);
}

fn sync(devices: &[&Device], doc: &str) {
    for a in devices {
        for b in devices {
            if !std::ptr::eq(*a, *b) {
                send(&a.store, &b.store, doc);
            }
        }
    }
}

fn key(kind: DocKind, k: &str) -> String {
    match kind {
        DocKind::Automerge => k.to_string(),
        DocKind::Yrs => format!("m/{k}"),
    }
}

/// Two devices, the document created on `a` with `policy` on `pattern`, synced.
fn setup(
    kind: DocKind,
    pattern: &str,
    policy: &str,
    reader: Reader,
) -> (tempfile::TempDir, Device, Device) {
    let dir = tempfile::tempdir().unwrap();
    let a = device(&dir, "a.db", BASE, reader.clone());
    let b = device(&dir, "b.db", BASE - 3 * HOUR, reader);
    a.store.create_doc("d", kind).unwrap();
    a.store
        .set_policy("d", &key(kind, pattern), &policy.parse().unwrap())
        .unwrap();
    b.store.create_doc("d", kind).unwrap();
    sync(&[&a, &b], "d");
    (dir, a, b)
}

#[test]
fn causality_beats_wall_clocks_under_lww() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (_dir, a, b) = setup(kind, "title", "lww", Reader::default());
        let k = key(kind, "title");
        a.store
            .transact("d", |tx| tx.put(&k, "first, fast clock"))
            .unwrap();
        sync(&[&a, &b], "d");
        // b's wall clock is 3 hours behind, yet it writes after seeing a's write.
        b.store
            .transact("d", |tx| tx.put(&k, "second, slow clock"))
            .unwrap();
        sync(&[&a, &b], "d");
        for d in [&a, &b] {
            assert_eq!(
                d.store.get("d", &k).unwrap(),
                Some(json!("second, slow clock")),
                "{kind}"
            );
        }
        let all = a.store.get_all("d", &k).unwrap();
        assert_eq!(
            all.len(),
            1,
            "the later write superseded the first: {all:?}"
        );
        assert!(
            all[0].hlc.as_ref().unwrap().ms >= BASE,
            "b's clock moved past what it saw"
        );
    }
}

#[test]
fn lww_picks_the_highest_clock_among_concurrent_writes_not_the_crdt_winner() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        for (a_first, expected) in [(true, "from a"), (false, "from a")] {
            let (_dir, a, b) = setup(kind, "*", "lww", Reader::default());
            let k = key(kind, "title");
            // a's clock is 3 hours ahead of b's: a's concurrent write wins whatever the order.
            let write = |d: &Device, v: &str| d.store.transact("d", |tx| tx.put(&k, v)).unwrap();
            if a_first {
                write(&a, "from a");
                write(&b, "from b");
            } else {
                write(&b, "from b");
                write(&a, "from a");
            }
            sync(&[&a, &b], "d");
            for d in [&a, &b] {
                assert_eq!(
                    d.store.get("d", &k).unwrap(),
                    Some(json!(expected)),
                    "{kind}"
                );
                assert_eq!(d.store.get_all("d", &k).unwrap().len(), 2, "{kind}");
            }
            assert_eq!(a.store.to_json("d").unwrap(), b.store.to_json("d").unwrap());
        }
    }
}

/// The app's merge function: the sum of every concurrent number.
struct Sum;

impl MergeFunction for Sum {
    fn merge(&self, _path: String, values: Vec<ConcurrentValue>) -> PlainValue {
        PlainValue::Int(
            values
                .iter()
                .map(|c| match c.value {
                    PlainValue::Int(i) => i,
                    _ => 0,
                })
                .sum(),
        )
    }
}

#[test]
fn an_app_merge_function_resolves_identically_on_every_replica() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let reader = Reader::default().with_merge_function("sum", Arc::new(Sum));
        let (dir, a, b) = setup(kind, "score", "merge:sum", reader.clone());
        let c = device(&dir, "c.db", BASE + HOUR / 2, reader);
        c.store.create_doc("d", kind).unwrap();
        sync(&[&a, &b, &c], "d");
        let k = key(kind, "score");
        for (d, n) in [(&a, 1), (&b, 10), (&c, 100)] {
            d.store.transact("d", |tx| tx.put(&k, n)).unwrap();
        }
        sync(&[&c, &b, &a], "d");
        sync(&[&a, &b, &c], "d");
        for d in [&a, &b, &c] {
            assert_eq!(d.store.get("d", &k).unwrap(), Some(json!(111)), "{kind}");
        }
        // Written back: one value, the same everywhere.
        assert_eq!(a.store.write_back_merge("d", &k).unwrap(), json!(111));
        sync(&[&a, &b, &c], "d");
        for d in [&a, &b, &c] {
            assert_eq!(d.store.get_all("d", &k).unwrap().len(), 1);
            assert_eq!(d.store.get("d", &k).unwrap(), Some(json!(111)));
        }
    }
}

#[test]
fn keep_all_shows_every_value_until_resolved_and_a_concurrent_write_is_a_new_conflict() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (_dir, a, b) = setup(kind, "*", "keep-all", Reader::default());
        let k = key(kind, "color");
        a.store.transact("d", |tx| tx.put(&k, "red")).unwrap();
        b.store.transact("d", |tx| tx.put(&k, "blue")).unwrap();
        sync(&[&a, &b], "d");
        for d in [&a, &b] {
            let values: Vec<Value> = d
                .store
                .get_all("d", &k)
                .unwrap()
                .into_iter()
                .map(|v| v.value)
                .collect();
            assert_eq!(values.len(), 2);
            assert!(values.contains(&json!("red")) && values.contains(&json!("blue")));
            assert_eq!(d.store.conflicts("d").unwrap(), vec![k.clone()]);
        }
        // a resolves; b writes concurrently: b's write is a new conflict with a's resolution.
        a.store.resolve("d", &k, "purple").unwrap();
        b.store.transact("d", |tx| tx.put(&k, "green")).unwrap();
        sync(&[&a, &b], "d");
        for d in [&a, &b] {
            let mut values: Vec<Value> = d
                .store
                .get_all("d", &k)
                .unwrap()
                .into_iter()
                .map(|v| v.value)
                .collect();
            values.sort_by_key(|v| v.to_string());
            assert_eq!(values, vec![json!("green"), json!("purple")], "{kind}");
        }
        b.store.resolve("d", &k, "black").unwrap();
        sync(&[&a, &b], "d");
        for d in [&a, &b] {
            assert_eq!(d.store.get("d", &k).unwrap(), Some(json!("black")));
            assert!(d.store.conflicts("d").unwrap().is_empty());
        }
    }
}

#[test]
fn under_every_policy_containers_created_concurrently_keep_every_edit() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        for policy in ["crdt", "lww", "keep-all", "merge:max", "merge:union"] {
            let (_dir, a, b) = setup(kind, "*", policy, Reader::default());
            let (items, meta) = (key(kind, "items"), key(kind, "meta"));
            a.store
                .transact("d", |tx| tx.push(&items, "from a"))
                .unwrap();
            b.store
                .transact("d", |tx| tx.push(&items, "from b"))
                .unwrap();
            a.store
                .transact("d", |tx| tx.put(&meta, json!({"x": 1})))
                .unwrap();
            b.store
                .transact("d", |tx| tx.put(&meta, json!({"y": 2})))
                .unwrap();
            sync(&[&a, &b], "d");
            for d in [&a, &b] {
                let list = d.store.get("d", &items).unwrap().unwrap();
                let list = list.as_array().unwrap();
                assert!(
                    list.contains(&json!("from a")) && list.contains(&json!("from b")),
                    "{kind} {policy}: {list:?}"
                );
                assert_eq!(
                    d.store.get("d", &meta).unwrap(),
                    Some(json!({"x": 1, "y": 2})),
                    "{kind} {policy}"
                );
                for v in d.store.get_all("d", &meta).unwrap() {
                    assert_eq!(v.value, json!({"x": 1, "y": 2}), "{kind} {policy}");
                }
            }
            assert_eq!(a.store.to_json("d").unwrap(), b.store.to_json("d").unwrap());
        }
    }
}

#[test]
fn whole_document_reads_show_resolved_values_and_hide_policy_data() {
    let (_dir, a, b) = setup(DocKind::Automerge, "*", "lww", Reader::default());
    a.store.transact("d", |tx| tx.put("t", "a")).unwrap();
    b.store.transact("d", |tx| tx.put("t", "b")).unwrap();
    sync(&[&a, &b], "d");
    assert_eq!(b.store.to_json("d").unwrap(), json!({"t": "a"}));
    a.store.transact("d", |tx| tx.delete("t")).unwrap();
    sync(&[&a, &b], "d");
    assert_eq!(b.store.to_json("d").unwrap(), json!({}));
    assert_eq!(b.store.get("d", "t").unwrap(), None);
}

#[test]
fn the_clock_is_persisted_and_an_old_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let d = device(&dir, "old.db", BASE, Reader::default());
        d.store.create_doc("d", DocKind::Automerge).unwrap();
        d.store.set_policy("d", "k", &Policy::Lww).unwrap();
        d.store.transact("d", |tx| tx.put("k", 1)).unwrap();
    }
    // Make it a schema-1 store: no clock table.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE hlc; PRAGMA user_version = 1;")
            .unwrap();
    }
    let d = device(&dir, "old.db", BASE - HOUR / 2, Reader::default());
    assert_eq!(d.store.get("d", "k").unwrap(), Some(json!(1)));
    d.store.transact("d", |tx| tx.put("k", 2)).unwrap();
    let first = d.store.get_all("d", "k").unwrap()[0].hlc.clone().unwrap();
    assert!(
        first.ms >= BASE,
        "the write superseded a newer stamp: {first}"
    );
    drop(d);
    // Reopened with a wall clock further behind, in another document (no stamps to see):
    // only the persisted clock orders the new write after the last.
    let d = device(&dir, "old.db", BASE - HOUR * 3 / 4, Reader::default());
    d.store.create_doc("e", DocKind::Yrs).unwrap();
    d.store.set_policy("e", "m/j", &Policy::Lww).unwrap();
    d.store.transact("e", |tx| tx.put("m/j", 1)).unwrap();
    let j = d.store.get_all("e", "m/j").unwrap()[0].hlc.clone().unwrap();
    assert!(
        j > first,
        "the persisted clock never goes back: {j} after {first}"
    );
    assert!(j.ms < BASE + 1000);
}

#[test]
fn a_clock_far_ahead_is_clamped_at_the_drift_bound_yet_a_later_write_still_supersedes_it() {
    let dir = tempfile::tempdir().unwrap();
    // The drift bound is 1 hour; `fast` runs 5 hours ahead of `b`.
    let fast = device(&dir, "fast.db", BASE + 5 * HOUR, Reader::default());
    let b = device(&dir, "b.db", BASE, Reader::default());
    for d in [&fast, &b] {
        d.store.create_doc("d", DocKind::Automerge).unwrap();
        d.store.create_doc("other", DocKind::Automerge).unwrap();
    }
    fast.store.set_policy("d", "*", &Policy::Lww).unwrap();
    fast.store
        .transact("d", |tx| tx.put("title", "from the future"))
        .unwrap();
    sync(&[&fast, &b], "d");

    // b's clock moved only to now + 1 hour: a write in another document is stamped there.
    b.store.set_policy("other", "*", &Policy::Lww).unwrap();
    let elsewhere = b
        .store
        .transact("other", |tx| {
            tx.put("x", 1)?;
            Ok(tx.last_stamp().unwrap())
        })
        .unwrap();
    assert!(elsewhere.ms <= BASE + HOUR, "clamped: {elsewhere}");
    assert!(
        elsewhere.ms >= BASE + HOUR - 1000,
        "advanced to the bound: {elsewhere}"
    );

    // Overwriting the far-future value still wins: a write orders after what it supersedes.
    let over = b
        .store
        .transact("d", |tx| {
            tx.put("title", "fixed")?;
            Ok(tx.last_stamp().unwrap())
        })
        .unwrap();
    assert!(over.ms >= BASE + 5 * HOUR);
    sync(&[&fast, &b], "d");
    for d in [&fast, &b] {
        assert_eq!(d.store.get("d", "title").unwrap(), Some(json!("fixed")));
    }
}

#[test]
fn a_delete_of_nothing_fails_even_after_a_governed_write_in_the_same_edit() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(&dir, "d.db", BASE, Reader::default());
    for (doc, kind) in [("a", DocKind::Automerge), ("y", DocKind::Yrs)] {
        d.store.create_doc(doc, kind).unwrap();
        let governed = key(kind, "k");
        d.store.set_policy(doc, &governed, &Policy::Lww).unwrap();
        let before = d.store.to_json(doc).unwrap();
        // "" reads as the whole document, and Yrs's root map "m" as that map, yet neither
        // can be deleted: those reach the policy's path for a failed delete.
        for nothing in ["", "m", "nothing/here", &key(kind, "absent")] {
            let err = d
                .store
                .transact(doc, |tx| {
                    tx.put(&governed, 1)?;
                    assert!(tx.last_stamp().is_some(), "the write was stamped");
                    tx.delete(nothing)
                })
                .unwrap_err();
            assert!(
                matches!(err, Error::InvalidPath { .. }),
                "{doc} {nothing:?}: {err}"
            );
        }
        assert_eq!(
            d.store.to_json(doc).unwrap(),
            before,
            "{doc}: nothing stored"
        );
    }
}

//! Property: under every conflict policy, three devices with skewed clocks (one hours
//! behind, one ahead within the drift bound) that write concurrently and receive each
//! other's updates in random order, with duplicates, partial deliveries and resyncs,
//! all show the same resolved values; under last-writer-wins that value is the write with
//! the highest (HLC, origin). Automerge and Yrs documents; real stores on SQLite files.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use concord_core::{DocKind, Hlc, Reader, Store, StoreOptions, UpdateRecord, WallClock};
use proptest::prelude::*;
use serde_json::{json, Value};

const HOUR: u64 = 3_600_000;
const BASE: u64 = 1_800_000_000_000;
/// Device clocks: on time, 3 hours behind, 40 minutes ahead (the drift bound is 1 hour).
const SKEW: [i64; 3] = [0, -3 * HOUR as i64, 40 * 60 * 1000];
const KEYS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Device writes (or, with `delete`, deletes) key.
    Write {
        device: usize,
        key: usize,
        delete: bool,
    },
    /// Up to `count` of the updates `to` lacks from `from`, optionally shuffled (an
    /// out-of-order batch stops at its first gap, as on a real connection).
    Deliver {
        from: usize,
        to: usize,
        count: usize,
        shuffle: u64,
    },
    /// The last batch `to` received, delivered again.
    Duplicate { to: usize },
    /// Time passes on every device.
    Tick { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..KEYS, prop::bool::weighted(0.1))
            .prop_map(|(device, key, delete)| Op::Write { device, key, delete }),
        3 => (0..3usize, 0..3usize, 1..6usize, any::<u64>())
            .prop_map(|(from, to, count, shuffle)| Op::Deliver { from, to, count, shuffle }),
        1 => (0..3usize).prop_map(|to| Op::Duplicate { to }),
        1 => (0..5_000u64).prop_map(|ms| Op::Tick { ms }),
    ]
}

struct Device {
    store: Store,
    now: Arc<AtomicU64>,
    last_batch: Vec<UpdateRecord>,
}

fn open(dir: &tempfile::TempDir, i: usize) -> Device {
    let now = Arc::new(AtomicU64::new(BASE.wrapping_add_signed(SKEW[i])));
    let clock = now.clone();
    let store = Store::open_with(
        dir.path().join(format!("{i}.db")),
        StoreOptions {
            wall_clock: WallClock::from_fn(move || clock.load(Ordering::SeqCst)),
            max_drift_ms: HOUR,
            reader: Reader::default(),
            ..Default::default()
        },
    )
    .unwrap();
    Device {
        store,
        now,
        last_batch: Vec::new(),
    }
}

fn path(kind: DocKind, key: usize) -> String {
    match kind {
        DocKind::Automerge => format!("k{key}"),
        DocKind::Yrs => format!("m/k{key}"),
    }
}

fn deliver(devices: &mut [Device], from: usize, to: usize, count: usize, shuffle: u64) {
    if from == to {
        return;
    }
    let vv = devices[to].store.version_vector("d").unwrap();
    let mut batch = devices[from].store.updates_missing_from("d", &vv).unwrap();
    batch.truncate(count);
    if shuffle.is_multiple_of(3) && batch.len() > 1 {
        let k = (shuffle as usize / 3) % batch.len();
        batch.swap(0, k);
    }
    devices[to].store.apply_remote("d", &batch).unwrap();
    devices[to].last_batch = batch;
}

fn sync_all(devices: &mut [Device]) {
    for _ in 0..2 {
        for from in 0..3 {
            for to in 0..3 {
                deliver(devices, from, to, usize::MAX, 1);
            }
        }
    }
}

fn run(kind: DocKind, policy: &str, ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut devices: Vec<Device> = (0..3).map(|i| open(&dir, i)).collect();
    for d in &devices {
        d.store.create_doc("d", kind).unwrap();
    }
    let pattern = path(kind, 0).replace("k0", "*");
    devices[0]
        .store
        .set_policy("d", &pattern, &policy.parse().unwrap())
        .unwrap();
    sync_all(&mut devices);

    // Every write's stamp and value (None: a deletion), per key.
    let mut writes: Vec<Vec<(Hlc, Option<Value>)>> = vec![Vec::new(); KEYS];
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Write {
                device,
                key,
                delete,
            } => {
                let d = &devices[*device];
                let p = path(kind, *key);
                let exists = d.store.get("d", &p).unwrap().is_some();
                let value = json!(n as i64 * 7 % 23);
                let deleting = *delete && exists;
                let stamp = d
                    .store
                    .transact("d", |tx| {
                        if deleting {
                            tx.delete(&p)?;
                        } else {
                            tx.put(&p, value.clone())?;
                        }
                        Ok(tx.last_stamp())
                    })
                    .unwrap();
                assert_eq!(stamp.is_some(), policy != "crdt");
                if let Some(stamp) = stamp {
                    writes[*key].push((stamp, (!deleting).then_some(value)));
                }
            }
            Op::Deliver {
                from,
                to,
                count,
                shuffle,
            } => deliver(&mut devices, *from, *to, *count, *shuffle),
            Op::Duplicate { to } => {
                let batch = devices[*to].last_batch.clone();
                let outcome = devices[*to].store.apply_remote("d", &batch).unwrap();
                assert_eq!(outcome.applied, 0, "a duplicate applies nothing");
            }
            Op::Tick { ms } => {
                for d in &devices {
                    d.now.fetch_add(*ms, Ordering::SeqCst);
                }
            }
        }
    }
    sync_all(&mut devices);

    let doc0 = devices[0].store.to_json("d").unwrap();
    for d in &devices[1..] {
        assert_eq!(
            d.store.to_json("d").unwrap(),
            doc0,
            "{kind} {policy}: replicas differ"
        );
    }
    for (key, key_writes) in writes.iter().enumerate() {
        let p = path(kind, key);
        let shown = devices[0].store.get("d", &p).unwrap();
        let all0 = devices[0].store.get_all("d", &p).unwrap();
        for d in &devices[1..] {
            assert_eq!(d.store.get("d", &p).unwrap(), shown);
            assert_eq!(
                d.store.get_all("d", &p).unwrap(),
                all0,
                "{kind} {policy} {p}"
            );
        }
        let Some((_, winner)) = key_writes.iter().max_by(|a, b| a.0.cmp(&b.0)) else {
            continue;
        };
        match policy {
            "lww" => assert_eq!(
                &shown, winner,
                "{kind}: LWW shows the highest (HLC, origin)"
            ),
            "keep-all" => {
                if let Some(w) = winner {
                    assert!(
                        all0.iter().any(|v| &v.value == w),
                        "the newest write is kept"
                    );
                }
            }
            "merge:max" => {
                let max = all0.iter().map(|v| v.value.as_i64().unwrap()).max();
                assert_eq!(
                    shown.and_then(|v| v.as_i64()),
                    max,
                    "{kind}: merge shows the max"
                );
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_replica_resolves_alike_automerge(
        policy in prop::sample::select(vec!["lww", "merge:max", "keep-all", "crdt"]),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(DocKind::Automerge, policy, &ops);
    }

    #[test]
    fn every_replica_resolves_alike_yrs(
        policy in prop::sample::select(vec!["lww", "merge:max", "keep-all", "crdt"]),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(DocKind::Yrs, policy, &ops);
    }
}

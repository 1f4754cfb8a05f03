//! Property: random edits on several devices, delivered in random interleavings with
//! duplicated frames and reconnects, always converge — through the real relay logic
//! (`RelaySession` + the server's storage and fan-out) and real SQLite stores, with the
//! transport replaced by queues the test shuffles.

use std::collections::VecDeque;
use std::sync::Arc;

use concord_core::protocol::{self, Message};
use concord_core::sync::{ClientConfig, ClientSession, RelaySession, SyncScope};
use concord_core::{Causality, DocKind, Store};
use concord_server::auth::Auth;
use concord_server::hub::{conn_queue, ConnReceiver};
use concord_server::state::{Connection, Relay, RelayConfig};
use concord_server::storage::Storage;
use proptest::prelude::*;

const DEVICES: usize = 3;
const AM: &str = "am-doc";
const YRS: &str = "yrs-doc";

#[derive(Debug, Clone)]
enum Action {
    /// A local edit on a device (kind of edit, a small number used for positions/values).
    Edit { device: usize, edit: u8, n: u8 },
    /// Deliver the next client → relay frame of a device.
    Up { device: usize },
    /// Deliver the next relay → client frame of a device.
    Down { device: usize },
    /// Deliver the last client → relay frame of a device again.
    DuplicateUp { device: usize },
    /// Deliver the last relay → client frame of a device again.
    DuplicateDown { device: usize },
    /// Drop the connection (losing in-flight frames) and connect again.
    Reconnect { device: usize },
}

fn action() -> impl Strategy<Value = Action> {
    let d = 0..DEVICES;
    prop_oneof![
        3 => (d.clone(), 0u8..6, any::<u8>()).prop_map(|(device, edit, n)| Action::Edit { device, edit, n }),
        4 => d.clone().prop_map(|device| Action::Up { device }),
        4 => d.clone().prop_map(|device| Action::Down { device }),
        1 => d.clone().prop_map(|device| Action::DuplicateUp { device }),
        1 => d.clone().prop_map(|device| Action::DuplicateDown { device }),
        1 => d.prop_map(|device| Action::Reconnect { device }),
    ]
}

struct Device {
    store: Store,
    session: ClientSession<Store>,
    relay_session: RelaySession,
    backend: Connection,
    from_relay: ConnReceiver,
    up: VecDeque<Vec<u8>>,
    down: VecDeque<Vec<u8>>,
    last_up: Option<Vec<u8>>,
    last_down: Option<Vec<u8>>,
}

struct World {
    relay: Arc<Relay>,
    devices: Vec<Device>,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("relay.db"), 8).unwrap();
        let relay = Relay::new(
            RelayConfig {
                server_id: "sim".into(),
                max_frame_bytes: 1 << 20,
                max_queue: 1 << 20,
                idle_timeout: std::time::Duration::from_secs(45),
            },
            Auth::Open,
            storage,
        );
        let mut devices = Vec::new();
        for i in 0..DEVICES {
            let store = Store::open_with(
                dir.path().join(format!("device{i}.db")),
                concord_core::StoreOptions {
                    checkpoint_every: 5,
                    ..Default::default()
                },
            )
            .unwrap();
            if i == 0 {
                store.create_doc(AM, DocKind::Automerge).unwrap();
                store.create_doc(YRS, DocKind::Yrs).unwrap();
            }
            let session = ClientSession::new(
                store.clone(),
                ClientConfig {
                    token: None,
                    scope: SyncScope::Prefix(String::new()),
                    ..ClientConfig::default()
                },
            );
            let (queue, from_relay) = conn_queue();
            devices.push(Device {
                store,
                session,
                relay_session: RelaySession::new("sim", 1 << 20),
                backend: relay.connection(queue),
                from_relay,
                up: VecDeque::new(),
                down: VecDeque::new(),
                last_up: None,
                last_down: None,
            });
        }
        let mut world = World {
            relay,
            devices,
            _dir: dir,
        };
        for i in 0..DEVICES {
            world.connect(i);
        }
        world
    }

    fn connect(&mut self, i: usize) {
        let d = &mut self.devices[i];
        let hello = d.session.connected();
        d.up.extend(hello.iter().map(protocol::encode));
    }

    fn reconnect(&mut self, i: usize) {
        let (queue, from_relay) = conn_queue();
        let backend = self.relay.connection(queue);
        let d = &mut self.devices[i];
        d.session.disconnected();
        d.up.clear();
        d.down.clear();
        d.last_up = None;
        d.last_down = None;
        d.backend = backend; // the old backend drops: unsubscribed from fan-out
        d.from_relay = from_relay;
        d.relay_session = RelaySession::new("sim", 1 << 20);
        self.connect(i);
    }

    /// Moves frames the relay queued for device `i` into its down queue.
    fn collect_fanout(&mut self, i: usize) {
        let d = &mut self.devices[i];
        while let Ok(frame) = d.from_relay.rx.try_recv() {
            d.from_relay.watch.sent(&frame);
            d.down.push_back(frame.as_ref().clone());
        }
    }

    fn deliver_up(&mut self, i: usize, frame: Vec<u8>) {
        let d = &mut self.devices[i];
        for reply in d
            .backend
            .handle_frame_blocking(&mut d.relay_session, &frame)
        {
            if let Message::Error(e) = &reply {
                panic!("relay refused a well-behaved client: {e:?}");
            }
            d.down.push_back(protocol::encode(&reply));
        }
        for j in 0..DEVICES {
            self.collect_fanout(j);
        }
    }

    fn deliver_down(&mut self, i: usize, frame: Vec<u8>) {
        let d = &mut self.devices[i];
        let out = d.session.handle_frame(&frame).unwrap();
        d.up.extend(out.iter().map(protocol::encode));
        let errors = d.session.take_errors();
        assert!(errors.is_empty(), "client saw errors: {errors:?}");
    }

    fn edit(&mut self, i: usize, edit: u8, n: u8) {
        let d = &mut self.devices[i];
        let Some(kind) = d.store.doc_kind(if edit < 3 { AM } else { YRS }).unwrap() else {
            return; // this device has not learned the document yet
        };
        let doc = if kind == DocKind::Automerge { AM } else { YRS };
        let n = n as usize;
        d.store
            .transact(doc, |tx| match edit {
                0 => tx.put(&format!("k{}", n % 4), format!("d{i}-{n}")),
                1 => tx.increment("count", 1),
                2 => {
                    let len = tx
                        .get("text")?
                        .and_then(|v| v.as_str().map(|s| s.chars().count()))
                        .unwrap_or(0);
                    tx.insert_text("text", n % (len + 1), &format!("{i}"))
                }
                3 => tx.put(&format!("map/k{}", n % 4), n as i64),
                4 => {
                    let len = tx
                        .get("text")?
                        .and_then(|v| v.as_str().map(|s| s.encode_utf16().count()))
                        .unwrap_or(0);
                    tx.insert_text("text", n % (len + 1), &format!("{i}"))
                }
                _ => tx.push("list", n as i64),
            })
            .unwrap();
        let out = d.session.local_change(doc).unwrap();
        d.up.extend(out.iter().map(protocol::encode));
    }

    fn step(&mut self, action: &Action) {
        match *action {
            Action::Edit { device, edit, n } => self.edit(device, edit, n),
            Action::Up { device } => {
                if let Some(f) = self.devices[device].up.pop_front() {
                    self.devices[device].last_up = Some(f.clone());
                    self.deliver_up(device, f);
                }
            }
            Action::Down { device } => {
                if let Some(f) = self.devices[device].down.pop_front() {
                    self.devices[device].last_down = Some(f.clone());
                    self.deliver_down(device, f);
                }
            }
            Action::DuplicateUp { device } => {
                // Only data frames are retransmitted by a real transport.
                if let Some(f) = self.devices[device].last_up.clone() {
                    if matches!(protocol::decode(&f), Ok(Message::Updates(_))) {
                        self.deliver_up(device, f);
                    }
                }
            }
            Action::DuplicateDown { device } => {
                if let Some(f) = self.devices[device].last_down.clone() {
                    if matches!(protocol::decode(&f), Ok(Message::Updates(_))) {
                        self.deliver_down(device, f);
                    }
                }
            }
            Action::Reconnect { device } => self.reconnect(device),
        }
    }

    /// Delivers everything in flight until nothing moves (bounded).
    fn quiesce(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..DEVICES {
                if let Some(f) = self.devices[i].up.pop_front() {
                    self.deliver_up(i, f);
                    moved = true;
                }
                if let Some(f) = self.devices[i].down.pop_front() {
                    self.deliver_down(i, f);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network did not go quiet");
    }
}

fn run(actions: &[Action]) -> Result<(), TestCaseError> {
    let mut world = World::new();
    for a in actions {
        world.step(a);
    }
    // Heal: everyone reconnects (a late joiner learns every doc) and the network drains.
    for i in 0..DEVICES {
        world.reconnect(i);
    }
    world.quiesce();
    for i in 0..DEVICES {
        world.reconnect(i);
    }
    world.quiesce();

    let first = &world.devices[0].store;
    for doc in [AM, YRS] {
        let expected = first.to_json(doc).unwrap();
        let expected_vv = first.version_vector(doc).unwrap();
        for d in &world.devices {
            prop_assert_eq!(
                d.store.to_json(doc).unwrap(),
                expected.clone(),
                "{} differs",
                doc
            );
            let vv = d.store.version_vector(doc).unwrap();
            prop_assert_eq!(vv.compare(&expected_vv), Causality::Equal);
            prop_assert_eq!(d.store.pending(doc).unwrap(), 0);
            // Each device's own entry counts exactly the commits it made.
            prop_assert!(vv.missing_from(&expected_vv).is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_and_deliveries_converge(actions in proptest::collection::vec(action(), 1..120)) {
        run(&actions)?;
    }
}

#[test]
fn concurrent_counter_increments_add_up_exactly_once() {
    // A fixed scenario with heavy duplication: every increment counts once. The counter is
    // created once, before the concurrent increments (concurrent *creations* of the same key
    // conflict in Automerge, and the losers' increments go with them).
    let mut world = World::new();
    world.devices[0]
        .store
        .transact(AM, |tx| tx.increment("count", 0))
        .unwrap();
    let out = world.devices[0].session.local_change(AM).unwrap();
    world.devices[0].up.extend(out.iter().map(protocol::encode));
    world.quiesce();
    for round in 0..10u8 {
        for i in 0..DEVICES {
            world.step(&Action::Edit {
                device: i,
                edit: 1,
                n: round,
            });
            world.step(&Action::Up { device: i });
            world.step(&Action::DuplicateUp { device: i });
            world.step(&Action::Down { device: i });
            world.step(&Action::DuplicateDown { device: i });
        }
        if round % 3 == 0 {
            world.reconnect(round as usize % DEVICES);
        }
    }
    for i in 0..DEVICES {
        world.reconnect(i);
    }
    world.quiesce();
    let total: i64 = world.devices[0]
        .store
        .get(AM, "count")
        .unwrap()
        .unwrap()
        .as_i64()
        .unwrap();
    let committed = world
        .devices
        .iter()
        .map(|d| {
            d.store
                .version_vector(AM)
                .unwrap()
                .get(&d.store.device_id())
        })
        .sum::<u64>();
    // Every commit but the one creating the counter at 0 added exactly 1.
    assert_eq!(total as u64, committed - 1);
    assert_eq!(total, 30);
    for d in &world.devices {
        assert_eq!(d.store.get(AM, "count").unwrap(), Some(total.into()));
    }
}

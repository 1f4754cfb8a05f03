//! The y-websocket rooms of this node: which connections are in each room and the Yjs
//! awareness states they announced. An awareness update that changes something is relayed
//! to every connection of its room, the sender included (the y-websocket client takes that
//! echo as a sign of life); a newcomer is shown the room's states; when a connection goes,
//! the states it announced first are removed and the removal is relayed. A client id
//! belongs to the connection that announced it: another connection can neither change nor
//! remove its state while that connection renews it (y-websocket clients renew every 15 s);
//! one not renewed for [`OUTDATED`] (y-protocols' own timeout, after which every client
//! drops it) may be taken over, as a client reconnecting on a new connection while its old
//! one lingers half-open needs. Frames go into
//! each member's own bounded queue (`hub.rs`): a member that does not read them is closed
//! as a slow consumer (it is shown every state again when it rejoins), so a busy room never
//! buffers without limit for it. Awareness is never stored and does not cross cluster
//! nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::Message;
use yrs::updates::encoder::Encode;
use yrs::ClientID;

use crate::hub::ConnQueue;

/// A y-websocket frame, shared by every connection it is sent to.
pub type YFrame = Arc<Vec<u8>>;

/// Where a member's frames go: its connection's own queue, and how many frames may wait
/// there before it is closed as too slow.
pub struct MemberTx {
    pub queue: ConnQueue,
    pub max_queue: usize,
}

/// How long a client id's state stays its connection's without being renewed: y-protocols'
/// `outdatedTimeout`, after which clients drop the state themselves.
pub const OUTDATED: Duration = Duration::from_secs(30);

/// One awareness client id's state.
struct State {
    clock: u32,
    json: Arc<str>,
    /// The connection that announced it, and when it last renewed it.
    owner: u64,
    renewed: Instant,
}

/// The most client ids one connection may own (a y-websocket client announces one).
pub const MAX_CLIENTS_PER_CONNECTION: usize = 64;

/// The most bytes of awareness JSON one connection's states may hold together.
pub const MAX_STATE_BYTES_PER_CONNECTION: usize = 1 << 20;

/// What one connection's states hold.
#[derive(Default, Clone, Copy)]
struct Owned {
    clients: usize,
    bytes: usize,
}

#[derive(Default)]
struct Room {
    members: HashMap<u64, MemberTx>,
    states: HashMap<ClientID, State>,
    /// Per member: what the states it owns hold (bounded, see `update`).
    owned: HashMap<u64, Owned>,
}

/// A connection asked to own more awareness state than a connection may.
#[derive(Debug, thiserror::Error)]
#[error(
    "awareness beyond a connection's bound ({MAX_CLIENTS_PER_CONNECTION} client ids, \
     {MAX_STATE_BYTES_PER_CONNECTION} bytes of state)"
)]
pub struct TooMuchAwareness;

impl Room {
    fn frame(&self, clients: impl Iterator<Item = ClientID>) -> Option<YFrame> {
        let clients: HashMap<ClientID, AwarenessUpdateEntry> = clients
            .filter_map(|id| {
                self.states.get(&id).map(|state| {
                    (
                        id,
                        AwarenessUpdateEntry {
                            clock: state.clock,
                            json: state.json.clone(),
                        },
                    )
                })
            })
            .collect();
        (!clients.is_empty())
            .then(|| Arc::new(Message::Awareness(AwarenessUpdate { clients }).encode_v1()))
    }

    /// Counts a state of `bytes` as `member`'s (`adding`) or no longer; refuses
    /// (changing nothing) a state past the member's bound.
    fn own(&mut self, member: u64, bytes: usize, adding: bool) -> Result<(), TooMuchAwareness> {
        let owned = self.owned.entry(member).or_default();
        if adding {
            let next = Owned {
                clients: owned.clients + 1,
                bytes: owned.bytes + bytes,
            };
            if next.clients > MAX_CLIENTS_PER_CONNECTION
                || next.bytes > MAX_STATE_BYTES_PER_CONNECTION
            {
                return Err(TooMuchAwareness);
            }
            *owned = next;
        } else {
            owned.clients = owned.clients.saturating_sub(1);
            owned.bytes = owned.bytes.saturating_sub(bytes);
        }
        Ok(())
    }

    fn send_all(&self, frame: &YFrame) {
        for member in self.members.values() {
            member.queue.offer(frame.clone(), member.max_queue);
        }
    }
}

/// Every room of this node.
#[derive(Default)]
pub struct YjsRooms {
    rooms: Mutex<HashMap<String, Room>>,
}

impl YjsRooms {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds connection `member` to `room`; the awareness frame of the room's current
    /// states, if any, to show it.
    pub fn join(&self, room: &str, member: u64, tx: MemberTx) -> Option<YFrame> {
        let mut rooms = self.rooms();
        let room = rooms.entry(room.to_string()).or_default();
        room.members.insert(member, tx);
        room.frame(room.states.keys().copied().collect::<Vec<_>>().into_iter())
    }

    /// The room's current awareness states (the answer to an awareness query).
    pub fn query(&self, room: &str) -> Option<YFrame> {
        let rooms = self.rooms();
        let room = rooms.get(room)?;
        room.frame(room.states.keys().copied().collect::<Vec<_>>().into_iter())
    }

    /// Records `member`'s awareness `update` and, when it changed anything, relays `frame`
    /// (its encoding) to the whole room, the sender included. A client id belongs to the
    /// connection that announced it: another connection's update of it is ignored while
    /// the owner renews it (y-websocket clients re-send the states they receive, and remove
    /// those they have not heard from in 30 s; neither is theirs to say).
    ///
    /// A connection owns at most [`MAX_CLIENTS_PER_CONNECTION`] client ids holding at most
    /// [`MAX_STATE_BYTES_PER_CONNECTION`] bytes together: an update past that is refused
    /// (the caller closes the connection, and `leave` removes what it owned).
    pub fn update(
        &self,
        room: &str,
        member: u64,
        update: AwarenessUpdate,
        frame: YFrame,
    ) -> Result<(), TooMuchAwareness> {
        self.update_at(room, member, update, frame, Instant::now())
    }

    fn update_at(
        &self,
        room: &str,
        member: u64,
        update: AwarenessUpdate,
        frame: YFrame,
        now: Instant,
    ) -> Result<(), TooMuchAwareness> {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(room) else {
            return Ok(());
        };
        let mut changed = false;
        for (id, entry) in update.clients {
            let removal = &*entry.json == "null";
            match room.states.get_mut(&id) {
                None if !removal => {
                    room.own(member, entry.json.len(), true)?;
                    let state = State {
                        clock: entry.clock,
                        json: entry.json,
                        owner: member,
                        renewed: now,
                    };
                    room.states.insert(id, state);
                    changed = true;
                }
                None => {}
                Some(state)
                    if state.owner != member
                        && now.saturating_duration_since(state.renewed) < OUTDATED => {}
                Some(state) if entry.clock < state.clock => {}
                Some(state) if entry.clock == state.clock && !removal && state.owner == member => {
                    state.renewed = now;
                }
                Some(state) if entry.clock == state.clock && !removal => {}
                Some(_) if removal => {
                    if let Some(gone) = room.states.remove(&id) {
                        let _ = room.own(gone.owner, gone.json.len(), false);
                    }
                    changed = true;
                }
                Some(state) => {
                    let (owner, bytes) = (state.owner, state.json.len());
                    let _ = room.own(owner, bytes, false);
                    if let Err(e) = room.own(member, entry.json.len(), true) {
                        let _ = room.own(owner, bytes, true);
                        return Err(e);
                    }
                    let state = room.states.get_mut(&id).expect("present");
                    state.clock = entry.clock;
                    state.json = entry.json;
                    state.owner = member;
                    state.renewed = now;
                    changed = true;
                }
            }
        }
        if changed {
            room.send_all(&frame);
        }
        Ok(())
    }

    /// Takes `member` out of `room`: the states it announced are removed, and the others
    /// are told (each state as `null` with its clock advanced).
    pub fn leave(&self, room_id: &str, member: u64) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(room_id) else {
            return;
        };
        room.members.remove(&member);
        let gone: HashMap<ClientID, AwarenessUpdateEntry> = room
            .states
            .iter()
            .filter(|(_, state)| state.owner == member)
            .map(|(id, state)| {
                (
                    *id,
                    AwarenessUpdateEntry {
                        // A removal at the same clock also counts (y-protocols takes a
                        // `null` state at an equal clock as its end), so a client that
                        // announced the largest clock is still removed.
                        clock: state.clock.saturating_add(1),
                        json: Arc::from("null"),
                    },
                )
            })
            .collect();
        room.states.retain(|_, state| state.owner != member);
        room.owned.remove(&member);
        if !gone.is_empty() {
            let frame = Arc::new(Message::Awareness(AwarenessUpdate { clients: gone }).encode_v1());
            room.send_all(&frame);
        }
        if room.members.is_empty() {
            rooms.remove(room_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::conn_queue;

    fn announce(clock: u32, json: &str) -> (AwarenessUpdate, YFrame) {
        let update = AwarenessUpdate {
            clients: [(
                ClientID::new(7),
                AwarenessUpdateEntry {
                    clock,
                    json: json.into(),
                },
            )]
            .into(),
        };
        let frame = Arc::new(Message::Awareness(update.clone()).encode_v1());
        (update, frame)
    }

    fn shown(rooms: &YjsRooms) -> (u32, String, u64) {
        let rooms = rooms.rooms();
        let state = &rooms["r"].states[&ClientID::new(7)];
        (state.clock, state.json.to_string(), state.owner)
    }

    /// Another connection cannot change a client id its owner renews; once the owner has
    /// not renewed it for `OUTDATED` (a client that reconnected, its old connection
    /// lingering half-open), the new connection takes it over.
    #[test]
    fn a_client_id_is_taken_over_only_once_its_owner_stopped_renewing_it() {
        let rooms = YjsRooms::default();
        for member in [1, 2] {
            let (queue, _receiver) = conn_queue();
            rooms.join(
                "r",
                member,
                MemberTx {
                    queue,
                    max_queue: 64,
                },
            );
        }
        let t0 = Instant::now();
        // Connection `member` announces `json` at `clock`, `secs` into the test.
        let say = |member: u64, clock: u32, json: &str, secs: u64| {
            let (u, f) = announce(clock, json);
            rooms
                .update_at("r", member, u, f, t0 + Duration::from_secs(secs))
                .unwrap();
        };
        say(1, 1, "{\"a\":1}", 0);
        // The owner renews it (same clock, as y-websocket's echo of itself) at 20 s.
        say(1, 1, "{\"a\":1}", 20);
        say(2, 5, "{\"b\":2}", 45);
        assert_eq!(
            shown(&rooms),
            (1, "{\"a\":1}".into(), 1),
            "renewed 25 s ago: kept"
        );
        say(2, 6, "null", 45);
        assert_eq!(shown(&rooms).2, 1, "nor removed by another connection");
        say(2, 5, "{\"b\":2}", 51);
        assert_eq!(
            shown(&rooms),
            (5, "{\"b\":2}".into(), 2),
            "31 s without renewal: taken over"
        );
        // Now the first connection's is the foreign one.
        say(1, 9, "{\"a\":3}", 52);
        assert_eq!(shown(&rooms).2, 2);
    }

    /// One connection owns at most `MAX_CLIENTS_PER_CONNECTION` client ids and
    /// `MAX_STATE_BYTES_PER_CONNECTION` bytes of state: past that its update is refused;
    /// what it removed or left no longer counts.
    #[test]
    fn a_connection_owns_a_bounded_number_and_size_of_states() {
        let rooms = YjsRooms::default();
        let (queue, _receiver) = conn_queue();
        rooms.join(
            "r",
            1,
            MemberTx {
                queue,
                max_queue: 1 << 20,
            },
        );
        let states = |ids: std::ops::Range<u64>, json: &str| {
            let update = AwarenessUpdate {
                clients: ids
                    .map(|id| {
                        (
                            ClientID::new(id),
                            AwarenessUpdateEntry {
                                clock: 1,
                                json: json.into(),
                            },
                        )
                    })
                    .collect(),
            };
            let frame = Arc::new(Message::Awareness(update.clone()).encode_v1());
            rooms.update("r", 1, update, frame)
        };
        let max = MAX_CLIENTS_PER_CONNECTION as u64;
        states(0..max, "{}").expect("within the bound");
        assert!(
            states(max..max + 1, "{}").is_err(),
            "one client id too many"
        );
        let count = |rooms: &YjsRooms| rooms.rooms()["r"].states.len();
        assert_eq!(count(&rooms), MAX_CLIENTS_PER_CONNECTION);
        // Removing states frees their place.
        let removal = AwarenessUpdate {
            clients: (0..max)
                .map(|id| {
                    (
                        ClientID::new(id),
                        AwarenessUpdateEntry {
                            clock: 2,
                            json: "null".into(),
                        },
                    )
                })
                .collect(),
        };
        let frame = Arc::new(Message::Awareness(removal.clone()).encode_v1());
        rooms.update("r", 1, removal, frame).unwrap();
        assert_eq!(count(&rooms), 0);
        // Bytes: one state just under the bound fits; growing past it is refused.
        let big = format!("\"{}\"", "x".repeat(MAX_STATE_BYTES_PER_CONNECTION - 2));
        states(500..501, &big).expect("exactly the bound");
        assert!(states(501..502, "{}").is_err(), "one byte too many");
    }
}

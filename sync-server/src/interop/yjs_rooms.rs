//! The y-websocket rooms of this node: which connections are in each room and the Yjs
//! awareness states they announced. An awareness update that changes something is relayed
//! to every connection of its room, the sender included (the y-websocket client takes that
//! echo as a sign of life); a newcomer is shown the room's states; when a connection goes,
//! the states it announced first are removed and the removal is relayed. A client id
//! belongs to the connection that announced it first, for as long as that connection is in
//! the room: another connection can neither change nor remove its state. Frames go into
//! each member's own bounded queue (`hub.rs`): a member that does not read them is closed
//! as a slow consumer (it is shown every state again when it rejoins), so a busy room never
//! buffers without limit for it. Awareness is never stored and does not cross cluster
//! nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

#[derive(Default)]
struct Room {
    members: HashMap<u64, MemberTx>,
    /// Per awareness client id: its clock, JSON state and the connection that announced it.
    states: HashMap<ClientID, (u32, Arc<str>, u64)>,
}

impl Room {
    fn frame(&self, clients: impl Iterator<Item = ClientID>) -> Option<YFrame> {
        let clients: HashMap<ClientID, AwarenessUpdateEntry> = clients
            .filter_map(|id| {
                self.states.get(&id).map(|(clock, json, _)| {
                    (
                        id,
                        AwarenessUpdateEntry {
                            clock: *clock,
                            json: json.clone(),
                        },
                    )
                })
            })
            .collect();
        (!clients.is_empty())
            .then(|| Arc::new(Message::Awareness(AwarenessUpdate { clients }).encode_v1()))
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
    /// connection that first announced it: another connection's update of it is ignored
    /// (y-websocket clients re-send the states they receive, and remove those they have not
    /// heard from in 30 s; neither is theirs to say).
    pub fn update(&self, room: &str, member: u64, update: AwarenessUpdate, frame: YFrame) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(room) else {
            return;
        };
        let mut changed = false;
        for (id, entry) in update.clients {
            let removal = &*entry.json == "null";
            match room.states.get_mut(&id) {
                None if !removal => {
                    room.states.insert(id, (entry.clock, entry.json, member));
                    changed = true;
                }
                None => {}
                Some((_, _, owner)) if *owner != member => {}
                Some((clock, _, _)) if entry.clock < *clock => {}
                Some((clock, _, _)) if entry.clock == *clock && !removal => {}
                Some(_) if removal => {
                    room.states.remove(&id);
                    changed = true;
                }
                Some((clock, json, _)) => {
                    *clock = entry.clock;
                    *json = entry.json;
                    changed = true;
                }
            }
        }
        if changed {
            room.send_all(&frame);
        }
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
            .filter(|(_, (_, _, owner))| *owner == member)
            .map(|(id, (clock, _, _))| {
                (
                    *id,
                    AwarenessUpdateEntry {
                        // A removal at the same clock also counts (y-protocols takes a
                        // `null` state at an equal clock as its end), so a client that
                        // announced the largest clock is still removed.
                        clock: clock.saturating_add(1),
                        json: Arc::from("null"),
                    },
                )
            })
            .collect();
        room.states.retain(|_, (_, _, owner)| *owner != member);
        if !gone.is_empty() {
            let frame = Arc::new(Message::Awareness(AwarenessUpdate { clients: gone }).encode_v1());
            room.send_all(&frame);
        }
        if room.members.is_empty() {
            rooms.remove(room_id);
        }
    }
}

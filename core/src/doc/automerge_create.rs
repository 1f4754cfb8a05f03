//! Automerge: a container created at a map key is the same object on every device.
//!
//! A map, list, text or counter put at a missing key is created in a change of its own that
//! every device computes identically: its actor id comes from (parent, key, type, generation)
//! (see `creation_id.rs`), it depends only on the change that created the parent, and its
//! timestamp is 0. Two devices that create it while offline produce the same change (same
//! hash), which Automerge applies once, so the edits either device makes inside it meet in one
//! object: counters add up, lists and texts keep every insert, maps every key.
//!
//! If that object was deleted (or overwritten) since, the next generation is created the same
//! way, so two devices re-creating it after seeing the same deletion still meet.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue};

use super::creation_id::CreationKey;
use crate::error::{Error, Result};

/// What is created at the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Object(ObjType),
    Counter,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Object(ObjType::Map | ObjType::Table) => "map",
            Shape::Object(ObjType::List) => "list",
            Shape::Object(ObjType::Text) => "text",
            Shape::Counter => "counter",
        }
    }
}

/// Generations tried before falling back to an ordinary (device-specific) creation.
const MAX_GENERATIONS: u32 = 16;

fn edit_error(e: automerge::AutomergeError) -> Error {
    Error::InvalidEdit(e.to_string())
}

/// A stable name for an object: its op id with the full actor id.
fn object_name(obj: &ObjId) -> String {
    match obj {
        ObjId::Root => "_root".to_string(),
        ObjId::Id(counter, actor, _) => format!("{counter}@{actor}"),
    }
}

/// Creates `shape` at `key` of the map `parent` (where nothing is visible now) as the shared,
/// deterministic object; returns its id (for a counter, the id of the counter's op).
pub(super) fn create_at_key(
    doc: &mut AutoCommit,
    parent: &ObjId,
    key: &str,
    shape: Shape,
) -> Result<ObjId> {
    // Closes the open transaction (if any), so the parent's change is known by its hash.
    let _ = doc.get_heads();
    let deps = match parent {
        ObjId::Root => Vec::new(),
        id => match doc.hash_for_opid(id) {
            Some(hash) => vec![hash],
            // The parent's change is unknown: an ordinary (device-specific) creation.
            None => return put_shape(doc, parent, key, shape),
        },
    };
    let parent_name = object_name(parent);
    for generation in 0..MAX_GENERATIONS {
        let generation = generation.to_string();
        let actor = ActorId::from(
            CreationKey {
                parent: &parent_name,
                key,
                kind: shape.name(),
                generation: &generation,
            }
            .id128()
            .to_vec(),
        );
        let mut fork = doc.fork_at(&deps).map_err(edit_error)?;
        fork.set_actor(actor.clone());
        put_shape(&mut fork, parent, key, shape)?;
        fork.commit_with(CommitOptions::default().with_time(0));
        let change = fork.get_last_local_change().ok_or_else(|| {
            Error::InvalidEdit("creating a shared container made no change".into())
        })?;
        if doc.get_change_by_hash(&change.hash()).is_none() && doc.apply_changes([change]).is_err()
        {
            // This generation's actor already made a different first change here (only a
            // hostile or incompatible writer does that): take the next generation.
            continue;
        }
        let created = doc
            .get_all(parent, key)
            .map_err(edit_error)?
            .into_iter()
            .find_map(|(_, id)| match &id {
                ObjId::Id(_, a, _) if *a == actor => Some(id),
                _ => None,
            });
        if let Some(id) = created {
            return Ok(id);
        }
    }
    put_shape(doc, parent, key, shape)
}

fn put_shape(doc: &mut AutoCommit, parent: &ObjId, key: &str, shape: Shape) -> Result<ObjId> {
    match shape {
        Shape::Object(ty) => doc.put_object(parent, key, ty).map_err(edit_error),
        Shape::Counter => {
            doc.put(parent, key, ScalarValue::counter(0))
                .map_err(edit_error)?;
            Ok(doc
                .get(parent, key)
                .map_err(edit_error)?
                .map(|(_, id)| id)
                .unwrap_or(ObjId::Root))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_documents_create_the_same_change() {
        let mut a = AutoCommit::new();
        let mut b = AutoCommit::new();
        let ia = create_at_key(&mut a, &ObjId::Root, "cc", Shape::Counter).unwrap();
        let ib = create_at_key(&mut b, &ObjId::Root, "cc", Shape::Counter).unwrap();
        assert_eq!(ia, ib);
        assert_eq!(a.get_heads(), b.get_heads());
    }

    /// A writer that took generation 0's actor for other content does not block creation:
    /// devices that have its change move on to generation 1, and still meet there.
    #[test]
    fn a_taken_generation_is_skipped_and_devices_still_meet() {
        let key = CreationKey {
            parent: "_root",
            key: "items",
            kind: "list",
            generation: "0",
        };
        let mut hostile = AutoCommit::new();
        hostile.set_actor(ActorId::from(key.id128().to_vec()));
        hostile.put(ObjId::Root, "junk", 1).unwrap();
        hostile.commit();
        let junk = hostile.get_last_local_change().unwrap();

        let mut a = AutoCommit::new();
        let mut b = AutoCommit::new();
        a.apply_changes([junk.clone()]).unwrap();
        b.apply_changes([junk]).unwrap();
        let shape = Shape::Object(ObjType::List);
        let ia = create_at_key(&mut a, &ObjId::Root, "items", shape).unwrap();
        let ib = create_at_key(&mut b, &ObjId::Root, "items", shape).unwrap();
        assert_eq!(ia, ib);
        assert_ne!(a.get_heads(), hostile.get_heads());
        assert_eq!(a.get_heads(), b.get_heads());
    }
}

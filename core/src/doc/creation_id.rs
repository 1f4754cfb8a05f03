//! Deterministic ids for containers created at a map key.
//!
//! When two devices that have not synced each create a container (a map, list, text or
//! counter) at the same key, a CRDT normally keeps two objects and shows one: every edit made
//! inside the other disappears from reads. Concord instead creates such a container with an
//! id derived from *where* it is created — the parent object, the key, the container type and
//! a generation — so both devices create the very same object and their edits meet in it.
//! This module computes those ids; `automerge_create.rs` and `yrs_create.rs` use them.

/// What a creation is about: enough to tell two creations apart, the same on every device.
pub(crate) struct CreationKey<'a> {
    /// The parent object, as a stable string (an op id or a root name).
    pub parent: &'a str,
    /// The map key inside the parent.
    pub key: &'a str,
    /// The container type, e.g. "map", "list", "text", "counter".
    pub kind: &'a str,
    /// Distinguishes re-creations after the previous one was deleted.
    pub generation: &'a str,
}

impl CreationKey<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [self.parent, self.key, self.kind, self.generation] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    /// A 16-byte id (an Automerge actor id).
    pub fn id128(&self) -> [u8; 16] {
        let bytes = self.bytes();
        let mut out = [0u8; 16];
        out[..8]
            .copy_from_slice(&fnv1a(0xcbf2_9ce4_8422_2325, b"concord-actor", &bytes).to_be_bytes());
        out[8..].copy_from_slice(
            &fnv1a(0x8422_2325_cbf2_9ce4, b"concord-actor2", &bytes).to_be_bytes(),
        );
        out
    }

    /// A 53-bit id (a Yrs client id: Yjs decodes client ids as JavaScript numbers).
    pub fn id53(&self) -> u64 {
        fnv1a(0xcbf2_9ce4_8422_2325, b"concord-client", &self.bytes()) & ((1u64 << 53) - 1)
    }
}

/// FNV-1a over a domain tag and the data, then a final avalanche (splitmix64) so nearby
/// inputs give unrelated outputs.
fn fnv1a(seed: u64, tag: &[u8], data: &[u8]) -> u64 {
    let mut h = seed;
    for b in tag.iter().chain(data) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = CreationKey {
            parent: "_root",
            key: "items",
            kind: "list",
            generation: "0",
        };
        let b = CreationKey {
            parent: "_root",
            key: "items",
            kind: "text",
            generation: "0",
        };
        assert_eq!(a.id128(), a.id128());
        assert_ne!(a.id128(), b.id128());
        assert_ne!(a.id53(), b.id53());
        assert!(a.id53() < 1 << 53);
        // Length-prefixed parts: moving a character between parts changes the id.
        let c = CreationKey {
            parent: "_roo",
            key: "titems",
            kind: "list",
            generation: "0",
        };
        assert_ne!(a.id128(), c.id128());
    }
}

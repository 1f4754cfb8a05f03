//! One edit, one update: an edit of many steps (splices, puts, deletes) gives one update
//! that a replica integrates into the same document, for both kinds of document; a Yrs
//! edit of many keystrokes gives an update about the size of the text it typed; replicas
//! making random many-step Yrs edits converge.

use concord_core::{CrdtDoc, DocKind};
use serde_json::json;

/// A document with some text, a map and a list, and a replica loaded from its saved state.
fn pair(kind: DocKind) -> (CrdtDoc, CrdtDoc) {
    let mut doc = CrdtDoc::new(kind);
    doc.edit(|tx| {
        tx.insert_text("text", 0, "hello world")?;
        // Yrs keeps values in root types (here the root map `meta`); Automerge in the root map.
        match kind {
            DocKind::Automerge => tx.put("meta", json!({"title": "draft", "gone": 1}))?,
            DocKind::Yrs => {
                tx.put("meta/title", "draft")?;
                tx.put("meta/gone", 1)?
            }
        }
        tx.push("list", "a")
    })
    .unwrap();
    let replica = CrdtDoc::load(kind, &doc.save()).unwrap();
    (doc, replica)
}

#[test]
fn an_edit_of_many_steps_is_one_update_a_replica_integrates() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (mut doc, mut replica) = pair(kind);
        let ((), update) = doc
            .edit(|tx| {
                // Typed one character at a time, then partly deleted within the same edit.
                for (i, c) in "brave new ".chars().enumerate() {
                    tx.insert_text("text", 6 + i, &c.to_string())?;
                }
                tx.delete_text("text", 6, 6)?;
                tx.splice_text("text", 0, 5, "Hi 🌍")?;
                tx.delete_text("text", 0, 0)?;
                tx.put("meta/title", "final")?;
                // A nested map and list, created inside the edit, then written into.
                tx.put("meta/nested", json!({"k": [1, 2]}))?;
                tx.push("meta/nested/k", 3)?;
                tx.delete("meta/gone")?;
                tx.push("list", "b")?;
                tx.insert_text("text", 0, "¡")
            })
            .unwrap();
        let update = update.expect("the edit changed the document");
        let expected = json!({
            "text": "¡Hi 🌍 new world",
            "meta": {"title": "final", "nested": {"k": [1, 2, 3]}},
            "list": ["a", "b"],
        });
        assert_eq!(doc.to_json(), expected, "{kind}");
        replica.apply_update(&update).unwrap();
        assert_eq!(
            replica.to_json(),
            expected,
            "{kind}: the replica from the one update"
        );
        replica.apply_update(&update).unwrap();
        assert_eq!(replica.to_json(), expected, "{kind}: applied twice");
    }
}

#[test]
fn an_edit_that_changes_nothing_has_no_update() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (mut doc, _) = pair(kind);
        let (text, update) = doc.edit(|tx| tx.get("text")).unwrap();
        assert_eq!(text, Some(json!("hello world")), "{kind}");
        assert!(update.is_none(), "{kind}");
    }
}

#[test]
fn typing_many_characters_in_one_yrs_edit_gives_a_compact_update() {
    let (mut doc, mut replica) = pair(DocKind::Yrs);
    let typed: String = "the quick brown fox jumps over the lazy dog ".repeat(5);
    let ((), update) = doc
        .edit(|tx| {
            for (i, c) in typed.chars().enumerate() {
                tx.insert_text("text", 11 + i, &c.to_string())?;
            }
            // Typos fixed as they are made: deletions inside what this edit typed.
            tx.delete_text("text", 11, 4)?;
            tx.insert_text("text", 11, "A ")
        })
        .unwrap();
    let update = update.unwrap();
    // One transaction for the whole edit encodes each character as an item of its own
    // (2.8 KB for these 220 characters); committed step by step they are merged.
    assert!(
        update.len() < typed.len() + 100,
        "{} bytes for {} characters typed",
        update.len(),
        typed.len()
    );
    replica.apply_update(&update).unwrap();
    assert_eq!(replica.to_json(), doc.to_json());
    assert_eq!(
        doc.get("text").unwrap(),
        Some(json!(format!("hello worldA {}", &typed[4..])))
    );
}

/// A small xorshift generator: the same edits on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

/// One edit of 1 to 8 random steps on a Yrs document: splices (with an emoji), puts,
/// nested maps and lists created and written into, deletes.
fn random_edit(doc: &mut CrdtDoc, r: &mut Rng) -> Option<Vec<u8>> {
    let steps = 1 + r.below(8);
    doc.edit(|tx| {
        for _ in 0..steps {
            let len = tx
                .get("text")?
                .and_then(|v| v.as_str().map(|s| s.chars().count()))
                .unwrap_or(0) as u64;
            match r.below(8) {
                0 | 1 => {
                    let at = r.below(len + 1) as usize;
                    tx.insert_text("text", at, ["a", "bc", "🌍", "xyz"][r.below(4) as usize])?
                }
                2 if len > 0 => {
                    let at = r.below(len);
                    tx.delete_text("text", at as usize, 1 + r.below(len - at) as usize)?
                }
                3 => tx.put(&format!("meta/k{}", r.below(4)), json!(r.below(100)))?,
                4 => tx.put(
                    &format!("meta/n{}", r.below(3)),
                    json!({"a": {"b": [1, {"c": "x"}]}}),
                )?,
                5 => {
                    let at = format!("meta/n{}", r.below(3));
                    if tx.get(&at)?.is_some() {
                        tx.push(&format!("{at}/a/b"), json!(r.below(9)))?
                    }
                }
                6 => {
                    let at = format!("meta/n{}", r.below(3));
                    if tx.get(&at)?.is_some() {
                        tx.delete(&at)?
                    }
                }
                _ => tx.push("list", json!(r.below(50)))?,
            }
        }
        Ok(())
    })
    .unwrap()
    .1
}

/// Three replicas make many-step edits; each receives the others' updates in the order
/// their author made them (as the relay delivers them), authors interleaved at random and
/// delivery lagging at random. All converge, and so does a replica built from the updates
/// alone.
#[test]
fn many_step_yrs_edits_from_three_replicas_converge() {
    for seed in 1..150u64 {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut base = CrdtDoc::new(DocKind::Yrs);
        base.edit(|tx| {
            tx.insert_text("text", 0, "seed")?;
            tx.push("list", 0)
        })
        .unwrap();
        let saved = base.save();
        let mut docs: Vec<CrdtDoc> = (0..3)
            .map(|_| CrdtDoc::load(DocKind::Yrs, &saved).unwrap())
            .collect();
        let mut log: Vec<(usize, Vec<u8>)> = Vec::new();
        // How many of each author's updates each replica has applied.
        let mut applied = [[0usize; 3]; 3];
        let deliver = |docs: &mut Vec<CrdtDoc>,
                       applied: &mut [[usize; 3]; 3],
                       log: &[(usize, Vec<u8>)],
                       r: &mut Rng,
                       all: bool| {
            for (to, doc) in docs.iter_mut().enumerate() {
                for from in (0..3).filter(|&f| f != to) {
                    let theirs: Vec<&Vec<u8>> = log
                        .iter()
                        .filter(|(w, _)| *w == from)
                        .map(|(_, u)| u)
                        .collect();
                    let upto = if all {
                        theirs.len()
                    } else {
                        applied[to][from]
                            + r.below((theirs.len() - applied[to][from]) as u64 + 1) as usize
                    };
                    for update in &theirs[applied[to][from]..upto] {
                        doc.apply_update(update).unwrap();
                    }
                    applied[to][from] = upto;
                }
            }
        };
        for _ in 0..20 {
            let who = r.below(3) as usize;
            if let Some(update) = random_edit(&mut docs[who], &mut r) {
                log.push((who, update));
            }
            deliver(&mut docs, &mut applied, &log, &mut r, false);
        }
        deliver(&mut docs, &mut applied, &log, &mut r, true);
        let expected = docs[0].to_json();
        for (i, doc) in docs.iter_mut().enumerate() {
            assert!(
                !doc.has_pending(),
                "seed {seed}: replica {i} holds pending updates"
            );
            assert_eq!(doc.to_json(), expected, "seed {seed}: replica {i}");
        }
        let mut fresh = CrdtDoc::load(DocKind::Yrs, &saved).unwrap();
        for (_, update) in &log {
            fresh.apply_update(update).unwrap();
        }
        assert_eq!(
            fresh.to_json(),
            expected,
            "seed {seed}: from the updates alone"
        );
    }
}

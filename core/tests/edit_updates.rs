//! One edit, one update: an edit of many steps (splices, puts, deletes) gives one update
//! that a replica integrates into the same document, for both kinds of document; a Yrs
//! edit of many keystrokes gives an update about the size of the text it typed.

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

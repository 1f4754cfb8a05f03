//! Text positions that fall inside a character are refused, never stored as broken text.
//!
//! Automerge counts Unicode code points, so every position is between two code points;
//! Yrs counts UTF-16 code units (as Yjs), so a position can fall between the two halves of
//! a surrogate pair (an emoji): such an edit is refused with a clear error.

use concord_core::{DocKind, Error, Store};
use serde_json::json;

fn store_with(kind: DocKind, text: &str) -> (Store, &'static str) {
    let s = Store::open_in_memory().unwrap();
    s.create_doc("d", kind).unwrap();
    let path = "t";
    s.transact("d", |tx| tx.insert_text(path, 0, text)).unwrap();
    (s, path)
}

#[test]
fn yrs_refuses_a_position_inside_an_emoji() {
    let (s, t) = store_with(DocKind::Yrs, "a👋b");
    // "a" is unit 0, the emoji units 1..3, "b" unit 3.
    for (index, delete) in [(2, 0), (1, 1), (2, 1), (0, 2)] {
        let err = s
            .transact("d", |tx| tx.splice_text(t, index, delete, "X"))
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidPath { reason, .. } if reason.contains("inside the character")),
            "{index},{delete}: {err}"
        );
    }
    assert_eq!(
        s.get("d", t).unwrap(),
        Some(json!("a👋b")),
        "nothing stored"
    );
    assert_eq!(s.pending("d").unwrap(), 1);
    // Positions on character boundaries work.
    s.transact("d", |tx| tx.insert_text(t, 3, "X")).unwrap();
    s.transact("d", |tx| tx.insert_text(t, 1, "Y")).unwrap();
    s.transact("d", |tx| tx.delete_text(t, 2, 2)).unwrap();
    assert_eq!(s.get("d", t).unwrap(), Some(json!("aYXb")));
}

#[test]
fn automerge_positions_count_code_points_so_emoji_stay_whole() {
    let (s, t) = store_with(DocKind::Automerge, "a👋b");
    s.transact("d", |tx| tx.insert_text(t, 2, "X")).unwrap();
    assert_eq!(s.get("d", t).unwrap(), Some(json!("a👋Xb")));
    s.transact("d", |tx| tx.delete_text(t, 1, 1)).unwrap();
    assert_eq!(s.get("d", t).unwrap(), Some(json!("aXb")));
}

#[test]
fn combining_marks_are_characters_of_their_own_on_both_kinds() {
    // "e" + COMBINING ACUTE ACCENT: two code points, two UTF-16 units.
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (s, t) = store_with(kind, "e\u{301}x");
        s.transact("d", |tx| tx.insert_text(t, 2, "!")).unwrap();
        assert_eq!(s.get("d", t).unwrap(), Some(json!("e\u{301}!x")), "{kind}");
        s.transact("d", |tx| tx.delete_text(t, 1, 1)).unwrap();
        assert_eq!(s.get("d", t).unwrap(), Some(json!("e!x")), "{kind}");
    }
}

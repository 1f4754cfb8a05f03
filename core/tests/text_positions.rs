//! Text positions that fall inside a character are refused, never stored as broken text.
//!
//! Positions count Unicode scalar values by default (both kinds), so every position is
//! between two characters; with `TextUnit::Utf16` (as Yjs and JavaScript) a position can
//! fall between the two halves of a surrogate pair (an emoji): such an edit is refused
//! with a clear error.

use concord_core::{DocKind, Error, Store, StoreOptions, TextUnit};
use serde_json::json;

fn store_with(kind: DocKind, text: &str) -> (Store, &'static str) {
    store_in(kind, text, TextUnit::default())
}

fn store_in(kind: DocKind, text: &str, text_unit: TextUnit) -> (Store, &'static str) {
    let s = Store::open_in_memory_with(StoreOptions {
        text_unit,
        ..Default::default()
    })
    .unwrap();
    s.create_doc("d", kind).unwrap();
    let path = "t";
    s.transact("d", |tx| tx.insert_text(path, 0, text)).unwrap();
    (s, path)
}

#[test]
fn utf16_positions_inside_an_emoji_are_refused_on_both_kinds() {
    for kind in [DocKind::Yrs, DocKind::Automerge] {
        let (s, t) = store_in(kind, "a👋b", TextUnit::Utf16);
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
}

#[test]
fn default_positions_count_scalar_values_so_emoji_stay_whole_on_both_kinds() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (s, t) = store_with(kind, "a👋b");
        s.transact("d", |tx| tx.insert_text(t, 2, "X")).unwrap();
        assert_eq!(s.get("d", t).unwrap(), Some(json!("a👋Xb")), "{kind}");
        assert_eq!(s.text_len("d", t).unwrap(), 4, "{kind}");
        assert_eq!(s.text_slice("d", t, 1, 3).unwrap(), "👋X", "{kind}");
        s.transact("d", |tx| tx.delete_text(t, 1, 1)).unwrap();
        assert_eq!(s.get("d", t).unwrap(), Some(json!("aXb")), "{kind}");
        let err = s.transact("d", |tx| tx.insert_text(t, 4, "!")).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{kind}: {err}");
    }
}

#[test]
fn both_units_count_the_same_on_both_kinds_with_emoji_and_combining_marks() {
    // "a", WAVING HAND (astral: 2 UTF-16 units), "e" + COMBINING ACUTE, "b".
    let text = "a👋e\u{301}b";
    for unit in [TextUnit::UnicodeScalar, TextUnit::Utf16] {
        let after_emoji = if unit == TextUnit::Utf16 { 3 } else { 2 };
        let mut results = Vec::new();
        for kind in [DocKind::Automerge, DocKind::Yrs] {
            let (s, t) = store_in(kind, text, unit);
            let len = s.text_len("d", t).unwrap();
            assert_eq!(
                len,
                if unit == TextUnit::Utf16 { 6 } else { 5 },
                "{kind} {unit:?}"
            );
            s.transact("d", |tx| tx.insert_text(t, after_emoji, "|"))
                .unwrap();
            // Delete the combining mark alone (it follows the "e").
            s.transact("d", |tx| tx.delete_text(t, after_emoji + 2, 1))
                .unwrap();
            let slice = s.text_slice("d", t, 0, after_emoji + 1).unwrap();
            assert_eq!(slice, "a👋|", "{kind} {unit:?}");
            assert!(s.text_slice("d", t, 2, 1).is_err(), "reversed range");
            assert!(s.text_slice("d", t, 0, len + 5).is_err(), "past the end");
            results.push(s.get("d", t).unwrap());
        }
        assert_eq!(results[0], Some(json!("a👋|eb")), "{unit:?}");
        assert_eq!(results[0], results[1], "{unit:?}: both kinds agree");
    }
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

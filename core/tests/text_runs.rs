//! Many text splices in one edit (typing, a batch of trace transactions): every splice
//! lands where a plain string model says, range checks see the text as the edit left it,
//! and a text replaced or deleted inside the edit is not written to afterwards (a nested
//! text: Yrs roots cannot be replaced). Both kinds, both text units, with emoji and
//! combining marks.

use concord_core::{DocKind, Error, Store, StoreOptions, TextUnit};
use serde_json::json;

const PIECES: [&str; 6] = ["a", "bc", "👋", "e\u{301}", "🇫🇷x", "z"];

fn store(kind: DocKind, text_unit: TextUnit) -> Store {
    let s = Store::open_in_memory_with(StoreOptions {
        text_unit,
        ..Default::default()
    })
    .unwrap();
    s.create_doc("d", kind).unwrap();
    s
}

/// A store whose document has a map `m` (a Yrs root map exists once named; an Automerge
/// one is put).
fn store_with_map(kind: DocKind) -> Store {
    let s = store(kind, TextUnit::default());
    if kind == DocKind::Automerge {
        s.transact("d", |tx| tx.put("m", json!({}))).unwrap();
    }
    s
}

/// The text as a list of characters, positions counted in `unit`.
struct Model {
    chars: Vec<char>,
    unit: TextUnit,
}

impl Model {
    fn len(&self) -> usize {
        self.chars.iter().map(|c| self.unit.width(*c)).sum()
    }

    /// The position in `unit` of character number `i`.
    fn pos(&self, i: usize) -> usize {
        self.chars[..i].iter().map(|c| self.unit.width(*c)).sum()
    }

    /// Splices at character `at`, deleting `del` characters: the store's (index, delete).
    fn splice(&mut self, at: usize, del: usize, text: &str) -> (usize, usize) {
        let index = self.pos(at);
        let delete = self.pos(at + del) - index;
        self.chars.splice(at..at + del, text.chars());
        (index, delete)
    }

    fn string(&self) -> String {
        self.chars.iter().collect()
    }
}

/// A fixed pseudo-random sequence (the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn hundreds_of_splices_in_one_edit_match_a_string_model() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        for unit in [TextUnit::UnicodeScalar, TextUnit::Utf16] {
            let s = store(kind, unit);
            let mut model = Model {
                chars: vec![],
                unit,
            };
            let mut rng = Lcg(7);
            for edit in 0..4 {
                s.transact("d", |tx| {
                    for _ in 0..150 {
                        let n = model.chars.len();
                        let at = rng.below(n + 1);
                        let del = if n > at && rng.below(3) == 0 {
                            1 + rng.below((n - at).min(3))
                        } else {
                            0
                        };
                        let text = if del > 0 && rng.below(2) == 0 {
                            ""
                        } else {
                            PIECES[rng.below(PIECES.len())]
                        };
                        let (index, delete) = model.splice(at, del, text);
                        tx.splice_text("t", index, delete, text)?;
                        // A second text in between: the run moves from one text to another.
                        if rng.below(10) == 0 {
                            tx.insert_text("other", 0, "o")?;
                        }
                    }
                    // One past the end is refused with the length the edit left.
                    let len = model.len();
                    let err = tx.insert_text("t", len + 1, "!").unwrap_err();
                    assert!(
                        matches!(&err, Error::InvalidPath { reason, .. } if reason.contains(&format!("length {len}"))),
                        "{kind} {unit:?} edit {edit}: {err}"
                    );
                    assert_eq!(tx.get("t")?, Some(json!(model.string())));
                    Ok(())
                })
                .unwrap();
                assert_eq!(
                    s.get("d", "t").unwrap(),
                    Some(json!(model.string())),
                    "{kind} {unit:?} after edit {edit}"
                );
                assert_eq!(s.text_len("d", "t").unwrap(), model.len());
            }
        }
    }
}

#[test]
fn a_text_replaced_inside_an_edit_is_not_spliced_into_afterwards() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let s = store_with_map(kind);
        s.transact("d", |tx| {
            tx.insert_text("m/t", 0, "abc")?;
            tx.insert_text("m/t", 3, "d")?;
            tx.put("m/t", "plain")?;
            let err = tx.insert_text("m/t", 1, "X").unwrap_err();
            assert!(
                matches!(&err, Error::InvalidPath { reason, .. } if reason.contains("not")),
                "{kind}: {err}"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(s.get("d", "m/t").unwrap(), Some(json!("plain")), "{kind}");
    }
}

#[test]
fn a_text_deleted_inside_an_edit_comes_back_new_on_the_next_splice() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let s = store_with_map(kind);
        s.transact("d", |tx| {
            tx.insert_text("m/t", 0, "abc")?;
            tx.delete_text("m/t", 0, 1)?;
            tx.delete("m/t")?;
            tx.insert_text("m/t", 0, "new")?;
            tx.insert_text("m/t", 3, "!")
        })
        .unwrap();
        assert_eq!(s.get("d", "m/t").unwrap(), Some(json!("new!")), "{kind}");
        // Out of range on the new text, not on the old one's length.
        let err = s
            .transact("d", |tx| {
                tx.insert_text("m/t", 0, "x")?;
                tx.delete("m/t")?;
                tx.insert_text("m/t", 2, "y")
            })
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidPath { reason, .. } if reason.contains("length 0")),
            "{kind}: {err}"
        );
        assert_eq!(s.get("d", "m/t").unwrap(), Some(json!("new!")), "{kind}");
    }
}

/// Writes that commit Automerge's open transaction (creating a counter, a policy, a map)
/// reset its operation count: a splice after them must still see what the writes between
/// did to the text, however many operations they made.
#[test]
fn a_splice_after_writes_that_create_containers_sees_the_text_as_they_left_it() {
    let s = store(DocKind::Automerge, TextUnit::default());
    // Deleted, then a counter created: the next splice makes a new text.
    s.transact("d", |tx| {
        tx.insert_text("t", 0, "a")?;
        tx.delete("t")?;
        tx.increment("c", 1)?;
        tx.insert_text("t", 0, "b")
    })
    .unwrap();
    assert_eq!(s.to_json("d").unwrap(), json!({"c": 1, "t": "b"}));

    // Replaced by a string, then a map created: the splice is refused.
    s.transact("d", |tx| {
        tx.insert_text("u", 0, "a")?;
        tx.put("u", "plain")?;
        tx.put("m", json!({}))?;
        tx.put("m/k", 1)?;
        let err = tx.insert_text("u", 0, "b").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidPath { reason, .. } if reason.contains("not")),
            "{err}"
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(s.get("d", "u").unwrap(), Some(json!("plain")));

    // Shortened through an index path, then a counter created: the range check sees the
    // shorter text.
    s.transact("d", |tx| tx.insert_text("v", 0, "xy")).unwrap();
    let err = s
        .transact("d", |tx| {
            tx.insert_text("v", 0, "a")?;
            tx.delete("v/0")?;
            tx.increment("c2", 1)?;
            tx.insert_text("v", 3, "b")
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPath { reason, .. } if reason.contains("length 2")),
        "{err}"
    );
    s.transact("d", |tx| {
        tx.insert_text("v", 0, "a")?;
        tx.delete("v/0")?;
        tx.increment("c2", 1)?;
        tx.insert_text("v", 2, "b")
    })
    .unwrap();
    assert_eq!(s.get("d", "v").unwrap(), Some(json!("xyb")));
}

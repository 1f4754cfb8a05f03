//! A run of text splices in one edit (typing, a batch of keystrokes) costs the heap about
//! what the same splices cost the raw library: parsing the path at every splice, cloning
//! it into the remembered text, and asking Yrs for two state vectors per step made
//! Concord's allocations 1.2x (Automerge) and 1.8x (Yrs) the library's, and the extra heap
//! traffic slowed the library's own walks over its items (BENCHMARKS.md §10).
//!
//! Counts allocations (not time) on this thread, inside the edit, against the raw library
//! doing the same splices the way an app on it alone would (Yrs: a transaction per
//! splice, as Concord's steps are; Automerge: one open transaction).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use concord_core::{CrdtDoc, DocKind, Reader};
use yrs::{OffsetKind, Options, Text, Transact};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slot may be gone while the thread exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

const START: &str = "The quick brown fox jumps over the lazy dog. ";
const SPLICES: usize = 300;

/// Typing with corrections: (index, delete, insert) into a text that starts as [`START`].
fn splices() -> Vec<(usize, usize, &'static str)> {
    let mut len = START.len();
    let mut at = 10;
    (0..SPLICES)
        .map(|i| {
            let step = if i % 7 == 6 {
                at -= 1;
                len -= 1;
                (at, 1, "")
            } else {
                let s = (at, 0, ["a", "b", "c", " "][i % 4]);
                at += 1;
                len += 1;
                s
            };
            assert!(at <= len);
            step
        })
        .collect()
}

/// Allocations of the splices inside one Concord edit (not the edit's start and end).
fn concord(kind: DocKind) -> usize {
    let reader = Reader::default();
    let mut doc = CrdtDoc::new(kind);
    doc.edit_with(&reader, |tx| tx.insert_text("text", 0, START))
        .unwrap();
    let mut inside = 0;
    doc.edit_with(&reader, |tx| {
        let before = allocations();
        for (index, delete, text) in splices() {
            tx.splice_text("text", index, delete, text)?;
        }
        inside = allocations() - before;
        Ok(())
    })
    .unwrap();
    inside
}

fn raw_yrs() -> usize {
    let doc = yrs::Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    let text = doc.get_or_insert_text("text");
    text.insert(&mut doc.transact_mut(), 0, START);
    let splices = splices();
    let before = allocations();
    for (index, delete, insert) in splices {
        let mut txn = doc.transact_mut();
        if delete > 0 {
            text.remove_range(&mut txn, index as u32, delete as u32);
        }
        if !insert.is_empty() {
            text.insert(&mut txn, index as u32, insert);
        }
    }
    allocations() - before
}

fn raw_automerge() -> usize {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, START).unwrap();
    doc.commit();
    let splices = splices();
    let before = allocations();
    for (index, delete, insert) in splices {
        doc.splice_text(&text, index, delete as isize, insert)
            .unwrap();
    }
    allocations() - before
}

/// Within a tenth of the library's own count (plus a few for the first splice, which
/// looks the text up).
fn assert_close(what: &str, concord: usize, raw: usize) {
    eprintln!("{what}: concord {concord}, raw {raw}");
    assert!(
        concord <= raw + raw / 10 + 16,
        "{what}: {SPLICES} splices in one edit allocated {concord} times ({:.1} per splice); \
         the raw library {raw} ({:.1} per splice)",
        concord as f64 / SPLICES as f64,
        raw as f64 / SPLICES as f64,
    );
}

#[test]
fn splices_in_one_edit_allocate_about_what_the_library_does() {
    assert_close("yrs", concord(DocKind::Yrs), raw_yrs());
    assert_close("automerge", concord(DocKind::Automerge), raw_automerge());
}

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
struct Counting;
static N: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        N.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, s: usize) -> *mut u8 {
        N.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, s) }
    }
}
#[global_allocator]
static A: Counting = Counting;
fn n() -> usize {
    N.load(Ordering::Relaxed)
}
use concord_core::{DocKind, Store};
fn main() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [DocKind::Yrs, DocKind::Automerge] {
        let store = Store::open(dir.path().join(format!("{kind}.db"))).unwrap();
        store.create_doc("d", kind).unwrap();
        store
            .transact("d", |tx| tx.insert_text("text", 0, "hello world"))
            .unwrap();
        for _ in 0..10 {
            store
                .transact("d", |tx| tx.insert_text("text", 5, "x"))
                .unwrap();
        }
        let before = n();
        let mut inside = 0;
        for _ in 0..100 {
            store
                .transact("d", |tx| {
                    let b = n();
                    tx.insert_text("text", 5, "x")?;
                    inside += n() - b;
                    Ok(())
                })
                .unwrap();
        }
        println!(
            "{kind}: per commit {} allocations, {} inside the closure",
            (n() - before) / 100,
            inside / 100
        );
    }
}

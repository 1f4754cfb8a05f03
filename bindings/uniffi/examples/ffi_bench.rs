//! The Rust side of the FFI benchmark (BENCHMARKS.md): the calls the Kotlin and Python
//! benchmarks make, made on concord-core directly. `cargo run --release -p concord-uniffi
//! --example ffi_bench -- DIR`.

use std::time::Instant;

use concord_core::{DocKind, Store};

fn main() -> Result<(), concord_core::Error> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let store = Store::open(format!("{dir}/rust-bench.db"))?;
    store.create_doc("bench", DocKind::Automerge)?;
    let text: String = "x".repeat(1000);

    let n = 300;
    let start = Instant::now();
    for i in 0..n {
        store.transact("bench", |tx| tx.put("key", i))?;
    }
    report("one-key put", start, n);

    let n = 100;
    let start = Instant::now();
    for _ in 0..n {
        store.transact("bench", |tx| tx.insert_text("body", 0, &text))?;
    }
    report("1,000-character text insert", start, n);

    let n = 20;
    let start = Instant::now();
    for _ in 0..n {
        store.transact("bench", |tx| {
            (0..1000).try_for_each(|i| tx.put(&format!("k{i}"), i))
        })?;
    }
    report("1,000-edit transaction", start, n);
    Ok(())
}

fn report(what: &str, start: Instant, n: u32) {
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("rust    {what:<30} {us:>10.1} µs/call  ({n} calls)");
}

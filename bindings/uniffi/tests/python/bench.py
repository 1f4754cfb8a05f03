"""The Python side of the FFI benchmark (BENCHMARKS.md): the calls of examples/ffi_bench.rs
through the wheel. Run by bindings/uniffi/scripts/bench.sh."""

import os
import sys
import time

from concord import DocumentKind, Store, Value


def report(what, start, n):
    us = (time.perf_counter() - start) * 1e6 / n
    print(f"python  {what:<30} {us:>10.1f} µs/call  ({n} calls)")


store = Store.open(os.path.join(sys.argv[1], "python-bench.db"))
doc = store.create_document("bench", DocumentKind.AUTOMERGE)
text = "x" * 1000

n = 300
start = time.perf_counter()
for i in range(n):
    doc.put("key", Value.INT(i))
report("one-key put", start, n)

n = 100
start = time.perf_counter()
for _ in range(n):
    doc.insert_text("body", 0, text)
report("1,000-character text insert", start, n)

n = 20
start = time.perf_counter()
for _ in range(n):
    tx = doc.transaction()
    for i in range(1000):
        tx.put(f"k{i}", Value.INT(i))
    tx.commit()
report("1,000-edit transaction", start, n)

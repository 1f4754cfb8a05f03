// The Kotlin side of the FFI benchmark (BENCHMARKS.md): the calls of examples/ffi_bench.rs
// through the generated bindings. Run by bindings/uniffi/scripts/bench.sh.
import dev.concord.*
import java.io.File

fun report(what: String, start: Long, n: Int) {
    val us = (System.nanoTime() - start) / 1000.0 / n
    println("kotlin  %-30s %10.1f µs/call  (%d calls)".format(what, us, n))
}

fun main() {
    val dir = System.getenv("CONCORD_TMP") ?: error("CONCORD_TMP is not set")
    val store = Store.open(File(dir, "kotlin-bench.db").path)
    val doc = store.createDocument("bench", DocumentKind.AUTOMERGE)
    val text = "x".repeat(1000)
    repeat(20) { doc.put("warm", Value.Int(it.toLong())) } // JIT warm-up
    var n = 300
    var start = System.nanoTime()
    for (i in 0 until n) doc.put("key", Value.Int(i.toLong()))
    report("one-key put", start, n)
    n = 100
    start = System.nanoTime()
    repeat(n) { doc.insertText("body", 0, text) }
    report("1,000-character text insert", start, n)
    n = 20
    start = System.nanoTime()
    repeat(n) {
        val tx = doc.transaction()
        for (i in 0 until 1000) tx.put("k$i", Value.Int(i.toLong()))
        tx.commit()
    }
    report("1,000-edit transaction", start, n)
}

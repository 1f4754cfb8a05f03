// The Kotlin suite: two Kotlin devices against a real concord-server (CONCORD_URL, with
// tokens signed for CONCORD_TOKEN), on a real JVM through JNA. Run by
// bindings/uniffi/scripts/test-kotlin.sh; exits non-zero when a check fails.
import dev.concord.*
import java.io.File
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlinx.coroutines.runBlocking

val url: String = System.getenv("CONCORD_URL") ?: error("CONCORD_URL is not set")
val token: String = System.getenv("CONCORD_TOKEN") ?: error("CONCORD_TOKEN is not set")
val dir: File = File(System.getenv("CONCORD_TMP") ?: error("CONCORD_TMP is not set"))
val run = System.nanoTime().toString(36)

fun check(ok: Boolean, what: () -> String) { if (!ok) throw AssertionError(what()) }

/** Polls `cond` every 50 ms, at most 400 times (20 s). */
fun eventually(what: String, cond: () -> Boolean) {
    repeat(400) { if (cond()) return; Thread.sleep(50) }
    throw AssertionError("timed out waiting for: $what")
}

inline fun <reified E : Throwable> assertThrows(block: () -> Unit): E {
    try { block() } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

fun device(name: String, merges: Map<String, MergeFunction> = emptyMap()): Store =
    Store.openWithMergeFunctions(File(dir, "$name-$run.db").path, merges)

fun text(v: Value?): String? = (v as? Value.Text)?.value

/** Keeps the longest text (ties: the greater one), so every device picks the same. */
class Longest(val calls: AtomicInteger) : MergeFunction {
    override fun merge(path: String, values: List<ConcurrentValue>): Value {
        calls.incrementAndGet()
        return values.map { it.value }.maxWith(compareBy<Value>({ text(it)?.length ?: -1 }, { text(it) ?: "" }))
    }
}

fun twoDevicesConvergeOfflineThenOnline() {
    val a = device("a"); val b = device("b")
    val id = "kt-notes-$run"
    // Offline: both create the same document and edit it.
    val da = a.createDocument(id, DocumentKind.AUTOMERGE)
    val db = b.createDocument(id, DocumentKind.AUTOMERGE)
    da.put("title", Value.Text("Groceries"))
    da.insertText("note", 0, "milk")
    da.increment("visits", 1)
    db.push("items", Value.Text("bread"))
    db.increment("visits", 2)
    check(a.status().single { it.id == id }.pending == 3uL) { "a has 3 pending updates" }
    // Online.
    a.startSync(listOf(url), token, null)
    b.startSync(listOf(url), token, null)
    eventually("both devices show the same document") {
        da.toJson() == db.toJson() && db.get("visits") == Value.Int(3)
    }
    check(db.get("title") == Value.Text("Groceries")) { "b sees a's title" }
    check(da.get("items") == Value.Array(listOf(Value.Text("bread")))) { "a sees b's list" }
    eventually("acknowledged") { a.status().single { it.id == id }.pending == 0uL }
    a.stopSync(); b.stopSync()
}

fun listenerSeesRemoteChanges() {
    val a = device("la"); val b = device("lb")
    val id = "kt-live-$run"
    val remote = CountDownLatch(1)
    val threads = Collections.synchronizedSet(mutableSetOf<String>())
    val states = Collections.synchronizedList(mutableListOf<SyncState>())
    a.createDocument(id, DocumentKind.YRS).put("meta/title", Value.Text("draft"))
    a.startSync(listOf(url), token, null)
    // The relay has the document before b connects (b lists the relay's documents then).
    eventually("a's document is acknowledged") { a.syncState().pending[id] == 0uL }
    b.startSync(listOf(url), token, object : SyncStateListener {
        override fun onState(state: SyncState) { states.add(state) }
    })
    eventually("b receives the document") { b.listDocuments().any { it.id == id } }
    val sub = b.document(id).subscribe(object : ChangeListener {
        override fun onChange(event: ChangeEvent) {
            threads.add(Thread.currentThread().name)
            if (event.source == ChangeSource.REMOTE && event.documentId == id) remote.countDown()
        }
    })
    a.document(id).insertText("log", 0, "day one")
    check(remote.await(20, TimeUnit.SECONDS)) { "b's listener heard a's edit" }
    eventually("b reads a's text") { b.document(id).get("log") == Value.Text("day one") }
    check(Thread.currentThread().name !in threads) { "listeners run on a background thread" }
    check(states.any { it.connected }) { "the sync state listener saw the connection: $states" }
    sub.cancel()
    a.stopSync(); b.stopSync()
    check(!b.syncState().running) { "stopSync stops" }
}

fun mergeFunctionResolvesConflict() {
    val calls = AtomicInteger()
    val a = device("ma", mapOf("longest" to Longest(calls)))
    val b = device("mb", mapOf("longest" to Longest(calls)))
    val id = "kt-merge-$run"
    val da = a.createDocument(id, DocumentKind.AUTOMERGE)
    da.setPolicy("title", Policy.Merge("longest"))
    runBlocking { a.syncOnce(listOf(url), token, 20_000u); b.syncOnce(listOf(url), token, 20_000u) }
    val db = b.document(id)
    // Concurrent writes while apart.
    da.put("title", Value.Text("short"))
    db.put("title", Value.Text("a much longer title"))
    runBlocking {
        a.syncOnce(listOf(url), token, 20_000u); b.syncOnce(listOf(url), token, 20_000u)
        a.syncOnce(listOf(url), token, 20_000u)
    }
    check(da.get("title") == Value.Text("a much longer title")) { "a: ${da.get("title")}" }
    check(db.get("title") == Value.Text("a much longer title")) { "b: ${db.get("title")}" }
    check(calls.get() > 0) { "the Kotlin merge function was called" }
    val all = da.getAll("title")
    check(all.size == 2 && all.all { it.hlc != null }) { "getAll shows both values: $all" }
    da.resolve("title", Value.Text("agreed"))
    check(da.getAll("title").size == 1 && da.get("title") == Value.Text("agreed")) { "resolved" }
}

fun badInputRaisesTypedExceptions() {
    val s = device("bad")
    assertThrows<ConcordException.NotFound> { s.document("nope-$run") }
    val doc = s.createDocument("kt-bad-$run", DocumentKind.YRS)
    assertThrows<ConcordException.AlreadyExists> { s.createDocument("kt-bad-$run", DocumentKind.YRS) }
    assertThrows<ConcordException.BadPath> { doc.put("a//b", Value.Int(1)) }
    assertThrows<ConcordException.WrongKind> { doc.increment("meta/n", 1) }
    assertThrows<ConcordException.InvalidValue> { doc.putJson("meta/x", "{not json") }
    assertThrows<ConcordException.InvalidValue> { doc.insertText("log", -1, "x") }
    assertThrows<ConcordException.InvalidValue> { s.createDocument("has space", DocumentKind.AUTOMERGE) }
    assertThrows<ConcordException.InvalidValue> { s.startSync(listOf("http://example"), null, null) }
    val refused = assertThrows<ConcordException.SyncRefused> {
        runBlocking { s.syncOnce(listOf(url), "not-a-token", 20_000u) }
    }
    check(refused.code == "unauthorized") { "refused with ${refused.code}" }
    // A failed transaction stores nothing.
    val tx = doc.transaction()
    tx.put("meta/ok", Value.Bool(true))
    tx.increment("meta/n", 1)
    assertThrows<ConcordException.WrongKind> { tx.commit() }
    check(doc.get("meta/ok") == null) { "nothing of a failed transaction is stored" }
}

fun panicBecomesTypedError() {
    val thrower = object : MergeFunction {
        override fun merge(path: String, values: List<ConcurrentValue>): Value = throw IllegalStateException("boom")
    }
    val a = device("pa", mapOf("boom" to thrower))
    val b = device("pb")
    val id = "kt-panic-$run"
    val da = a.createDocument(id, DocumentKind.AUTOMERGE)
    da.setPolicy("k", Policy.Merge("boom"))
    val db = b.createDocument(id, DocumentKind.AUTOMERGE)
    db.setPolicy("k", Policy.Merge("boom"))
    da.put("k", Value.Int(1)); db.put("k", Value.Int(2))
    runBlocking { b.syncOnce(listOf(url), token, 20_000u); a.syncOnce(listOf(url), token, 20_000u) }
    val e = assertThrows<ConcordException.Panic> { da.get("k") }
    check(e.detail.isNotEmpty()) { "the panic says what happened" }
    da.put("other", Value.Text("still works"))
    check(da.get("other") == Value.Text("still works")) { "the store survives the panic" }
}

fun transactionsAndThreads() {
    val s = device("tx")
    val doc = s.createDocument("kt-tx-$run", DocumentKind.AUTOMERGE)
    val tx = doc.transaction()
    repeat(100) { tx.push("items", Value.Int(it.toLong())) }
    tx.insertText("body", 0, "hello")
    tx.commit()
    check(s.status().single().pending == 1uL) { "one transaction is one update" }
    val workers = (0 until 4).map { t ->
        thread { repeat(25) { i -> doc.put("k$t-$i", Value.Int(i.toLong())) } }
    }
    workers.forEach { it.join(30_000) }
    check(s.status().single().pending == 101uL) { "every thread's edits committed" }
    check((doc.get("items") as Value.Array).items.size == 100) { "items" }
    check(doc.getJson("body") == "\"hello\"") { "json" }
}

fun main() {
    val tests = listOf(
        "two devices converge offline then online" to ::twoDevicesConvergeOfflineThenOnline,
        "a listener sees remote changes" to ::listenerSeesRemoteChanges,
        "a Kotlin merge function resolves a conflict" to ::mergeFunctionResolvesConflict,
        "bad input raises typed exceptions" to ::badInputRaisesTypedExceptions,
        "a Rust panic becomes a typed error" to ::panicBecomesTypedError,
        "transactions and threads" to ::transactionsAndThreads,
    )
    var failed = 0
    for ((name, test) in tests) {
        try { test(); println("ok   $name") } catch (e: Throwable) {
            failed++; println("FAIL $name: $e"); e.printStackTrace()
        }
    }
    println("${tests.size - failed} passed, $failed failed")
    kotlin.system.exitProcess(if (failed == 0) 0 else 1)
}

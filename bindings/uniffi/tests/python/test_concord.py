"""The Python suite: the wheel built by maturin, against a real concord-server (CONCORD_URL,
tokens signed for CONCORD_TOKEN). Run by bindings/uniffi/scripts/test-python.sh."""

import asyncio
import os
import threading
import time
import uuid

import pytest

from concord import (
    ChangeListener,
    ChangeSource,
    ConcordError,
    DocumentKind,
    MergeFunction,
    Policy,
    Store,
    SyncStateListener,
    Value,
)

URL = os.environ["CONCORD_URL"]
TOKEN = os.environ["CONCORD_TOKEN"]
RUN = uuid.uuid4().hex[:8]


def eventually(what, cond, tries=400, pause=0.05):
    """Polls cond every 50 ms, at most 400 times (20 s)."""
    for _ in range(tries):
        if cond():
            return
        time.sleep(pause)
    raise AssertionError(f"timed out waiting for: {what}")


def sync_once(*stores):
    for s in stores:
        asyncio.run(s.sync_once([URL], TOKEN, 20_000))


@pytest.fixture
def device(tmp_path):
    def open_device(name, merges=None):
        return Store.open_with_merge_functions(str(tmp_path / f"{name}.db"), merges or {})

    return open_device


def text(v):
    return v.value if isinstance(v, Value.TEXT) else None


class Longest(MergeFunction):
    """Keeps the longest text (ties: the greater one), so every device picks the same."""

    def __init__(self):
        self.calls = 0

    def merge(self, path, values):
        self.calls += 1
        return max((c.value for c in values), key=lambda v: (len(text(v) or ""), text(v) or ""))


def test_two_devices_converge_offline_then_online(device):
    a, b = device("a"), device("b")
    doc_id = f"py-notes-{RUN}"
    da = a.create_document(doc_id, DocumentKind.AUTOMERGE)
    db = b.create_document(doc_id, DocumentKind.AUTOMERGE)
    da.put("title", Value.TEXT("Groceries"))
    da.insert_text("note", 0, "milk")
    da.increment("visits", 1)
    db.push("items", Value.TEXT("bread"))
    db.increment("visits", 2)
    assert [s.pending for s in a.status() if s.id == doc_id] == [3]
    a.start_sync([URL], TOKEN, None)
    b.start_sync([URL], TOKEN, None)
    eventually("both show the same document",
               lambda: da.to_json() == db.to_json() and db.get("visits") == Value.INT(3))
    assert db.get("title") == Value.TEXT("Groceries")
    assert da.get("items") == Value.ARRAY([Value.TEXT("bread")])
    eventually("acknowledged", lambda: a.sync_state().pending.get(doc_id) == 0)
    a.stop_sync()
    b.stop_sync()


def test_a_listener_sees_remote_changes(device):
    a, b = device("la"), device("lb")
    doc_id = f"py-live-{RUN}"
    remote = threading.Event()
    threads, states = set(), []

    class Listener(ChangeListener):
        def on_change(self, event):
            threads.add(threading.current_thread().ident)
            if event.source == ChangeSource.REMOTE and event.document_id == doc_id:
                remote.set()

    class States(SyncStateListener):
        def on_state(self, state):
            states.append(state)

    a.create_document(doc_id, DocumentKind.YRS).put("meta/title", Value.TEXT("draft"))
    a.start_sync([URL], TOKEN, None)
    eventually("a's document is acknowledged", lambda: a.sync_state().pending.get(doc_id) == 0)
    b.start_sync([URL], TOKEN, States())
    eventually("b receives the document", lambda: any(d.id == doc_id for d in b.list_documents()))
    sub = b.document(doc_id).subscribe(Listener())
    a.document(doc_id).insert_text("log", 0, "day one")
    assert remote.wait(20), "b's listener heard a's edit"
    eventually("b reads a's text", lambda: b.document(doc_id).get("log") == Value.TEXT("day one"))
    assert threading.get_ident() not in threads, "listeners run on a background thread"
    assert any(s.connected for s in states), states
    sub.cancel()
    a.stop_sync()
    b.stop_sync()
    assert not b.sync_state().running


def test_a_python_merge_function_resolves_a_conflict(device):
    fa, fb = Longest(), Longest()
    a, b = device("ma", {"longest": fa}), device("mb", {"longest": fb})
    doc_id = f"py-merge-{RUN}"
    da = a.create_document(doc_id, DocumentKind.AUTOMERGE)
    da.set_policy("title", Policy.MERGE("longest"))
    sync_once(a, b)
    db = b.document(doc_id)
    da.put("title", Value.TEXT("short"))
    db.put("title", Value.TEXT("a much longer title"))
    sync_once(a, b, a)
    assert da.get("title") == Value.TEXT("a much longer title")
    assert db.get("title") == Value.TEXT("a much longer title")
    assert fa.calls > 0 and fb.calls > 0
    every = da.get_all("title")
    assert len(every) == 2 and all(v.hlc is not None for v in every)
    da.resolve("title", Value.TEXT("agreed"))
    assert da.get("title") == Value.TEXT("agreed") and len(da.get_all("title")) == 1


def test_bad_input_raises_typed_exceptions(device):
    s = device("bad")
    with pytest.raises(ConcordError.NotFound):
        s.document(f"nope-{RUN}")
    doc = s.create_document(f"py-bad-{RUN}", DocumentKind.YRS)
    with pytest.raises(ConcordError.AlreadyExists):
        s.create_document(f"py-bad-{RUN}", DocumentKind.YRS)
    with pytest.raises(ConcordError.BadPath):
        doc.put("a//b", Value.INT(1))
    with pytest.raises(ConcordError.WrongKind):
        doc.increment("meta/n", 1)
    with pytest.raises(ConcordError.InvalidValue):
        doc.put_json("meta/x", "{not json")
    with pytest.raises(ConcordError.InvalidValue):
        doc.insert_text("log", -1, "x")
    with pytest.raises(ConcordError.InvalidValue):
        s.create_document("has space", DocumentKind.AUTOMERGE)
    with pytest.raises(ConcordError.InvalidValue):
        s.start_sync(["http://example"], None, None)
    with pytest.raises(ConcordError.SyncRefused) as refused:
        asyncio.run(s.sync_once([URL], "not-a-token", 20_000))
    assert refused.value.code == "unauthorized"
    tx = doc.transaction()
    tx.put("meta/ok", Value.BOOL(True))
    tx.increment("meta/n", 1)
    with pytest.raises(ConcordError.WrongKind):
        tx.commit()
    assert doc.get("meta/ok") is None


def test_a_rust_panic_becomes_a_typed_error(device):
    class Boom(MergeFunction):
        def merge(self, path, values):
            raise RuntimeError("boom")

    a, b = device("pa", {"boom": Boom()}), device("pb")
    doc_id = f"py-panic-{RUN}"
    da = a.create_document(doc_id, DocumentKind.AUTOMERGE)
    da.set_policy("k", Policy.MERGE("boom"))
    db = b.create_document(doc_id, DocumentKind.AUTOMERGE)
    db.set_policy("k", Policy.MERGE("boom"))
    da.put("k", Value.INT(1))
    db.put("k", Value.INT(2))
    sync_once(b, a)
    with pytest.raises(ConcordError.Panic) as e:
        da.get("k")
    assert e.value.detail
    da.put("other", Value.TEXT("still works"))
    assert da.get("other") == Value.TEXT("still works")


def test_transactions_and_threads(device):
    s = device("tx")
    doc = s.create_document(f"py-tx-{RUN}", DocumentKind.AUTOMERGE)
    tx = doc.transaction()
    for i in range(100):
        tx.push("items", Value.INT(i))
    tx.insert_text("body", 0, "hello")
    tx.commit()
    assert s.status()[0].pending == 1

    def work(t):
        for i in range(25):
            doc.put(f"k{t}-{i}", Value.INT(i))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert s.status()[0].pending == 101
    assert len(doc.get("items").items) == 100
    assert doc.get_json("body") == '"hello"'

// Concord for the page: the store lives in a dedicated module Worker (worker.js, where
// OPFS is), and every call is a message to it. The API has the shape of the native
// bindings: open a store, documents, get/put/delete by path, text, list, counter, toJson,
// transaction, subscribe, status, startSync(urls, token), stopSync, policies, getAll,
// resolve.

export { carryPos, carryPosThrough, textDiff, textEdits } from "./text_diff.js";

let nextId = 1;

export class Store {
  /** Opens the store `name` (see index.d.ts). */
  static async open(name, options = {}) {
    const workerUrl = options.workerUrl ?? new URL("./worker.js", import.meta.url);
    const worker = new Worker(workerUrl, { type: "module" });
    const store = new Store(worker);
    const info = await store.#call("open", { name, mergeModule: options.mergeModule?.toString() });
    store.storage = info.storage;
    store.warning = info.warning;
    store.deviceId = info.deviceId;
    return store;
  }

  #worker;
  #pending = new Map();
  #listeners = new Map();
  #statusListeners = new Set();
  #presenceListeners = new Set();

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = ({ data }) => {
      if (data.event === "change") this.#listeners.get(data.key)?.({ docId: data.docId, source: data.source });
      else if (data.event === "sync") for (const l of this.#statusListeners) l(data.status);
      else if (data.event === "presence") for (const l of this.#presenceListeners) l(data.presence);
      else {
        const p = this.#pending.get(data.id);
        this.#pending.delete(data.id);
        if (!p) return;
        if ("error" in data) p.reject(new Error(data.error));
        else p.resolve(data.result);
      }
    };
  }

  #call(method, ...args) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, method, args });
    });
  }

  ensureDoc(id, kind = "automerge") { return this.#call("ensureDoc", id, kind); }
  documents() { return this.#call("documents"); }
  get(id, path) { return this.#call("get", id, path); }
  toJson(id) { return this.#call("toJson", id); }
  put(id, path, value) { return this.#call("put", id, path, value); }
  delete(id, path) { return this.#call("delete", id, path); }
  push(id, path, value) { return this.#call("push", id, path, value); }
  spliceText(id, path, index, deleteCount, text) { return this.#call("spliceText", id, path, index, deleteCount, text); }
  /** Splices of the text at `path`, each given on the text as the caller saw it before
   *  it (`seen`: e.g. a text box's value before the keystroke), carried over others'
   *  edits the store took since, in one commit. `edits`: [{seen, index, deleteCount, text}]. */
  spliceTextSeen(id, path, edits) { return this.#call("spliceTextSeen", id, path, edits); }
  increment(id, path, by = 1) { return this.#call("increment", id, path, by); }
  /** Applies every operation in `ops` in one commit. */
  transaction(id, ops) { return this.#call("transaction", id, ops); }
  setPolicy(id, pattern, policy) { return this.#call("setPolicy", id, pattern, policy); }
  getAll(id, path) { return this.#call("getAll", id, path); }
  conflicts(id) { return this.#call("conflicts", id); }
  resolve(id, path, value) { return this.#call("resolve", id, path, value); }
  status() { return this.#call("status"); }
  syncStatus() { return this.#call("syncStatus"); }
  startSync(urls, token) { return this.#call("startSync", { urls, token }); }
  stopSync() { return this.#call("stopSync"); }
  onSyncStatus(listener) {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }
  /** Sets this device's presence on `docId` (any JSON; null withdraws it). */
  setPresence(docId, state) { return this.#call("setPresence", docId, state); }
  /** Calls `listener({docId, peers: [{peer, deviceId, state}]})` when who is present changes. */
  onPresence(listener) {
    this.#presenceListeners.add(listener);
    return () => this.#presenceListeners.delete(listener);
  }
  /** Calls `listener({docId, source})` after every change of `docId` (all when null). */
  async subscribe(docId, listener) {
    const key = nextId++;
    this.#listeners.set(key, listener);
    await this.#call("subscribe", { key, docId });
    return async () => {
      this.#listeners.delete(key);
      await this.#call("unsubscribe", { key });
    };
  }
  /** Ends the Worker (the store closes with it). */
  close() { this.#worker.terminate(); }
}

// The Concord Worker (a dedicated module Worker): loads the engine (WASM), puts SQLite on
// OPFS (opfs-sahpool) or, where OPFS is missing or another tab of this origin holds the
// store, in memory (reported as `storage: "memory"` with the reason), and answers the page's
// calls. Messages in: {id, method, args}; out: {id, result} | {id, error}, and events
// {event: "change" | "sync" | "presence", ...}.
import init, { installOpfs, Store } from "./concord_wasm.js";
import { carrySplices } from "./text_diff.js";

let store = null;
const subscriptions = new Map();

async function open({ name, mergeModule }) {
  await init();
  let merges = {};
  if (mergeModule) {
    const mod = await import(mergeModule);
    merges = mod.default ?? mod;
  }
  let storage = "opfs";
  let warning = null;
  try {
    // Right after a reload the previous page's Worker may still hold the pool for a
    // moment: try a few times before falling back to memory.
    for (let attempt = 0; ; attempt++) {
      try {
        await installOpfs(`.concord-${name}`);
        break;
      } catch (e) {
        if (attempt >= 10 || !self.navigator?.storage?.getDirectory) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    store = Store.open(`${name}.db`, merges);
  } catch (e) {
    storage = "memory";
    warning = `${e?.message ?? e} — this tab keeps its data in memory only (lost on reload)`;
    store = Store.openInMemory(merges);
  }
  store.onSyncStatus((status) => postMessage({ event: "sync", status: withPending(status) }));
  store.onPresence((presence) => postMessage({ event: "presence", presence }));
  return { storage, warning, deviceId: store.deviceId() };
}

function withPending(status) {
  try {
    return store.syncStatus();
  } catch {
    return status;
  }
}

const calls = {
  open,
  /** Splices of the text as the caller saw it before each (`seen`), carried over whatever
   *  others changed in it since, in one commit (read and spliced here, in one step:
   *  nothing arrives between). `edits`: [{seen, index, deleteCount, text}]. */
  spliceTextSeen(id, path, edits) {
    let now = store.get(id, path) ?? "";
    if (typeof now !== "string") throw new Error(`${path} is not text`);
    const ops = carrySplices(now, edits).map((s) => ({ op: "spliceText", path, index: s.index, delete: s.del, text: s.ins }));
    if (ops.length) store.transaction(id, ops);
  },
  subscribe({ key, docId }) {
    const sub = store.subscribe(docId ?? null, (event) => postMessage({ event: "change", key, ...event }));
    subscriptions.set(key, sub);
  },
  unsubscribe({ key }) {
    subscriptions.get(key)?.unsubscribe();
    subscriptions.delete(key);
  },
  startSync({ urls, token }) {
    store.startSync(urls, token ?? undefined);
    return store.syncStatus();
  },
  stopSync() {
    store.stopSync();
    return store.syncStatus();
  },
};

self.onmessage = async ({ data: { id, method, args } }) => {
  try {
    let result;
    if (calls[method]) result = await calls[method](...(args ?? []));
    else if (store && typeof store[method] === "function") result = store[method](...(args ?? []));
    else throw new Error(`unknown method ${method}`);
    postMessage({ id, result });
  } catch (e) {
    postMessage({ id, error: String(e?.message ?? e) });
  }
};

// The Concord demo board: a note (Yrs text with live remote cursors), a task list (an
// Automerge list of maps; `title` under last-writer-wins, `status` under keep-all, so a
// concurrent change of status is a conflict the user resolves by picking), an offline
// switch with the number of pending updates, and a cluster panel (every node's /cluster).
// URL parameters: `nodes` = comma-separated relay WebSocket URLs (default: this server),
// `name` = the name shown to others, `store` = the store's name (default `board`).
import { Store, carryPosThrough, textDiff, textEdits } from "./pkg/concord.js";

const params = new URLSearchParams(location.search);
const wsBase = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/sync`;
const nodes = (params.get("nodes") ?? wsBase).split(",").map((s) => s.trim()).filter(Boolean);
const COLORS = ["#ff8a65", "#4dd0e1", "#aed581", "#f06292", "#ffd54f", "#9575cd", "#4db6ac"];
const name = params.get("name") ?? `guest-${Math.floor(Math.random() * 1000)}`;
const color = COLORS[[...name].reduce((a, c) => a + c.charCodeAt(0), 0) % COLORS.length];
const $ = (id) => document.getElementById(id);

const NOTE = "note", BODY = "body", TASKS = "tasks", STATUSES = ["todo", "doing", "done"];
const demo = { ready: false, name, events: [] };
window.demo = demo;

// One queue for every store call the UI makes, so reads see the edits before them.
let chain = Promise.resolve();
const queue = (f) => (chain = chain.then(f).catch((e) => console.error(e)));


async function main() {
  const store = await Store.open(params.get("store") ?? "board");
  demo.store = store;
  $("who").textContent = name;
  $("who").style.background = color;
  $("who").style.color = "#000";
  $("storage").textContent = store.storage === "opfs" ? "OPFS" : "memory only";
  $("device").textContent = `Device ${store.deviceId}.`;
  if (store.warning) {
    $("warning").hidden = false;
    $("warning").textContent = `Storage: ${store.warning}`;
  }

  const known = (await store.documents()).map((d) => d.id);
  await store.ensureDoc(NOTE, "yrs");
  await store.ensureDoc(TASKS, "automerge");
  if (!known.includes(TASKS)) {
    await store.transaction(TASKS, [
      { op: "put", path: "items", value: [] },
    ]);
    await store.setPolicy(TASKS, "items/*/title", "lww");
    await store.setPolicy(TASKS, "items/*/status", "keep-all");
  }

  setupNote(store);
  setupTasks(store);
  setupSync(store);
  setupCluster();
  setupPresence(store);
  demo.readyMs = performance.now(); // since navigation start
  demo.ready = true;
}

/** Shows `message` in the warning bar (an edit the store refused, a failed start). */
function showError(message) {
  $("warning").hidden = false;
  $("warning").textContent = message;
}

// ---- note -----------------------------------------------------------------------------
let noteText = "";
let noteEdits = 0; // input events seen
let noteApplied = 0; // of those, the ones whose splice the store has run

function setupNote(store) {
  const area = $("note");
  demo.noteQueue = () => ({ edits: noteEdits, applied: noteApplied }); // for the tests
  const refresh = () => queue(async () => {
    const text = (await store.get(NOTE, BODY)) ?? "";
    // The box holds typing whose splice is still queued behind this read (typed after
    // the refresh was queued, or while it read): this text lacks it, and writing it into
    // the box would drop those characters from the box and misplace the next ones. Read
    // again once the queue gets there. Not awaited: this runs inside the queue, and
    // waiting here for a later entry would wait on itself, and every store call after it
    // (the user's typing) would never run.
    if (noteApplied !== noteEdits) { refresh(); return; }
    if (text === area.value) return;
    const [s, e, direction] = [area.selectionStart, area.selectionEnd, area.selectionDirection];
    const focused = document.activeElement === area;
    const before = area.value;
    area.value = text;
    noteText = text;
    if (focused) {
      // The selection moves with the text around it: others' edits elsewhere, before or
      // after it, each carried apart.
      const moved = textEdits(before, text);
      area.setSelectionRange(carryPosThrough(s, moved, true), carryPosThrough(e, moved, true), direction);
    }
    renderCursors();
  });
  // Keystrokes wait here while the store is busy (a commit in the browser takes tens of
  // milliseconds, more on a loaded machine), then go as one commit.
  let waiting = null;
  area.addEventListener("input", () => {
    const [seen, next] = [noteText, area.value];
    const d = textDiff(seen, next);
    noteText = next;
    noteEdits++;
    sendCursor();
    const edit = { seen, index: d.index, deleteCount: d.del, text: d.ins };
    if (waiting) { waiting.push(edit); return; }
    const edits = waiting = [edit];
    // Positions in the text the box showed, carried over remote edits the store took and
    // the box does not show yet. Counted done even when it fails, and then the box shows
    // what the store holds again, with the error.
    queue(() => {
      waiting = null;
      return store.spliceTextSeen(NOTE, BODY, edits)
        .catch((e) => { showError(`the note could not take that edit: ${e.message ?? e}`); refresh(); })
        .finally(() => { noteApplied += edits.length; });
    });
  });
  for (const ev of ["select", "keyup", "click", "focus"]) area.addEventListener(ev, sendCursor);
  store.subscribe(NOTE, (e) => { if (e.source === "remote") refresh(); });
  refresh().then(() => {
    area.disabled = false;
    area.placeholder = "Write together…";
  });
}

// ---- presence (who is here, cursors) --------------------------------------------------
const peers = new Map();
let presenceStore = null;

function sendCursor() {
  if (!presenceStore?.setPresence) return;
  const area = $("note");
  presenceStore.setPresence(NOTE, { name, color, cursor: [area.selectionStart, area.selectionEnd] });
}

function setupPresence(store) {
  if (!store.setPresence) return;
  presenceStore = store;
  store.onPresence((event) => {
    if (event.docId !== NOTE) return;
    peers.clear();
    for (const p of event.peers) peers.set(p.peer, p.state);
    renderPresence();
  });
  store.setPresence(NOTE, { name, color, cursor: [0, 0] });
}

function renderPresence() {
  const box = $("presence");
  box.replaceChildren(...[...peers.values()].map((s) => {
    const el = document.createElement("span");
    el.className = "peer";
    el.textContent = s?.name ?? "someone";
    el.style.background = s?.color ?? "#ccc";
    return el;
  }));
  renderCursors();
}

function renderCursors() {
  const layer = $("cursors");
  const text = $("note").value;
  const marks = [...peers.values()]
    .filter((s) => Array.isArray(s?.cursor))
    .map((s) => ({ at: Math.min(s.cursor[0], text.length), s }))
    .sort((a, b) => a.at - b.at);
  const parts = [];
  let pos = 0;
  for (const { at, s } of marks) {
    parts.push(document.createTextNode(text.slice(pos, at)));
    const c = document.createElement("span");
    c.className = "cursor";
    c.dataset.name = s.name ?? "";
    c.style.borderColor = s.color;
    c.style.background = s.color;
    parts.push(c);
    pos = at;
  }
  parts.push(document.createTextNode(text.slice(pos)));
  layer.replaceChildren(...parts);
  layer.scrollTop = $("note").scrollTop;
}

// ---- tasks ----------------------------------------------------------------------------
function setupTasks(store) {
  const render = () => queue(async () => {
    const items = (await store.get(TASKS, "items")) ?? [];
    const conflicts = new Set(await store.conflicts(TASKS));
    const list = $("task-list");
    const rows = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i] ?? {};
      const li = document.createElement("li");
      li.className = "task";
      li.dataset.index = i;
      const title = document.createElement("input");
      title.className = "title";
      title.value = item.title ?? "";
      title.addEventListener("change", () => queue(() => store.put(TASKS, `items/${i}/title`, title.value)));
      const status = document.createElement("select");
      status.className = "status";
      for (const s of STATUSES) status.add(new Option(s, s, false, s === item.status));
      status.addEventListener("change", () => queue(() => store.put(TASKS, `items/${i}/status`, status.value)));
      li.append(title, status);
      const path = `items/${i}/status`;
      if (conflicts.has(path)) {
        const all = await store.getAll(TASKS, path);
        const box = document.createElement("div");
        box.className = "conflict";
        box.append(`Conflict: status was set to ${all.map((v) => JSON.stringify(v.value)).join(" and ")} at the same time. Keep:`);
        for (const v of all) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "pick";
          b.textContent = String(v.value);
          b.addEventListener("click", () => queue(() => store.resolve(TASKS, path, v.value)));
          box.append(b);
        }
        li.append(box);
      }
      rows.push(li);
    }
    // Keep a title being typed in.
    const active = document.activeElement;
    if (active?.classList?.contains("title") && list.contains(active)) return;
    list.replaceChildren(...rows);
  });
  $("add-task").addEventListener("submit", (e) => {
    e.preventDefault();
    const title = $("new-task").value.trim();
    if (!title) return;
    $("new-task").value = "";
    queue(() => store.push(TASKS, "items", { title, status: "todo" }));
  });
  store.subscribe(TASKS, () => render());
  render();
}

// ---- sync, offline switch, pending ----------------------------------------------------
function setupSync(store) {
  const show = (s) => {
    const pending = Object.values(s.pending ?? {}).reduce((a, b) => a + b, 0);
    $("pending").textContent = pending;
    const conn = $("conn");
    if (!s.syncing) { conn.textContent = "offline"; conn.className = "chip off"; }
    else if (s.connected) { conn.textContent = "online"; conn.className = "chip on"; }
    else { conn.textContent = s.retries ? `reconnecting (${s.retries})` : "connecting…"; conn.className = "chip off"; }
    demo.sync = s;
  };
  store.onSyncStatus(show);
  store.subscribe(null, () => queue(async () => show(await store.syncStatus())));
  const offline = $("offline");
  const key = `concord-offline-${params.get("store") ?? "board"}`;
  offline.checked = localStorage.getItem(key) === "1"; // the switch survives a reload
  const apply = () => queue(async () => {
    localStorage.setItem(key, offline.checked ? "1" : "0");
    show(offline.checked ? await store.stopSync() : await store.startSync(nodes, params.get("token") ?? undefined));
  });
  offline.addEventListener("change", apply);
  apply();
}

// ---- cluster panel --------------------------------------------------------------------
function setupCluster() {
  const https = nodes.map((u) => u.replace(/^ws/, "http").replace(/\/sync$/, ""));
  const poll = async () => {
    const rows = await Promise.all(https.map(async (url) => {
      try {
        const r = await fetch(`${url}/cluster`, { cache: "no-store" });
        return { url, s: await r.json() };
      } catch {
        return { url, s: null };
      }
    }));
    $("nodes").replaceChildren(...rows.map(({ url, s }) => {
      const tr = document.createElement("tr");
      const lag = s ? Math.max(0, (s.leader_last_log_index ?? s.last_log_index) - s.applied_index) : "";
      const cells = s
        ? [s.node_id ?? url, s.role, s.term, s.leader ?? "—", s.applied_index, lag]
        : [url, "down", "", "", "", ""];
      tr.className = s ? (s.role === "leader" ? "leader" : "") : "down";
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
      return tr;
    }));
  };
  poll();
  setInterval(poll, 1000);
}

main().catch((e) => {
  showError(`Could not start: ${e.message}`);
  demo.error = String(e.message);
});

// Browser benchmarks (not tests): an editing trace (automerge-paper by default) through the Store on
// OPFS in Debian's chromium, 100 trace txns per transaction (one durable commit each), for
// Automerge and Yrs; a cold open of the result; and the time from page load to a usable
// document on the demo board (first visit and after a reload). Prints a Markdown table.
//   node web-demo/bench/trace.js [path/to/trace.json.gz or .json]
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { resolve } from "node:path";
import { startRelay, launch, root } from "../tests/harness.js";

const tracePath = process.argv[2] ?? resolve(root, "../shared/data/automerge-paper.json.gz");
const bytes = readFileSync(tracePath);
const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
const raw = JSON.parse((gzipped ? gunzipSync(bytes) : bytes).toString("utf8"));
const txns = toUtf16(raw.startContent ?? "", raw.txns.map((t) => t.patches));
const BATCH = 100;

/** Traces count positions in code points; the browser Store (like Yjs) counts UTF-16 code
 *  units, one more for every character outside the BMP (an emoji) before the position.
 *  Converts every patch, tracking where those characters are (as bench/src/astral.rs
 *  does for the raw Yrs rows); a trace without them is returned as it is. */
function toUtf16(start, txns) {
  const astral = (ch) => ch.length === 2;
  const any = (text) => [...text].some(astral);
  if (!any(start) && !txns.some((patches) => patches.some(([, , ins]) => ins && any(ins)))) return txns;
  const firstAtOrAfter = (at, pos) => {
    let lo = 0, hi = at.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (at[mid] < pos) lo = mid + 1; else hi = mid; }
    return lo;
  };
  let at = [...start].flatMap((ch, i) => (astral(ch) ? [i] : []));
  return txns.map((patches) => patches.map(([pos, del, ins = ""]) => {
    const before = firstAtOrAfter(at, pos);
    const end = firstAtOrAfter(at, pos + del);
    const chars = [...ins];
    const inserted = chars.flatMap((ch, i) => (astral(ch) ? [pos + i] : []));
    const after = at.slice(end).map((p) => p + chars.length - del);
    at = at.slice(0, before).concat(inserted, after);
    return [pos + before, del + (end - before), ins];
  }));
}

const relay = await startRelay();
const browser = await launch();
const rows = [];
try {
  for (const kind of ["automerge", "yrs"]) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${relay.url}bench.html`);
    await page.waitForFunction(() => window.benchReady);
    const result = await page.evaluate(async ({ kind, start, txns, end, BATCH }) => {
      const store = await window.Store.open(`trace-${kind}`);
      if (store.storage !== "opfs") throw new Error(`not on OPFS: ${store.warning}`);
      await store.ensureDoc("paper", kind);
      if (start) await store.spliceText("paper", "text", 0, 0, start);
      const t0 = performance.now();
      const lat = [];
      for (let i = 0; i < txns.length; i += BATCH) {
        const ops = [];
        for (const patches of txns.slice(i, i + BATCH))
          for (const [pos, del, ins] of patches) ops.push({ op: "spliceText", path: "text", index: pos, delete: del, text: ins });
        const c0 = performance.now();
        await store.transaction("paper", ops);
        lat.push(performance.now() - c0);
      }
      const wall = (performance.now() - t0) / 1000;
      const text = await store.get("paper", "text");
      store.close();
      lat.sort((a, b) => a - b);
      return { wall, commits: lat.length, p50: lat[Math.floor(lat.length / 2)], p99: lat[Math.floor(lat.length * 0.99)], ok: text === end };
    }, { kind, start: raw.startContent, txns, end: raw.endContent, BATCH });
    if (!result.ok) throw new Error(`${kind}: the final text differs from the trace's endContent`);
    // Cold open: a new page (new Worker) opens the store from OPFS and reads the text.
    await page.reload();
    await page.waitForFunction(() => window.benchReady);
    const coldMs = await page.evaluate(async (kind) => {
      const t0 = performance.now();
      const store = await window.Store.open(`trace-${kind}`);
      const text = await store.get("paper", "text");
      const ms = performance.now() - t0;
      store.close();
      return text.length > 0 ? ms : -1;
    }, kind);
    rows.push({ kind, ...result, coldMs });
    await ctx.close();
  }

  // Page load to a usable document on the demo board.
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const ready = async () => {
    await page.waitForFunction(() => window.demo?.ready, null, { timeout: 60_000 });
    return page.evaluate(() => window.demo.readyMs);
  };
  await page.goto(`${relay.url}?name=bench`);
  const first = await ready();
  await page.reload();
  const again = await ready();
  await ctx.close();

  console.log("| scenario | txns | txns/commit | commits | wall s | txns/s | commit p50 ms | p99 ms | cold open + read ms |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows)
    console.log(`| browser-${r.kind}-batch100 (OPFS) | ${txns.length} | ${BATCH} | ${r.commits} | ${r.wall.toFixed(2)} | ${Math.round(txns.length / r.wall)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.coldMs.toFixed(0)} |`);
  console.log();
  console.log(`page load to a usable document (demo board): first visit ${first.toFixed(0)} ms, after a reload ${again.toFixed(0)} ms`);
} finally {
  await browser.close();
  relay.stop();
}

// A conflict policy with a merge function written in JS: concurrent writes from two
// browsers show the merged value on both.
import { test, after, before } from "node:test";
import { startRelay, launch, until } from "./harness.js";

let relay, browser;
before(async () => { relay = await startRelay(); browser = await launch(); });
after(async () => { await browser?.close(); relay?.stop(); });

async function device(ws) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${relay.url}bench.html`);
  await page.waitForFunction(() => window.benchReady);
  await page.evaluate(async (ws) => {
    const mergeModule = new URL("/tests/merge-longest.js", location.href).href;
    window.store = await window.Store.open("merge", { mergeModule });
    window.ws = ws;
    window.statuses = [];
    window.store.onSyncStatus((s) => window.statuses.push(s));
  }, ws);
  return page;
}

test("a merge function written in JS resolves concurrent writes the same way on both devices", async () => {
  const [a, b] = [await device(relay.ws), await device(relay.ws)];
  await a.evaluate(async () => {
    await store.ensureDoc("d", "automerge");
    await store.setPolicy("d", "title", "merge:longest");
    await store.put("d", "title", "first");
    await store.startSync([ws]);
  });
  await b.evaluate(() => store.startSync([ws]));
  await until(() => b.evaluate(() => store.get("d", "title").then((v) => v === "first").catch(() => false)), "the document at B");
  await until(() => a.evaluate(() => store.syncStatus().then((s) => s.connected && s.pending.d === 0)), "A in sync");
  await a.evaluate(() => store.stopSync());
  await b.evaluate(() => store.stopSync());
  // The status listener hears of the stop, as it heard of the connection, and may read
  // the store when it does (the worker adds the pending counts from syncStatus()).
  for (const p of [a, b])
    await until(() => p.evaluate(() => {
      const s = statuses.at(-1);
      return s?.syncing === false && s?.connected === false && s?.pending?.d === 0;
    }), "the last status: stopped, with the pending counts");
  // The longer value is written first: last-writer-wins would show "short".
  await b.evaluate(() => store.put("d", "title", "a much longer title"));
  await new Promise((r) => setTimeout(r, 50));
  await a.evaluate(() => store.put("d", "title", "short"));
  await a.evaluate(() => store.startSync([ws]));
  await b.evaluate(() => store.startSync([ws]));
  for (const p of [a, b])
    await until(() => p.evaluate(() => store.get("d", "title").then((v) => v === "a much longer title")), "the merged value");
});

// Presence: who is here appears in the other tab (name, colour, cursor) and disappears
// when the tab closes; `concord sync --watch` prints who joins and leaves.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { startRelay, launch, openDemo, online, shot, until, cli, tempDir, bin } from "./harness.js";

let relay, browser;
before(async () => { relay = await startRelay(); browser = await launch(); });
after(async () => { await browser?.close(); relay?.stop(); });

const peers = (page) => page.locator("#presence .peer").allTextContents();

test("presence appears in the other tab and disappears when the tab closes", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  await until(async () => (await peers(a)).includes("bob"), "Bob shown in Ann's tab");
  await until(async () => (await peers(b)).includes("ann"), "Ann shown in Bob's tab");
  await b.locator("#note").click();
  await b.keyboard.type("cursor here");
  await until(async () => (await a.locator("#cursors .cursor[data-name=bob]").count()) === 1, "Bob's cursor in Ann's tab");
  await shot(a, "presence-ann-sees-bob");
  await b.close();
  await until(async () => !(await peers(a)).includes("bob"), "Bob gone from Ann's tab");
  assert.equal(await a.locator("#cursors .cursor").count(), 0);
  await shot(a, "presence-bob-left");
  await ca.close(); await cb.close();
});

test("concord sync --watch prints who joins and leaves", async () => {
  const db = join(tempDir("cli"), "watcher.db");
  const ctx = await browser.newContext();
  const page = await openDemo(ctx, relay.url, "ann");
  await online(page);
  await until(async () => (await page.evaluate(() => window.demo.store.status()))[0], "the demo's documents");
  await until(async () => { cli(db, "sync", "--server", relay.ws); return cli(db, "list").includes("note"); }, "the note at the CLI");
  const watch = spawn(join(bin, "concord"), ["--db", db, "sync", "--watch", "--server", relay.ws]);
  let out = "";
  watch.stdout.on("data", (d) => { out += d; });
  try {
    await until(() => out.includes("note: ann joined"), "the join line");
    await page.close();
    await until(() => out.includes("note: ann left"), "the leave line");
  } finally {
    watch.kill("SIGINT");
    await ctx.close();
  }
});

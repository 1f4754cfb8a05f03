// Offline: one tab goes offline, both edit, it reconnects, they converge; offline edits
// survive a reload (SQLite on OPFS) and then sync.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { startRelay, launch, openDemo, noteText, online, shot, until } from "./harness.js";

let relay, browser;
before(async () => { relay = await startRelay(); browser = await launch(); });
after(async () => { await browser?.close(); relay?.stop(); });

const pending = (page) => page.locator("#pending").textContent().then(Number);

test("one tab goes offline, both edit, it reconnects, they converge", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  await a.locator("#note").click();
  await a.keyboard.type("Shared line.");
  await until(async () => (await noteText(b)) === "Shared line.", "the shared line at Bob");

  await a.locator("#offline").check();
  await until(async () => (await a.locator("#conn").textContent()) === "offline", "Ann offline");
  await a.locator("#note").press("End");
  await a.keyboard.type(" Ann offline.");
  await b.locator("#note").click();
  await b.locator("#note").press("Home");
  await b.keyboard.type("Bob online. ");
  await until(async () => (await pending(a)) > 0, "Ann's pending count");
  await shot(a, "offline-ann-pending");
  assert.ok(!(await noteText(b)).includes("Ann offline"), "nothing leaves an offline tab");
  assert.ok(!(await noteText(a)).includes("Bob online"), "nothing reaches an offline tab");

  await a.locator("#offline").uncheck();
  const both = async () => {
    const [ta, tb] = [await noteText(a), await noteText(b)];
    return ta === tb && ta.includes("Ann offline.") && ta.includes("Bob online.") && ta.includes("Shared line.");
  };
  await until(both, "convergence after reconnecting");
  await until(async () => (await pending(a)) === 0, "Ann's outbox acknowledged");
  await shot(a, "offline-reconnected-ann"); await shot(b, "offline-reconnected-bob");
  await ca.close(); await cb.close();
});

test("offline edits survive a reload (OPFS), then sync", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  await a.locator("#offline").check();
  await a.locator("#note").click();
  await a.keyboard.press("Control+End");
  await a.keyboard.type(" Written offline, then reloaded.");
  // Committed to the store (each keystroke is a commit in the Worker) before reloading.
  await until(async () => (await noteText(a)).includes("then reloaded."), "the commit before the reload");
  await a.reload();
  await a.waitForFunction(() => window.demo?.ready, null, { timeout: 30_000 });
  assert.equal(await a.evaluate(() => window.demo.store.storage), "opfs", "the reloaded tab is on OPFS again");
  assert.ok(await a.locator("#offline").isChecked(), "still offline after the reload");
  await until(async () => (await a.locator("#note").inputValue()).includes("Written offline, then reloaded."), "the text after the reload");
  await until(async () => (await pending(a)) > 0, "still pending after the reload");
  await shot(a, "reload-offline-ann");
  assert.ok(!(await noteText(b)).includes("Written offline"));
  await a.locator("#offline").uncheck();
  await until(async () => (await noteText(b)).includes("Written offline, then reloaded."), "the offline edit at Bob");
  await until(async () => (await noteText(a)) === (await noteText(b)), "convergence");
  await shot(b, "reload-synced-bob");
  await ca.close(); await cb.close();
});

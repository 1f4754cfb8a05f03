// Two browsers edit the same note: live, and offline then reconnecting; offline edits
// survive a reload (OPFS) and then sync.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startRelay, launch, openDemo, noteText, online, shot, tabState, until, cli, tempDir } from "./harness.js";

let relay, browser;
before(async () => { relay = await startRelay(); browser = await launch(); });
after(async () => { await browser?.close(); relay?.stop(); });

test("two browser contexts edit the same note live and converge", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  assert.equal(await a.evaluate(() => window.demo.store.storage), "opfs");
  await online(a); await online(b);
  await a.locator("#note").click();
  await a.keyboard.type("Hello from Ann. ");
  await until(async () => (await noteText(b)).includes("Hello from Ann."), "Ann's text in Bob's tab");
  await b.locator("#note").press("End");
  await b.keyboard.type("And Bob.");
  await until(async () => (await noteText(a)) === (await noteText(b)) && (await noteText(a)).includes("And Bob."), "convergence");
  await until(async () => (await a.locator("#note").inputValue()) === (await noteText(b)), "Ann's textarea shows it");
  await shot(a, "note-live-ann"); await shot(b, "note-live-bob");
  await ca.close(); await cb.close();
});

test("typing while a remote change is being read keeps every keystroke", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  // Bob's reads of the note are slow, so his typing lands while his tab reads Ann's change.
  // (The tab re-reads when the user typed meanwhile; it used to wait on itself there, and
  // every edit after it was never stored.)
  await b.evaluate(() => {
    const get = window.demo.store.get.bind(window.demo.store);
    window.demo.store.get = async (...args) => {
      await new Promise((r) => setTimeout(r, 400));
      return get(...args);
    };
  });
  await b.locator("#note").click(); await b.keyboard.press("Control+End");
  await a.locator("#note").click(); await a.keyboard.press("Control+End");
  await a.keyboard.type(" Ann again.");
  await b.keyboard.type(" Bob types on.", { delay: 50 });
  await until(async () => (await noteText(a)).includes("Bob types on.") && (await noteText(b)).includes("Ann again."),
    "both edits in both tabs", undefined, async () => `ann: ${await tabState(a)}; bob: ${await tabState(b)}`);
  await ca.close(); await cb.close();
});

test("a remote change read while the tab's own keystrokes wait to be stored keeps them in order", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  // Bob's edits are slow to store, so his keystrokes queue up, and the re-reads for Ann's
  // changes run while some of them still wait. (A re-read used to put the stored text,
  // which lacked them, into the box: those characters left the box, and the ones typed
  // next landed before them.)
  await b.evaluate(() => {
    const splice = window.demo.store.spliceTextSeen.bind(window.demo.store);
    window.demo.store.spliceTextSeen = async (...args) => {
      await new Promise((r) => setTimeout(r, 120));
      return splice(...args);
    };
  });
  // Ann writes at the start of the note and Bob at its end, apart from each other.
  await a.locator("#note").click(); await a.keyboard.press("Control+End");
  await a.keyboard.type("|");
  await until(async () => (await b.locator("#note").inputValue()) === (await noteText(a)), "Ann's bar in Bob's box");
  const start = await noteText(a); // earlier tests' text, then the bar
  await b.locator("#note").click(); await b.keyboard.press("Control+End");
  await a.keyboard.press("Control+Home");
  const bobTypes = b.keyboard.type(" Bob keeps on typing.", { delay: 40 });
  for (let i = 0; i < 8; i++) {
    await a.keyboard.type(`${i}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await bobTypes;
  const explain = async () => `ann: ${await tabState(a)}; bob: ${await tabState(b)}`;
  const both = `01234567${start} Bob keeps on typing.`;
  await until(async () => (await noteText(a)) === both && (await noteText(b)) === both,
    "both tabs hold Ann's digits and Bob's words, each in order", undefined, explain);
  await until(async () => (await b.locator("#note").inputValue()) === (await noteText(b)), "Bob's box shows the note",
    undefined, explain);
  await ca.close(); await cb.close();
});

test("a keystroke carried over others' edits in two places lands where it was typed", async () => {
  const ctx = await browser.newContext();
  const a = await openDemo(ctx, relay.url, "ann");
  // The text box saw "AAAA BBBB" and the user typed X after "AAAA "; before the Worker
  // stores it, others' edits at both ends arrive. (One region spanning both sent the
  // keystroke to its start: "X1AAAA BBBB2".)
  const texts = await a.evaluate(async () => {
    const s = window.demo.store;
    const out = {};
    for (const kind of ["automerge", "yrs"]) {
      const id = `carry-${kind}`;
      await s.ensureDoc(id, kind);
      await s.spliceText(id, "t", 0, 0, "AAAA BBBB");
      await s.spliceText(id, "t", 0, 0, "1");
      await s.spliceText(id, "t", 10, 0, "2");
      await s.spliceTextSeen(id, "t", [
        { seen: "AAAA BBBB", index: 5, deleteCount: 0, text: "X" },
        { seen: "AAAA XBBBB", index: 8, deleteCount: 2, text: "" }, // and then deleted "BB"
      ]);
      out[kind] = await s.get(id, "t");
    }
    return out;
  });
  assert.deepEqual(texts, { automerge: "1AAAA XBB2", yrs: "1AAAA XBB2" });
  await ctx.close();
});

test("a caret between two places another tab edits at once stays between the same letters", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  await until(async () => (await b.locator("#note").inputValue()) === (await noteText(a)), "the note in Bob's box");
  const before = await noteText(a); // earlier tests' text
  // Bob's caret sits after the marker he typed; Ann then edits both ends in one commit.
  await b.locator("#note").click(); await b.keyboard.press("Control+End");
  await b.keyboard.type("<caret>");
  await until(async () => (await noteText(a)) === `${before}<caret>`, "Bob's marker in Ann's tab");
  const caret = `${before}<caret>`.length;
  await b.evaluate((at) => document.getElementById("note").setSelectionRange(at - 3, at - 3), caret);
  await a.evaluate((end) => window.demo.store.transaction("note", [
    { op: "spliceText", path: "body", index: end, delete: 0, text: " [end]" },
    { op: "spliceText", path: "body", index: 0, delete: 0, text: "[start] " },
  ]), caret);
  const after = `[start] ${before}<caret> [end]`;
  await until(async () => (await b.locator("#note").inputValue()) === after, "Ann's two edits in Bob's box");
  // "[start] " came before the caret and " [end]" after it: it moved by 8, inside "<caret>".
  const at = await b.evaluate(() => document.getElementById("note").selectionStart);
  assert.equal(after.slice(at - 4, at + 3), "<car" + "et>", `caret at ${at} of ${after.length}`);
  await ca.close(); await cb.close();
});

test("an emoji typed next to another one is stored whole", async () => {
  const ctx = await browser.newContext();
  const a = await openDemo(ctx, relay.url, "ann");
  // The note as the relay holds it (earlier tests' text), in this new tab's box first.
  const db = join(tempDir("cli"), "reader.db");
  cli(db, "sync", "--server", relay.ws);
  const docs = cli(db, "list");
  const before = (docs.includes("note") && JSON.parse(cli(db, "show", "note")).body) || "";
  await online(a);
  await until(async () => (await noteText(a)) === before && (await a.locator("#note").inputValue()) === before,
    "the relay's note in the box");
  await a.locator("#note").click(); await a.keyboard.press("Control+End");
  await a.keyboard.type("[😀]");
  // 😃 and 😀 share their first UTF-16 unit: a diff by units alone would split the pair.
  await a.keyboard.press("ArrowLeft"); await a.keyboard.press("ArrowLeft");
  await a.keyboard.type("😃");
  await until(async () => (await noteText(a)) === `${before}[😃😀]`, "the note holds both emoji", undefined,
    async () => `tab: ${await tabState(a)}; box: ${JSON.stringify(await a.locator("#note").inputValue())}`);
  assert.ok(await a.locator("#warning").isHidden(), "no edit was refused");
  await ctx.close();
});

test("a second tab of the same origin falls back to memory with a visible warning, and still syncs", async () => {
  const ctx = await browser.newContext();
  const first = await openDemo(ctx, relay.url, "ann");
  assert.equal(await first.evaluate(() => window.demo.store.storage), "opfs");
  const second = await openDemo(ctx, relay.url, "ann-2");
  assert.equal(await second.evaluate(() => window.demo.store.storage), "memory");
  assert.ok(await second.locator("#warning").isVisible(), "the warning is shown");
  assert.match(await second.locator("#warning").textContent(), /memory only/);
  await online(first); await online(second);
  await second.locator("#note").click();
  await second.keyboard.press("Control+End");
  await second.keyboard.type(" From the second tab.");
  await until(async () => (await noteText(first)).includes("From the second tab."), "the second tab's edit in the first",
    undefined, async () => `first tab: ${await tabState(first)}; second tab: ${await tabState(second)}`);
  await shot(second, "second-tab-memory-warning");
  await ctx.close();
});

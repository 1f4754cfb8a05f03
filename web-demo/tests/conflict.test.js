// Tasks: a keep-all conflict on a task's status is shown, resolved by a click, and the
// resolution reaches the other tab; a browser device and a CLI device converge.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startRelay, launch, openDemo, noteText, online, shot, until, cli, tempDir } from "./harness.js";

let relay, browser;
before(async () => { relay = await startRelay(); browser = await launch(); });
after(async () => { await browser?.close(); relay?.stop(); });

test("a keep-all conflict is resolved by a click and the resolution reaches the other tab", async () => {
  const [ca, cb] = [await browser.newContext(), await browser.newContext()];
  const a = await openDemo(ca, relay.url, "ann");
  const b = await openDemo(cb, relay.url, "bob");
  await online(a); await online(b);
  await a.locator("#new-task").fill("Ship the demo");
  await a.locator("#add-task button").click();
  const task = (p) => p.locator("li.task").first();
  await until(async () => (await b.locator("li.task input.title").first().inputValue().catch(() => "")) === "Ship the demo", "the task at Bob");

  await a.locator("#offline").check();
  await b.locator("#offline").check();
  await task(a).locator("select.status").selectOption("doing");
  await task(b).locator("select.status").selectOption("done");
  await until(async () => (await a.evaluate(() => window.demo.store.get("tasks", "items/0/status"))) === "doing", "Ann's write");
  await until(async () => (await b.evaluate(() => window.demo.store.get("tasks", "items/0/status"))) === "done", "Bob's write");
  await a.locator("#offline").uncheck();
  await b.locator("#offline").uncheck();

  await until(async () => (await a.locator(".conflict").count()) === 1, "the conflict shown to Ann");
  await until(async () => (await b.locator(".conflict").count()) === 1, "the conflict shown to Bob");
  const choices = await a.locator(".conflict button.pick").allTextContents();
  assert.deepEqual([...choices].sort(), ["doing", "done"]);
  await shot(a, "conflict-shown-ann");
  await a.locator(".conflict button.pick", { hasText: "done" }).click();
  await until(async () => (await b.locator(".conflict").count()) === 0, "the resolution at Bob");
  await until(async () => (await a.locator(".conflict").count()) === 0, "resolved at Ann");
  assert.equal(await b.evaluate(() => window.demo.store.get("tasks", "items/0/status")), "done");
  assert.equal(await task(b).locator("select.status").inputValue(), "done");
  await shot(b, "conflict-resolved-bob");
  await ca.close(); await cb.close();
});

test("a browser device and a CLI device converge on one document", async () => {
  const ctx = await browser.newContext();
  const page = await openDemo(ctx, relay.url, "ann");
  await online(page);
  await page.locator("#note").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(" From the browser.");
  const db = join(tempDir("cli"), "cli.db");
  await until(async () => {
    cli(db, "sync", "--server", relay.ws);
    return JSON.parse(cli(db, "get", "note", "body")).includes("From the browser.");
  }, "the browser's text at the CLI");
  cli(db, "insert-text", "note", "body", "0", "From the CLI. ");
  cli(db, "sync", "--server", relay.ws);
  await until(async () => (await noteText(page)).startsWith("From the CLI. "), "the CLI's text in the browser");
  await until(async () => {
    cli(db, "sync", "--server", relay.ws);
    return JSON.parse(cli(db, "get", "note", "body")) === (await noteText(page));
  }, "the same text on both devices");
  await until(async () => (await page.locator("#note").inputValue()) === (await noteText(page)), "the textarea shows it");
  await shot(page, "browser-and-cli");
  await ctx.close();
});

// A 3-node relay cluster: the leader is killed while a tab types; no edit is lost (a
// device syncing through the surviving nodes gets exactly what was typed), and the
// cluster panel shows the failover.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startCluster, launch, openDemo, noteText, online, shot, until, cli, tempDir, tabState } from "./harness.js";

let cluster, browser;
before(async () => { cluster = await startCluster(3); browser = await launch(); });
after(async () => { await browser?.close(); cluster?.stop(); });

test("with a 3-node cluster, the leader is killed while a tab types and no edit is lost", async () => {
  const leader = await cluster.leader();
  const serving = cluster.nodes.find((n) => n !== leader); // the page's own server survives
  const nodes = cluster.nodes.map((n) => n.ws).join(",");
  const ctx = await browser.newContext();
  const page = await openDemo(ctx, `${serving.http}/?nodes=${nodes}`, "ann");
  await online(page);
  await until(async () => (await page.locator("#nodes tr.leader").count()) === 1, "the leader in the cluster panel");
  await shot(page, "cluster-before");

  await page.locator("#note").click();
  let typed = "";
  for (let i = 0; i < 40; i++) {
    const word = `w${i} `;
    await page.keyboard.type(word);
    typed += word;
    if (i === 15) leader.proc.kill("SIGKILL");
  }
  await until(async () => (await noteText(page)) === typed, "every keystroke committed locally", undefined,
    async () => `box: ${JSON.stringify(await page.locator("#note").inputValue())}; tab: ${await tabState(page)}; ` +
      `queue: ${JSON.stringify(await page.evaluate(() => window.demo.noteQueue()))}`);
  await until(async () => Number(await page.locator("#pending").textContent()) === 0, "every edit acknowledged by the cluster", 60_000);
  const next = await cluster.leader();
  assert.notEqual(next, leader, "a new leader was elected");
  await until(async () => (await page.locator("#nodes tr.down").count()) === 1, "the dead node shown down");
  await shot(page, "cluster-after-failover");

  const db = join(tempDir("cli"), "reader.db");
  const survivors = cluster.nodes.filter((n) => n !== leader).map((n) => n.ws).join(",");
  await until(async () => {
    cli(db, "sync", "--server", survivors);
    return JSON.parse(cli(db, "get", "note", "body")) === typed;
  }, "exactly the typed text through the surviving nodes");
  await ctx.close();
});

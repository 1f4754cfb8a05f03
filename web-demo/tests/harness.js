// Test harness for the browser end-to-end tests: real concord-server processes (built by
// cargo), Debian's chromium driven by playwright-core (never a downloaded browser), the
// demo app served by the relay, and the CLI. Every wait is bounded.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const bin = resolve(root, process.env.CARGO_TARGET_DIR ?? "target", "debug");
if (!existsSync(join(bin, "concord-server")))
  throw new Error(`no concord-server in ${bin}: build it (set CARGO_TARGET_DIR to your target dir)`);
export const artifacts = join(root, "web-demo", "test-artifacts");
mkdirSync(artifacts, { recursive: true });

export const WAIT = 30_000;

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `concord-web-${prefix}-`));
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on("error", fail);
  });
}

/** Polls `f` until it returns a truthy value (bounded by `ms`); on timeout the error
 * also carries what `explain` (if given) reports, e.g. each tab's sync status. */
export async function until(f, what, ms = WAIT, explain = null) {
  const end = Date.now() + ms;
  let last;
  for (let i = 0; i < 10_000 && Date.now() < end; i++) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const why = explain ? `; ${await explain().catch((e) => `explain failed: ${e}`)}` : "";
  throw new Error(`timed out waiting for ${what} (last: ${last})${why}`);
}

async function healthy(port) {
  await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, `relay on ${port}`);
}

/** A single relay serving the demo. */
export async function startRelay() {
  const port = await freePort();
  const dir = tempDir("relay");
  const proc = spawn(join(bin, "concord-server"), [
    "--listen", `127.0.0.1:${port}`, "--data-dir", dir, "--static-dir", join(root, "web-demo"),
  ], { stdio: ["ignore", "ignore", "pipe"] });
  proc.stderr.on("data", () => {});
  await healthy(port);
  return { port, url: `http://127.0.0.1:${port}/`, ws: `ws://127.0.0.1:${port}/sync`, stop: () => proc.kill("SIGKILL") };
}

/** A 3-node cluster (as scripts/cluster.sh), every node serving the demo. */
export async function startCluster(n = 3) {
  const dir = tempDir("cluster");
  const nodes = [];
  for (let i = 1; i <= n; i++) nodes.push({ id: i, client: await freePort(), cluster: await freePort() });
  const peers = nodes.map((p) => `[[cluster.peers]]\nid = ${p.id}\nclient = "127.0.0.1:${p.client}"\ncluster = "127.0.0.1:${p.cluster}"\n`).join("");
  for (const node of nodes) {
    mkdirSync(join(dir, `n${node.id}`));
    const toml = join(dir, `n${node.id}.toml`);
    writeFileSync(toml, `listen = "127.0.0.1:${node.client}"\ndata_dir = "${join(dir, `n${node.id}`)}"\nstatic_dir = "${join(root, "web-demo")}"\n[cluster]\nnode_id = ${node.id}\nlisten = "127.0.0.1:${node.cluster}"\nsecret = "web-test-secret"\nbootstrap = ${node.id === 1}\n${peers}`);
    node.proc = spawn(join(bin, "concord-server"), ["--config", toml], { stdio: ["ignore", "ignore", "ignore"] });
    node.ws = `ws://127.0.0.1:${node.client}/sync`;
    node.http = `http://127.0.0.1:${node.client}`;
  }
  for (const node of nodes) await healthy(node.client);
  const leader = async () => until(async () => {
    for (const node of nodes) {
      if (node.proc.exitCode !== null || node.proc.signalCode) continue;
      try {
        const s = await (await fetch(`${node.http}/cluster`)).json();
        if (s.role === "leader") return node;
      } catch {}
    }
    return null;
  }, "a cluster leader");
  await leader();
  return { nodes, leader, stop: () => nodes.forEach((n) => n.proc.kill("SIGKILL")) };
}

/** Debian's chromium, headless, a fresh profile (playwright-core makes one per launch). */
export async function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

/** Opens the demo in a new page of `context` and waits until it is ready. */
export async function openDemo(context, url, name) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) console.error(`[${name}] console error: ${m.text()}`); });
  await page.goto(`${url}${url.includes("?") ? "&" : "?"}name=${name}`);
  await page.waitForFunction(() => window.demo?.ready || window.demo?.error, null, { timeout: WAIT });
  const error = await page.evaluate(() => window.demo.error);
  if (error) throw new Error(`demo failed to start: ${error}`);
  return page;
}

export async function noteText(page) {
  return page.evaluate(() => window.demo.store.get("note", "body").then((v) => v ?? ""));
}

/** A tab's sync status and note, for a failure message. */
export async function tabState(page) {
  return page.evaluate(async () => JSON.stringify({
    sync: window.demo.sync ?? null,
    status: await window.demo.store.syncStatus().catch((e) => `${e}`),
    note: await window.demo.store.get("note", "body").catch((e) => `${e}`),
  }));
}

export async function online(page) {
  await page.waitForFunction(() => window.demo.sync?.connected, null, { timeout: WAIT });
}

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
}

/** Runs the CLI with a device file; returns stdout. */
export function cli(db, ...args) {
  return execFileSync(join(bin, "concord"), ["--db", db, ...args], { encoding: "utf8", timeout: WAIT });
}

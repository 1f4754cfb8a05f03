// An unmodified automerge-repo client (@automerge/automerge-repo with its WebSocket
// network adapter, no storage) driven line by line from a test: usage
// `node automerge-client.mjs SERVER_URL`. Reads one JSON command per stdin line and
// answers each with one JSON line on stdout; every wait is bounded by the command's
// `timeout_ms` (default 10 s). The shared text is the document's `text` field.
import { Repo, splice, generateAutomergeUrl } from '@automerge/automerge-repo'
import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket'
import readline from 'node:readline'

const [serverUrl] = process.argv.slice(2)
const repo = new Repo({ network: [new WebSocketClientAdapter(serverUrl, 500)] })
let handle = null
const received = []

const reply = (value) => process.stdout.write(JSON.stringify(value) + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function until (check, timeoutMs) {
  const deadline = Date.now() + (timeoutMs ?? 10000)
  while (Date.now() < deadline) {
    if (check()) return true
    await sleep(20)
  }
  return check()
}
const text = () => String(handle?.doc()?.text ?? '')
const listen = (h) => {
  h.on('ephemeral-message', ({ message }) => received.push(message))
  return h
}

const handlers = {
  async new_url () {
    return { url: generateAutomergeUrl() }
  },
  async create (c) {
    handle = listen(repo.create({ text: c.text }))
    return { url: handle.url, text: text() }
  },
  async find (c) {
    const found = repo.find(c.url, { signal: AbortSignal.timeout(c.timeout_ms ?? 10000) })
    handle = listen(await found)
    return { text: text() }
  },
  async splice (c) {
    handle.change((d) => splice(d, ['text'], c.index ?? d.text.length, 0, c.text))
    return { text: text() }
  },
  async wait_text (c) {
    const ok = await until(() => text().includes(c.contains), c.timeout_ms)
    return ok ? { text: text() } : { error: 'timeout', text: text() }
  },
  async text () {
    return { text: text() }
  },
  async broadcast (c) {
    handle.broadcast(c.message)
    return { ok: true }
  },
  async wait_ephemeral (c) {
    const ok = await until(() => received.some((m) => JSON.stringify(m) === JSON.stringify(c.message)), c.timeout_ms)
    return ok ? { received } : { error: 'timeout', received }
  },
  async exit () {
    await repo.shutdown?.()
    reply({ ok: true })
    process.exit(0)
  }
}

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  if (!line.trim()) continue
  const command = JSON.parse(line)
  try {
    reply(await handlers[command.cmd](command))
  } catch (e) {
    reply({ error: String(e?.stack ?? e) })
  }
}
process.exit(0)

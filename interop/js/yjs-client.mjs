// An unmodified Yjs client (yjs + y-websocket's WebsocketProvider) driven line by line
// from a test: usage `node yjs-client.mjs SERVER_URL ROOM [TOKEN]`. Reads one JSON command
// per stdin line and answers each with one JSON line on stdout. Every wait is bounded by
// the command's `timeout_ms` (default 10 s). The shared text is the root text `body`.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const [serverUrl, room, token] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('body')
const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: WebSocket,
  params: token ? { token } : {},
  disableBc: true
})
const closes = []
provider.on('connection-close', (event) => {
  closes.push(event ? { code: event.code, reason: String(event.reason) } : null)
})

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
const peers = () => {
  const out = {}
  for (const [id, state] of provider.awareness.getStates()) {
    if (id !== doc.clientID) out[id] = state
  }
  return out
}

const handlers = {
  async wait_synced (c) {
    const ok = await until(() => provider.synced, c.timeout_ms)
    return ok ? { synced: true, text: text.toString() } : { error: 'not synced in time' }
  },
  async insert (c) {
    text.insert(c.index ?? text.length, c.text)
    return { text: text.toString() }
  },
  async wait_text (c) {
    const ok = await until(() => text.toString().includes(c.contains), c.timeout_ms)
    return ok ? { text: text.toString() } : { error: 'timeout', text: text.toString() }
  },
  async text () {
    return { text: text.toString() }
  },
  async awareness (c) {
    provider.awareness.setLocalStateField('user', c.user)
    return { ok: true }
  },
  async wait_peers (c) {
    const want = (p) => Object.values(p).map((s) => s.user?.name).filter(Boolean).sort()
    const ok = await until(
      () => JSON.stringify(want(peers())) === JSON.stringify([...c.names].sort()),
      c.timeout_ms
    )
    return ok ? { peers: want(peers()) } : { error: 'timeout', peers: want(peers()) }
  },
  // Sends an awareness query on the socket and waits for the server's awareness answer:
  // the server has then handled everything this connection sent before it.
  async roundtrip (c) {
    const ws = provider.ws
    if (!ws) return { error: 'not connected' }
    const answered = new Promise((resolve) => {
      const listener = (event) => {
        if (new Uint8Array(event.data)[0] === 1) {
          ws.removeEventListener('message', listener)
          resolve(true)
        }
      }
      ws.addEventListener('message', listener)
    })
    ws.send(new Uint8Array([3]))
    const ok = await Promise.race([answered, sleep(c.timeout_ms ?? 10000).then(() => false)])
    return ok ? { ok: true } : { error: 'no awareness answer' }
  },
  async wait_closed (c) {
    await until(() => closes.length > 0, c.timeout_ms)
    return { closes, synced: provider.synced }
  },
  async closes () {
    return { closes, connected: provider.wsconnected }
  },
  async exit () {
    provider.destroy()
    doc.destroy()
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
    reply({ error: String(e) })
  }
}
process.exit(0)

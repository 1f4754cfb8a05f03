// Types of the Concord browser API (concord.js). The engine's own generated types are in
// concord_wasm.d.ts (used inside the Worker).

export type DocKind = "automerge" | "yrs";
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Policy = "crdt" | "lww" | "keep-all" | `merge:${string}`;

export interface ValueVersion { value: Json; hlc: string | null }
export interface DocStatus { id: string; kind: DocKind; pending: number }
export interface SyncStatus {
  syncing: boolean;
  connected: boolean;
  retries: number;
  lastError: string | null;
  maxLsn: number;
  stopped?: string | null;
  /** Unacknowledged local updates per document. */
  pending: Record<string, number>;
}
export interface Peer { peer: number; deviceId: string; state: Json }
export interface PresenceEvent { docId: string; peers: Peer[] }
export interface ChangeEvent { docId: string; source: "local" | "remote" }

/** The one region where `a` and `b` differ (`index`, `del` units of `a`, `ins` in their
 *  place), never splitting a surrogate pair. */
export function textDiff(a: string, b: string): { index: number; del: number; ins: string };
/** Where position `pos` lies once `d` is applied (inside the replaced text: its start, or
 *  its end with `toEnd`). */
export function carryPos(pos: number, d: { index: number; del: number; ins: string }, toEnd: boolean): number;
/** Every region where `a` and `b` differ, apart and in order, each against `a` (from a
 *  shortest edit script by code point; one region when the texts differ too much to search). */
export function textEdits(a: string, b: string): { index: number; del: number; ins: string }[];
/** `carryPos` across every region of `textEdits(a, b)`: where position `pos` of `a` lies in `b`. */
export function carryPosThrough(pos: number, edits: { index: number; del: number; ins: string }[], toEnd: boolean): number;

export type Op =
  | { op: "put" | "insert" | "push" | "resolve"; path: string; value: Json }
  | { op: "delete"; path: string }
  | { op: "insertText"; path: string; index: number; text: string }
  | { op: "deleteText"; path: string; index: number; len: number }
  | { op: "spliceText"; path: string; index: number; delete: number; text: string }
  | { op: "increment"; path: string; by: number };

export interface OpenOptions {
  /** An ES module (loaded in the Worker) whose exports are merge functions by name:
   *  `(path: string, values: {value, origin, hlc}[]) => Json`. */
  mergeModule?: string | URL;
  workerUrl?: string | URL;
}

export declare class Store {
  static open(name: string, options?: OpenOptions): Promise<Store>;
  /** "opfs", or "memory" where OPFS is missing or another tab holds the store. */
  readonly storage: "opfs" | "memory";
  readonly warning: string | null;
  readonly deviceId: string;
  ensureDoc(id: string, kind?: DocKind): Promise<void>;
  documents(): Promise<{ id: string; kind: DocKind }[]>;
  get(id: string, path: string): Promise<Json>;
  toJson(id: string): Promise<Json>;
  put(id: string, path: string, value: Json): Promise<void>;
  delete(id: string, path: string): Promise<void>;
  push(id: string, path: string, value: Json): Promise<void>;
  spliceText(id: string, path: string, index: number, deleteCount: number, text: string): Promise<void>;
  /** `spliceText`s, each on the text as the caller saw it before it (`seen`, e.g. a text
   *  box's value before the keystroke): each range is carried over the edits others made
   *  since, and all are one commit, made in the same step as the read. For a text box that
   *  re-reads the store only now and then, and sends the keystrokes typed meanwhile at once. */
  spliceTextSeen(id: string, path: string, edits: { seen: string; index: number; deleteCount: number; text: string }[]): Promise<void>;
  increment(id: string, path: string, by?: number): Promise<void>;
  transaction(id: string, ops: Op[]): Promise<void>;
  setPolicy(id: string, pattern: string, policy: Policy): Promise<void>;
  getAll(id: string, path: string): Promise<ValueVersion[]>;
  conflicts(id: string): Promise<string[]>;
  resolve(id: string, path: string, value: Json): Promise<void>;
  status(): Promise<DocStatus[]>;
  syncStatus(): Promise<SyncStatus>;
  startSync(urls: string[], token?: string): Promise<SyncStatus>;
  stopSync(): Promise<SyncStatus>;
  onSyncStatus(listener: (status: SyncStatus) => void): () => void;
  /** Presence (awareness) on a document: shown to its other subscribers on the same relay
   *  node while connected; never stored. `null` withdraws it. */
  setPresence(docId: string, state: Json): Promise<void>;
  onPresence(listener: (event: PresenceEvent) => void): () => void;
  subscribe(docId: string | null, listener: (event: ChangeEvent) => void): Promise<() => Promise<void>>;
  close(): void;
}

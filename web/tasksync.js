// tasksync.js: the client side of the tasksync protocol, as a dependency-free ES module.
//
//   import { TaskSync } from './tasksync.js';
//   const ts = new TaskSync({ apiBase: '', gatewayUrl: 'ws://127.0.0.1:8005', token, userId });
//   ts.addEventListener('tasks', () => render(ts.tasks()));
//   ts.addEventListener('state', (e) => showState(e.detail.state));
//   ts.addEventListener('change', (e) => { if (!e.detail.own) toast(e.detail.event); });
//   ts.addEventListener('conflict', (e) => notice(e.detail));   // a change superseded
//   ts.addEventListener('rejected', (e) => notice(e.detail));   // a change refused or dropped
//   ts.start(); await ts.ready;
//   ts.create({ title: 'Buy groceries' }); ts.update(id, { completed: true }); ts.remove(id);
//   ts.moveTask(id, { before: otherId });
//
// The model. `server` is the user's list exactly as of event `seq` (the last applied
// sequence number): it changes only by applying events in seq order (or by a full
// reload from GET /api/v1/tasks, which comes with its seq). The list shown is `server`
// with the local changes not yet confirmed (`queue`, in the order they were made)
// applied on top: optimistic, and idempotent, so an own change that comes back as an
// event (recognised by origin == our X-Client-Id) is never applied twice.
//
// Delivery: the WebSocket (opened with a single-use ticket from POST /api/v1/ws-ticket,
// never the session token) pushes events; once the gateway says `connected` (or
// `catching_up`) the socket is attached and the client fetches /events?since=seq,
// buffering live events meanwhile; a live event with seq <= applied is ignored, one
// that skips ahead triggers a catch-up; a seq the API does not have (a hand-typed
// event) is reported once, answered with one full reload, then ignored; 410 reloads
// the list. While push is healthy a safety catch-up runs rarely (minutes, backing
// off to SAFETY_MAX, with jitter). When the socket cannot be opened, /events is
// polled every few seconds until it can.
//
// The queue: every change is one operation with an id (sent as Idempotency-Key, so a
// retry after a lost reply applies it once). Operations live in IndexedDB, shared by
// every tab of the user in this browser; one tab, holding a Web Lock, sends them in
// the order they were typed; the others learn of every change to the queue over a
// BroadcastChannel. A new operation is compacted with the queued ones of its task
// inside one IndexedDB transaction (see compact()); an operation being sent is never
// changed (its key and body are final).
//
// Merge rules (the API applies them; the client follows them): delete wins (a change
// to a deleted task answers 410 and is dropped, with a `rejected` event); a PATCH
// carries only the fields changed and the version they were based on; a field that
// someone else changed after that version keeps their value and comes back as a
// `conflict` event (yours/theirs); moves are made relative to the two neighbours the
// task was dropped between and fall back to the other neighbour when one is gone.

const BACKOFF_S = [1, 2, 4, 8, 16, 30];
const EVENT_TYPES = new Set(['task.created', 'task.updated', 'task.completed', 'task.deleted', 'task.reordered', 'task.moved']);
const LIST_EVENTS = new Set(['list.created', 'list.updated', 'list.deleted', 'list.shared', 'list.unshared']);
const ROLES = new Set(['owner', 'editor', 'viewer']);
const FIELDS = ['title', 'description', 'priority', 'due_at', 'completed'];
const LS = 'tasksync.';
const SNAPSHOT_DEBOUNCE_MS = 1000;
// Replies the API marked Idempotent-Replayed: the first reply to this change, which
// may be older than what the list shows (a replayed create of a task deleted since).
const REPLAYED = new WeakSet();

/** Connection states, in the `state` event's detail and `client.state`. */
export const STATE = Object.freeze({
  CONNECTING: 'connecting', // opening the WebSocket
  CATCHING_UP: 'catching_up', // socket open, fetching what was missed
  LIVE: 'live', // socket open, up to date
  POLLING: 'polling', // the socket cannot be opened: polling /events
  OFFLINE: 'offline', // the API cannot be reached (or the browser is offline)
  STOPPED: 'stopped',
});

/** A random RFC 4122 version 4 UUID. */
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The delay before reconnect attempt `attempt` (0-based): 1,2,4,8,16,30 s, +-20 % jitter. */
export function backoffDelayMs(attempt, rand = Math.random) {
  const base = BACKOFF_S[Math.min(attempt, BACKOFF_S.length - 1)] * 1000;
  return Math.round(base * (0.8 + 0.4 * rand()));
}

/** The delay before safety catch-up number `n` (0-based) while push is healthy:
 * `first`, doubling up to `max`, +-20 % jitter (so tabs opened together drift apart). */
export function safetyDelayMs(n, first, max, rand = Math.random) {
  const base = Math.min(first * 2 ** Math.min(n, 30), max);
  return Math.round(base * (0.8 + 0.4 * rand()));
}

/** An API answer other than 2xx. `status` 0 means the request did not reach the API. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || null;
    this.body = body || null;
  }
  get transient() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

function sessionOrNull() {
  try {
    const s = globalThis.sessionStorage;
    const k = `${LS}probe`;
    s.setItem(k, '1');
    s.removeItem(k);
    return s;
  } catch {
    return null; // private mode, sandboxed frame, node
  }
}

const clone = (v) => (v === undefined ? undefined : structuredClone(v));

// Positions are fractional-index keys (proto/task.schema.json): strings compared
// with plain string comparison (code units; the keys are ASCII), never numbers or a
// locale. A task with no key yet (created here, not confirmed) sorts after every
// keyed one, in the order it was made.
function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
function byPosition(a, b) {
  const ka = typeof a.position === 'string';
  const kb = typeof b.position === 'string';
  if (ka !== kb) return ka ? -1 : 1;
  return (ka ? cmp(a.position, b.position) : (a.localOrder || 0) - (b.localOrder || 0)) || cmp(a.id, b.id);
}
/** Queue order: the order typed (k: ms * 1000 + a per-tab counter), then the op id. */
function opOrder(a, b) {
  return a.k - b.k || cmp(a.opId, b.opId);
}

// ---- the queue's rules ------------------------------------------------------------

/**
 * Compaction: how a new operation `op` joins the queued operations of its task
 * (`ops`, in queue order). Pure; returns {put, del}: operations to write and ids to
 * delete (op itself is in put when it is queued as it is). Operations being sent
 * (`inflight`) are never changed. The rules:
 * - an edit after a queued create of the task (nothing of the task being sent)
 *   goes into the create;
 * - an edit right after a queued edit of the task merges into it (the later value of
 *   each field wins; the earlier base_version stays, as that is what was seen);
 * - a delete drops the queued edits and moves of its task; with the create also
 *   queued, the create, edits, moves and the delete all vanish;
 * - a move replaces a queued move of the same task.
 */
export function compact(ops, op) {
  const mine = ops.filter((o) => op.id != null && o.id === op.id && o.opId !== op.opId);
  const last = mine[mine.length - 1];
  const anyInflight = mine.some((o) => o.inflight);
  switch (op.kind) {
    case 'update': {
      if (last && !last.inflight && last.kind === 'create' && !anyInflight) {
        return { put: [{ ...last, body: { ...last.body, ...op.body } }], del: [] };
      }
      if (last && !last.inflight && last.kind === 'update') {
        return { put: [{ ...last, body: { ...last.body, ...op.body } }], del: [] };
      }
      return { put: [op], del: [] };
    }
    case 'delete': {
      const create = mine.find((o) => o.kind === 'create');
      if (create && !anyInflight) return { put: [], del: mine.map((o) => o.opId) };
      const drop = mine.filter((o) => !o.inflight && (o.kind === 'update' || o.kind === 'move'));
      return { put: [op], del: drop.map((o) => o.opId) };
    }
    case 'move': {
      const drop = mine.filter((o) => !o.inflight && o.kind === 'move' && o === last);
      return { put: [op], del: drop.map((o) => o.opId) };
    }
    default:
      return { put: [op], del: [] };
  }
}

/** After an own change to a task was applied at `version`: the edits of that task
 * queued after it were typed on top of it, so their base is that version. */
export function rebase(ops, done, version) {
  const put = [];
  if (Number.isInteger(version)) {
    for (const o of ops) {
      if (o.opId !== done.opId && !o.inflight && o.kind === 'update' && o.k > done.k && (o.base_version ?? 0) < version) {
        put.push({ ...o, base_version: version });
      }
    }
  }
  return { put, del: [done.opId] };
}

/**
 * Where a move goes, given which tasks exist (`has(id)`): before or after the anchor
 * the user named (op.prefer), else the other neighbour. null anchors are the ends.
 * Returns {before: id|null} or {after: id|null}, or null when both anchors are gone.
 */
export function resolveMove(op, has) {
  const tries = op.prefer === 'after' ? ['after', 'before'] : ['before', 'after'];
  for (const side of tries) {
    if (!(side in op) || op[side] === undefined) continue;
    const a = op[side];
    if (a === op.id) continue;
    if (a === null || has(a)) return { [side]: a };
  }
  return null;
}

// ---- storage: IndexedDB (the browser) or memory ------------------------------------

function quotaError(message) {
  const e = new Error(message || 'storage quota exceeded');
  e.name = 'QuotaExceededError';
  return e;
}

/** The queue and the cached list in memory: for node, tests, and browsers without
 * IndexedDB. The same instance given to two clients plays one browser's storage. */
export class MemoryStore {
  constructor({ maxOps = Infinity } = {}) {
    this.ops = new Map();
    this.meta = new Map();
    this.maxOps = maxOps;
  }
  async loadOps() {
    return [...this.ops.values()].map(clone).sort(opOrder);
  }
  async mutate(taskId, fn, { claim = false } = {}) {
    const mine = taskId == null ? [] : [...this.ops.values()].filter((o) => o.id === taskId).map(clone).sort(opOrder);
    const d = fn(mine) || {};
    const put = d.put || [];
    const del = d.del || [];
    const added = put.filter((o) => !this.ops.has(o.opId)).length;
    if (this.ops.size + added - del.length > this.maxOps) throw quotaError();
    for (const id of del) this.ops.delete(id);
    for (const o of put) this.ops.set(o.opId, clone(o));
    return claim ? { put, del, head: await this.claimHead() } : { put, del };
  }
  async claimHead() {
    const head = [...this.ops.values()].sort(opOrder)[0];
    if (!head) return null;
    head.inflight = true;
    return clone(head);
  }
  async getMeta(key) {
    return clone(this.meta.get(key));
  }
  async putMeta(key, value) {
    this.meta.set(key, clone(value));
  }
  close() {}
}

/** The queue and the cached list in IndexedDB: database `tasksync.<user>`, object
 * stores `ops` (keyPath opId; indexes `order` on k and `task` on id) and `meta`. Every
 * call is one transaction; readwrite transactions on `ops` run one at a time across
 * the tabs, which is what makes compaction and claiming safe. */
export class IdbStore {
  constructor(name) {
    this.name = name;
    this._db = null;
  }
  _open() {
    if (!this._db) {
      this._db = new Promise((resolve, reject) => {
        const rq = indexedDB.open(this.name, 1);
        rq.onupgradeneeded = () => {
          const db = rq.result;
          const ops = db.createObjectStore('ops', { keyPath: 'opId' });
          ops.createIndex('order', 'k');
          ops.createIndex('task', 'id');
          db.createObjectStore('meta');
        };
        rq.onsuccess = () => {
          const db = rq.result;
          db.onversionchange = () => db.close();
          resolve(db);
        };
        rq.onerror = () => reject(rq.error);
      });
      this._db.catch(() => {
        this._db = null;
      });
    }
    return this._db;
  }
  async _tx(names, mode, body) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      let tx;
      try {
        // Relaxed: committed to the OS, not fsynced each time (Chromium's default syncs
        // every readwrite transaction: two per change sent, which ran at ~3 changes/s
        // on a busy disk). A tab or browser crash keeps the queue; a power cut may
        // lose the last moments, which the API's idempotency keys make safe to replay.
        tx = db.transaction(names, mode, { durability: 'relaxed' });
      } catch (e) {
        reject(e);
        return;
      }
      const out = { value: undefined };
      tx.oncomplete = () => resolve(out.value);
      tx.onabort = () => reject(tx.error || out.error || new Error('transaction aborted'));
      try {
        body(tx, out);
      } catch (e) {
        out.error = e;
        try {
          tx.abort();
        } catch {
          /* already finished */
        }
      }
    });
  }
  loadOps() {
    return this._tx(['ops'], 'readonly', (tx, out) => {
      const rq = tx.objectStore('ops').index('order').getAll();
      rq.onsuccess = () => {
        out.value = rq.result.sort(opOrder);
      };
    });
  }
  // With claim, the same transaction also claims the head of the queue (out.head):
  // the sending tab confirms one change and takes the next in one commit.
  mutate(taskId, fn, { claim = false } = {}) {
    return this._tx(['ops'], 'readwrite', (tx, out) => {
      const st = tx.objectStore('ops');
      const apply = (mine) => {
        const d = fn(mine.sort(opOrder)) || {};
        for (const id of d.del || []) st.delete(id);
        for (const o of d.put || []) st.put(o);
        out.value = { put: d.put || [], del: d.del || [] };
        if (claim) IdbStore._claim(st, out.value);
      };
      if (taskId == null) {
        apply([]);
        return;
      }
      const rq = st.index('task').getAll(taskId);
      rq.onsuccess = () => {
        try {
          apply(rq.result);
        } catch (e) {
          out.error = e;
          tx.abort();
        }
      };
    });
  }
  claimHead() {
    return this._tx(['ops'], 'readwrite', (tx, out) => {
      out.value = { head: null };
      IdbStore._claim(tx.objectStore('ops'), out.value);
    }).then((r) => r.head);
  }
  // The first change of the queue, marked as being sent (into res.head).
  static _claim(st, res) {
    res.head = null;
    const rq = st.index('order').openCursor();
    rq.onsuccess = () => {
      const cur = rq.result;
      if (!cur) return;
      const op = cur.value;
      if (!op.inflight) {
        op.inflight = true;
        cur.update(op);
      }
      res.head = op;
    };
  }
  getMeta(key) {
    return this._tx(['meta'], 'readonly', (tx, out) => {
      const rq = tx.objectStore('meta').get(key);
      rq.onsuccess = () => {
        out.value = rq.result;
      };
    });
  }
  putMeta(key, value) {
    return this._tx(['meta'], 'readwrite', (tx) => {
      tx.objectStore('meta').put(value, key);
    });
  }
  close() {
    if (this._db) this._db.then((db) => db.close()).catch(() => {});
    this._db = null;
  }
}

function defaultStore(userId) {
  if (globalThis.indexedDB) return new IdbStore(`${LS}${userId}`);
  return new MemoryStore();
}

// ---- list helpers -------------------------------------------------------------------

// An order (ids) applied to an order of ids: listed ids first in that order, the
// others after them in their relative order (what PUT /api/v1/tasks/order does).
function applyOrderIds(ids, order, has) {
  const out = [];
  const listed = new Set();
  for (const id of order) {
    if (has(id) && !listed.has(id)) {
      out.push(id);
      listed.add(id);
    }
  }
  for (const id of ids) if (!listed.has(id)) out.push(id);
  return out;
}

// A task or event from before position keys (integer positions, an order array): the
// list must be reloaded from the API.
function isLegacy(ev) {
  return Array.isArray(ev.order) || (ev.task && typeof ev.task.position === 'number');
}

// The client id of this tab: kept in sessionStorage so that it survives a reload (its
// echoes stay its own), but not copied into a duplicated tab: a tab that finds an id
// without the flag its own unload left is a copy and takes a new one.
function tabClientId(session) {
  if (!session) return uuid();
  let id = session.getItem(`${LS}clientId`);
  const unloaded = session.getItem(`${LS}unloaded`) === '1';
  session.removeItem(`${LS}unloaded`);
  if (!id || !unloaded) {
    id = uuid();
    session.setItem(`${LS}clientId`, id);
  }
  if (typeof addEventListener === 'function') {
    addEventListener('pagehide', () => {
      try {
        session.setItem(`${LS}unloaded`, '1');
      } catch {
        /* ignore */
      }
    });
  }
  return id;
}

// The confirmed tasks of every list, by id, with an index by list kept as they are set
// and deleted: tasks() reads the list shown without scanning the others. The index is
// by the task's list_id as stored ('' for none: tasks from before lists, which are the
// default list's); of(null, defaultId) is the default list's tasks.
class TaskMap extends Map {
  constructor(entries) {
    super();
    this._by = new Map();
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }
  _bucket(listId, make) {
    const k = listId || '';
    let b = this._by.get(k);
    if (!b && make) this._by.set(k, (b = new Map()));
    return b;
  }
  set(id, t) {
    const old = super.get(id);
    if (old && (old.list_id || '') !== ((t && t.list_id) || '')) this._bucket(old.list_id, false)?.delete(id);
    this._bucket(t && t.list_id, true).set(id, t);
    return super.set(id, t);
  }
  delete(id) {
    const old = super.get(id);
    if (old) this._bucket(old.list_id, false)?.delete(id);
    return super.delete(id);
  }
  clear() {
    this._by.clear();
    super.clear();
  }
  /** The tasks of one list (null: the default list, `defaultId` when known). Read only. */
  of(listId, defaultId) {
    if (listId) return this._bucket(listId, false) || EMPTY;
    const a = this._bucket('', false);
    const b = defaultId ? this._bucket(defaultId, false) : null;
    if (!a || !a.size) return b || EMPTY;
    if (!b || !b.size) return a;
    return new Map([...a, ...b]);
  }
}
const EMPTY = new Map();

export class TaskSync extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.token        bearer token (JWT) of the user (sent to apiBase only)
   * @param {string} o.userId       the user id the token is for (keys local storage)
   * @param {string} [o.apiBase]    base URL of backend-api ('' = same origin)
   * @param {string} [o.gatewayUrl] ws://host:port or ws://host:port/ws; null = poll only
   * @param {function} [o.refreshToken] async () => a fresh token, or null (4001 / 401)
   * @param {number} [o.pollIntervalMs]  /events period while the socket cannot open (3 s)
   * @param {number} [o.safetySyncMs]    first safety catch-up while push is healthy (2 min)
   * @param {number} [o.safetySyncMaxMs] it doubles up to this (15 min)
   * @param {number} [o.drainSpreadMs]   after a gateway drain (1001), reconnect within this (10 s)
   * @param {number} [o.pongTimeoutMs]   a ping unanswered this long: the socket is dead (10 s)
   * @param {object} [o.store]     a MemoryStore or IdbStore (default: IndexedDB, else memory)
   * @param {boolean} [o.useLocks] elect one sending tab with navigator.locks (default: when present)
   */
  constructor(o) {
    super();
    if (!o || !o.token || !o.userId) throw new TypeError('TaskSync: token and userId are required');
    this.token = o.token;
    this.userId = o.userId;
    this.refreshToken = typeof o.refreshToken === 'function' ? o.refreshToken : null;
    this.apiBase = (o.apiBase || '').replace(/\/+$/, '');
    this.gatewayUrl = o.gatewayUrl || null;
    this.pollIntervalMs = o.pollIntervalMs ?? 3000;
    this.stableAfterMs = o.stableAfterMs ?? 10000;
    this.safetySyncMs = o.safetySyncMs ?? 120000;
    this.safetySyncMaxMs = o.safetySyncMaxMs ?? 900000;
    this.drainSpreadMs = o.drainSpreadMs ?? 10000;
    this.pongTimeoutMs = o.pongTimeoutMs ?? 10000;
    this.pageLimit = o.pageLimit ?? 500;
    this.store = o.store || defaultStore(o.userId);
    this.useLocks = o.useLocks ?? !!(globalThis.navigator && navigator.locks);
    this.session = sessionOrNull();
    this.clientId = o.clientId || tabClientId(this.session);

    this.state = STATE.STOPPED;
    this.seq = null; // last applied seq; null = no list loaded yet
    this.server = new TaskMap(); // id -> task (of every list; task.list_id names it), as of seq
    this.deleted = new Map(); // id -> the list it was deleted from: a late upsert there never brings it back
    this.defaultListId = null; // the user's default list (GET /api/v1/tasks answers it)
    this.listId = null; // the list shown by tasks() (null: the default list)
    this.listMeta = new Map(); // list id -> {id, name, owner_id, default, role, member_count, members|null}
    this.goneLists = new Set(); // lists unshared or deleted: their later events are ignored
    this.presence = new Map(); // list id -> [{user_id, devices}] as the gateway last said
    this._presenceSubs = new Set(); // lists whose presence this client asked for
    this._listFetch = new Map(); // list id -> its running GET (single flight)
    this.queue = []; // this browser's changes not yet confirmed by the API, in order (a mirror of the store)
    this.confirmedMoves = new Map(); // id -> {position, seq}: a confirmed move until its event is applied
    this.confirmedOrder = null; // {positions, seq}: a confirmed renumbering until its event is applied
    this.leader = false; // this tab sends the queue
    this._volatile = []; // changes the store refused (quota): sent by this tab itself
    this._view = null; // tasks() cached until something changes
    this._memo = new WeakMap(); // queued change -> the task it shows (see _shown)
    this._order = null; // [{id, position}] of the last sort of server (see tasks())
    this._lastK = 0;
    this._forceReload = false; // a legacy event was seen: reload the list
    this._unknownSeqs = new Set(); // seqs the API did not have: reported, reloaded once, then ignored
    this.appliedSeqs = []; // seqs applied, in order (diagnostics and tests)
    this.apiReachable = true;
    this.stats = { applied: 0, ignored: 0, catchups: 0, eventRequests: 0, reloads: 0, reconnects: 0, polls: 0, sent: 0, safety: 0, pings: 0, pongs: 0, unknownSeq: 0, sendMs: 0, storeMs: 0 };

    this._ws = null;
    this._wsOpen = false; // the gateway attached the socket (connected / catching_up seen)
    this._gwCatchingUp = false; // the gateway said catching_up: not reading Kafka yet
    this._attempt = 0; // consecutive failed connection attempts (backoff index)
    this._buffer = []; // live events received while catching up
    this._syncing = null; // the running catch-up (a promise), single flight
    this._syncAgain = false;
    this._flushing = null;
    this._persist = Promise.resolve(); // queue writes, in order
    this._reconnectTimer = null;
    this._pollTimer = null;
    this._flushTimer = null;
    this._safetyTimer = null;
    this._safetyN = 0;
    this._snapTimer = null;
    this._flushAttempt = 0;
    this._heartbeat = null;
    this._stopped = true;
    this._channel = null;
    this._lockAbort = null;
    this._releaseLock = null;
    this.ready = Promise.resolve();
    this._onOnline = () => this._wake();
    this._onOffline = () => this._updateState();
    this._onVisible = () => {
      if (!globalThis.document) return;
      if (document.visibilityState === 'visible') this._wake();
      else this._saveSnapshotNow(); // the last moment a page is sure to run
    };
    this._onHide = () => this._saveSnapshotNow();
  }

  // ---- public API ------------------------------------------------------------

  /** Starts syncing: shows the cached list and queue (`ready` resolves once they are
   * loaded), then catches up, connects and sends the queue. */
  start() {
    if (!this._stopped) return this;
    this._stopped = false;
    if (typeof BroadcastChannel === 'function') {
      this._channel = new BroadcastChannel(`${LS}${this.userId}`);
      this._channel.onmessage = (m) => this._onChannel(m.data);
    }
    if (typeof addEventListener === 'function') {
      addEventListener('online', this._onOnline);
      addEventListener('offline', this._onOffline);
      addEventListener('pagehide', this._onHide);
    }
    if (globalThis.document) document.addEventListener('visibilitychange', this._onVisible);
    this.ready = this._load().then(() => {
      if (this._stopped) return;
      this._electLeader();
      this._connect();
      this.sync();
      this.flush();
    });
    return this;
  }

  async _load() {
    try {
      const snap = await this.store.getMeta('snapshot');
      // A snapshot from before position keys is not used (the list is reloaded).
      if (this.seq === null && snap && Array.isArray(snap.tasks) && Number.isInteger(snap.seq) && snap.tasks.every((t) => t && typeof t.position === 'string')) {
        this.server = new TaskMap(snap.tasks.filter((t) => t && typeof t.id === 'string').map((t) => [t.id, t]));
        this.seq = snap.seq;
        if (typeof snap.defaultListId === 'string') this.defaultListId = snap.defaultListId;
        if (Array.isArray(snap.lists)) for (const l of snap.lists) if (l && typeof l.id === 'string') this.listMeta.set(l.id, l);
        if (Array.isArray(snap.gone)) for (const id of snap.gone) if (typeof id === 'string') this.goneLists.add(id);
      }
      await this._adoptLegacyQueues();
      this.queue = await this.store.loadOps();
    } catch (e) {
      this._storageError(e);
    }
    this._changed();
  }

  // Queues an older version of this library left in localStorage: moved into the store.
  async _adoptLegacyQueues() {
    let ls;
    try {
      ls = globalThis.localStorage;
      if (!ls) return;
    } catch {
      return;
    }
    const prefix = `${LS}queue.${this.userId}.`;
    for (let i = ls.length - 1; i >= 0; i--) {
      const key = ls.key(i);
      if (!key || !key.startsWith(prefix)) continue;
      let ops = [];
      try {
        ops = JSON.parse(ls.getItem(key)) || [];
      } catch {
        /* unreadable: dropped */
      }
      for (const op of Array.isArray(ops) ? ops : []) {
        if (!op || typeof op.kind !== 'string') continue;
        op.opId = op.opId || uuid();
        op.k = this._nextK();
        await this.store.mutate(op.id, () => ({ put: [op], del: [] }));
      }
      ls.removeItem(key);
    }
    ls.removeItem(`${LS}snapshot.${this.userId}`);
  }

  /** Stops every timer and the socket; the queue stays in the store. */
  stop() {
    if (this._stopped) return;
    this._saveSnapshotNow();
    this._stopped = true;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._flushTimer);
    clearTimeout(this._safetyTimer);
    this._stopPolling();
    this._stopHeartbeat();
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(1000, 'stop');
      } catch {
        /* ignore */
      }
    }
    this._wsOpen = false;
    if (this._lockAbort) this._lockAbort.abort();
    if (this._releaseLock) this._releaseLock();
    this.leader = false;
    if (this._channel) this._channel.close();
    this._channel = null;
    if (typeof removeEventListener === 'function') {
      removeEventListener('online', this._onOnline);
      removeEventListener('offline', this._onOffline);
      removeEventListener('pagehide', this._onHide);
    }
    if (globalThis.document) document.removeEventListener('visibilitychange', this._onVisible);
    this._setState(STATE.STOPPED);
  }

  /** The list as shown (the selected list, or `listId`): confirmed state plus local
   * changes, in display order. The array and the task objects are shared until
   * something changes: do not modify. */
  tasks(listId) {
    const want = this._norm(listId === undefined ? this.listId : listId);
    const cached = want === this._norm(this.listId);
    if (cached && this._view) return this._view;
    // The list's own map (kept by TaskMap as tasks come and go: no scan of every list).
    let m = this.server.of(want, this.defaultListId);
    const plain = !(this.confirmedOrder || this.confirmedMoves.size);
    if (!plain) {
      m = new Map(m);
      if (this.confirmedOrder) {
        for (const [id, position] of Object.entries(this.confirmedOrder.positions)) {
          const t = m.get(id);
          if (t) m.set(id, { ...t, position });
        }
      }
      for (const [id, c] of this.confirmedMoves) {
        const t = m.get(id);
        if (t) m.set(id, { ...t, position: c.position });
      }
    }
    // The order of the last sort is reused while no task came, went or moved (the
    // common case: fields changed): checking it is linear, sorting is not.
    let list = null;
    const o = cached && plain && this._orderList === want ? this._order : null;
    if (o && o.length === m.size) {
      list = new Array(o.length);
      for (let i = 0; i < o.length; i++) {
        const t = m.get(o[i].id);
        if (!t || t.position !== o[i].position) {
          list = null;
          break;
        }
        list[i] = t;
      }
    }
    if (!list) {
      list = [...m.values()].sort(byPosition);
      if (cached) {
        this._order = plain ? list.map((t) => ({ id: t.id, position: t.position })) : null;
        this._orderList = want;
      }
    }
    const all = this._volatile.length ? [...this.queue, ...this._volatile] : this.queue;
    const ops = all.filter((op) => this._norm(op.list) === want || (op.kind === 'move' && op.to && this._norm(op.to) === want));
    if (ops.length) list = this._applyQueue(list, ops, want);
    if (cached) this._view = list;
    return list;
  }

  // A list id with the default list as null (the key tasks() filters by).
  _norm(listId) {
    return !listId || listId === this.defaultListId ? null : listId;
  }

  _listOfTask(t) {
    return this._norm(t.list_id);
  }

  // The list a task is in: as the API has it, else as a queued create put it.
  _listOf(id) {
    const t = this.server.get(id);
    if (t) return this._norm(t.list_id);
    const c = this.queue.find((o) => o.id === id && o.kind === 'create');
    return c ? this._norm(c.list) : this._norm(this.listId);
  }

  // True when the id is deleted in that list (a tombstone of another list, left by a
  // move between lists, is cleared instead: the task lives on there).
  _tomb(id, listId) {
    if (!this.deleted.has(id)) return false;
    const d = this.deleted.get(id);
    if (listId !== undefined && this._norm(d) !== this._norm(listId)) {
      this.deleted.delete(id);
      return false;
    }
    return true;
  }

  // The queued changes applied to the list shown (display order kept).
  _applyQueue(list, ops, want = null) {
    const byId = new Map(list.map((t) => [t.id, t]));
    let ids = list.map((t) => t.id);
    const has = (id) => byId.has(id);
    for (const op of ops) {
      switch (op.kind) {
        case 'create':
          if (!byId.has(op.id) && !this.deleted.has(op.id)) {
            byId.set(op.id, this._shown(op, null, () => ({ completed: false, ...op.body, localOrder: op.k, version: 0, created_at: op.at, updated_at: op.at, pending: true })));
            ids.push(op.id);
          }
          break;
        case 'update': {
          const t = byId.get(op.id);
          if (t) byId.set(op.id, this._shown(op, t, () => ({ ...t, ...op.body, pending: true })));
          break;
        }
        case 'delete':
          byId.delete(op.id);
          break;
        case 'move': {
          if (op.to && this._norm(op.to) !== this._norm(op.list)) {
            // Into another list: gone from this one, at the end of that one.
            if (this._norm(op.list) === want) {
              byId.delete(op.id);
            } else if (!byId.has(op.id)) {
              const t = this.server.get(op.id);
              if (t) {
                byId.set(op.id, this._shown(op, t, () => ({ ...t, list_id: op.to, position: undefined, localOrder: op.k, pending: true })));
                ids.push(op.id);
              }
            }
            break;
          }
          if (!byId.has(op.id)) break;
          const where = resolveMove(op, has);
          if (!where) break;
          const rest = ids.filter((x) => x !== op.id);
          let at;
          if ('before' in where) at = where.before === null ? rest.length : rest.indexOf(where.before);
          else at = where.after === null ? 0 : rest.indexOf(where.after) + 1;
          if (at < 0) break;
          rest.splice(at, 0, op.id);
          ids = rest;
          break;
        }
        case 'reorder':
          ids = applyOrderIds(ids, op.order, has);
          break;
        default:
          break;
      }
    }
    const seen = new Set();
    const out = [];
    for (const id of ids) {
      if (seen.has(id) || !byId.has(id)) continue;
      seen.add(id);
      out.push(byId.get(id));
    }
    return out;
  }

  // The task a queued change shows, made once per (change, task it applies to): the
  // same object from one view to the next, so a page redraws only what changed.
  _shown(op, base, make) {
    const memo = this._memo.get(op);
    if (memo && memo.base === base) return memo.task;
    const task = make();
    this._memo.set(op, { base, task });
    return task;
  }

  /** Number of local changes the API has not confirmed yet (every tab's). */
  get pending() {
    return this.queue.length + this._volatile.length;
  }

  /** Adds a task at the end of the selected list (or of `fields.list_id`). Returns
   * the (optimistic) task; its id is final. null when the list is read-only here. */
  create(fields) {
    const title = String(fields.title ?? '').trim();
    if (!title) throw new RangeError('title must not be empty');
    const list = this._norm(fields.list_id === undefined ? this.listId : fields.list_id);
    if (this._readOnly(list, { kind: 'create', title })) return null;
    const now = new Date().toISOString();
    const body = {
      id: fields.id || uuid(),
      title,
      description: fields.description ?? null,
      priority: fields.priority || 'medium',
      due_at: fields.due_at ?? null,
    };
    if (fields.completed) body.completed = true;
    if (list) body.list_id = list;
    this._enqueue({ kind: 'create', id: body.id, body, at: now, list });
    return { completed: false, ...body, version: 0, created_at: now, updated_at: now, pending: true };
  }

  /** Changes some of {title, description, priority, due_at, completed}: only the
   * fields given are sent, with the version they were based on: `baseVersion`, or the
   * confirmed version now (an editor passes the version it opened on). */
  update(id, fields, { baseVersion } = {}) {
    const body = {};
    for (const k of FIELDS) {
      if (fields[k] !== undefined) body[k] = k === 'title' ? String(fields[k]).trim() : fields[k];
    }
    if (body.title === '') throw new RangeError('title must not be empty');
    if (!Object.keys(body).length) return null;
    const list = this._listOf(id);
    if (this._readOnly(list, { kind: 'update', id, body })) return null;
    const cur = this.server.get(id);
    const base = Number.isInteger(baseVersion) && baseVersion > 0 ? baseVersion : cur && Number.isInteger(cur.version) && cur.version > 0 ? cur.version : undefined;
    const op = { kind: 'update', id, body, at: new Date().toISOString(), list };
    if (base !== undefined) op.base_version = base;
    return this._enqueue(op);
  }

  /** The confirmed version of a task (what an editor should pass as baseVersion). */
  versionOf(id) {
    const t = this.server.get(id);
    return t && Number.isInteger(t.version) ? t.version : undefined;
  }

  toggle(id) {
    const t = this.tasks().find((x) => x.id === id);
    if (t) this.update(id, { completed: !t.completed });
  }

  /** Deletes a task. Returns the operation's id (for cancel()). */
  remove(id) {
    const list = this._listOf(id);
    if (this._readOnly(list, { kind: 'delete', id })) return null;
    return this._enqueue({ kind: 'delete', id, list });
  }

  /** Resolves once every change made so far is written to the store (IndexedDB). */
  persisted() {
    return this._persist;
  }

  /** Takes back a queued change that is not being sent yet. Returns true if it was. */
  async cancel(opId) {
    await this._persist;
    const op = this.queue.find((o) => o.opId === opId);
    if (!op || op.inflight) return false;
    let ok = false;
    try {
      const d = await this.store.mutate(op.id, (ops) => {
        const o = ops.find((x) => x.opId === opId);
        ok = !!o && !o.inflight;
        return ok ? { put: [], del: [opId] } : { put: [], del: [] };
      });
      this._applyDelta(d, true);
    } catch (e) {
      this._storageError(e);
    }
    return ok;
  }

  /** Sets the whole display order; `order` lists task ids. For small lists only (the
   * API renumbers at most 1,000 tasks); `move` works for any list. */
  reorder(order) {
    const list = this._norm(this.listId);
    if (this._readOnly(list, { kind: 'reorder' })) return;
    this._enqueue({ kind: 'reorder', order: [...order], list });
  }

  /** Moves a task `delta` places (-1 up, +1 down) or to index `to` when given. */
  move(id, delta, to) {
    const ids = this.tasks().map((t) => t.id);
    const from = ids.indexOf(id);
    if (from < 0) return;
    const dest = to !== undefined ? to : from + delta;
    if (dest < 0 || dest >= ids.length || dest === from) return;
    ids.splice(from, 1);
    // The top and the end are kept as such; otherwise the task jumped over is named.
    const prefer = dest === 0 ? 'after' : dest === ids.length ? 'before' : dest < from ? 'before' : 'after';
    const list = this._listOf(id);
    if (this._readOnly(list, { kind: 'move', id })) return;
    this._enqueue({ kind: 'move', id, after: dest === 0 ? null : ids[dest - 1], before: dest < ids.length ? ids[dest] : null, prefer, list });
  }

  /** Moves a task relative to another: {before: id|null} (null: the end) or
   * {after: id|null} (null: the top). The other neighbour is recorded too, so the
   * move still lands in place if the one named is deleted meanwhile. Dropping a
   * task on itself changes nothing. */
  moveTask(id, where) {
    const ids = this.tasks().map((t) => t.id).filter((x) => x !== id);
    const op = { kind: 'move', id };
    if ('before' in where) {
      if (where.before === id) return;
      const i = where.before === null ? ids.length : ids.indexOf(where.before);
      op.before = where.before;
      op.after = i > 0 ? ids[i - 1] : i === 0 ? null : undefined;
      op.prefer = 'before';
    } else {
      const a = where.after ?? null;
      if (a === id) return;
      const i = a === null ? -1 : ids.indexOf(a);
      op.after = a;
      op.before = a === null ? (ids[0] ?? null) : i >= 0 ? (ids[i + 1] ?? null) : undefined;
      op.prefer = 'after';
    }
    if (op.after === undefined) delete op.after;
    if (op.before === undefined) delete op.before;
    // Already there: nothing to do.
    const cur = this.tasks().map((t) => t.id);
    const at = cur.indexOf(id);
    if (at >= 0 && (op.prefer === 'before' ? (cur[at + 1] ?? null) === op.before : (at > 0 ? cur[at - 1] : null) === op.after)) return;
    op.list = this._listOf(id);
    if (this._readOnly(op.list, { kind: 'move', id })) return;
    this._enqueue(op);
  }

  /** Moves a task into another list (at its end). Both lists must be writable. */
  moveToList(id, listId) {
    const from = this._listOf(id);
    const to = this._norm(listId);
    if (from === to) return null;
    if (this._readOnly(from, { kind: 'move', id }) || this._readOnly(to, { kind: 'move', id })) return null;
    return this._enqueue({ kind: 'move', id, before: null, prefer: 'before', list: from, to: to || this.defaultListId });
  }

  // ---- lists -----------------------------------------------------------------

  /** The lists the user is a member of: the default list first, then by name. Each
   * {id, name, owner_id, default, role, member_count, members: [{user_id, role}] |
   * null (not fetched yet: listDetail())}. */
  lists() {
    return [...this.listMeta.values()].sort((a, b) => (b.default ? 1 : 0) - (a.default ? 1 : 0) || cmp(a.name || '', b.name || '') || cmp(a.id, b.id));
  }

  /** One list's metadata (null: not a list of the user). The default list: null or its id. */
  list(listId) {
    const id = listId || this.defaultListId;
    return (id && this.listMeta.get(id)) || null;
  }

  /** Shows `listId` (null: the default list): tasks() is that list from now on. */
  select(listId) {
    const id = this._norm(listId);
    if (id === this._norm(this.listId)) return;
    this.listId = id;
    this._view = null;
    this._order = null;
    this._emit('select', { listId: id || this.defaultListId });
    this._changed();
  }

  /** The list shown (its id; the default list's when known). */
  get selectedListId() {
    return this.listId || this.defaultListId;
  }

  /** The user's role in a list ('owner' in the default list), or null when unknown. */
  roleOf(listId) {
    const l = this.list(listId);
    if (l && ROLES.has(l.role)) return l.role;
    return !listId || listId === this.defaultListId ? 'owner' : null;
  }

  // A viewer's write is refused here, before it is queued: nothing changes and a
  // `rejected` event (code forbidden, local: true) says why. The API would answer 403.
  _readOnly(list, what) {
    if (this.roleOf(list) !== 'viewer') return false;
    const l = this.list(list);
    const error = new ApiError(403, 'forbidden', `you are a viewer of “${l ? l.name : 'this list'}”: only its owner and editors can change it`);
    const t = what.id ? this.server.get(what.id) : null;
    this._emit('rejected', { op: { ...what, list }, error, id: what.id || null, title: (t && t.title) || what.title || null, local: true, listId: list || this.defaultListId });
    return true;
  }

  /** Creates a list owned by the user. Resolves to the list. */
  async createList(name, { id } = {}) {
    const body = { id: id || uuid(), name: String(name ?? '').trim() };
    if (!body.name) throw new RangeError('name must not be empty');
    const l = await this._api('POST', '/api/v1/lists', body);
    this._putList(l);
    return this.list(l.id);
  }

  /** Renames a list (the owner). */
  async renameList(listId, name) {
    const l = await this._api('PATCH', `/api/v1/lists/${encodeURIComponent(listId)}`, { name: String(name ?? '').trim() });
    this._putList(l);
    return this.list(listId);
  }

  /** Deletes a list and its tasks (the owner). */
  async deleteList(listId) {
    await this._api('DELETE', `/api/v1/lists/${encodeURIComponent(listId)}`);
    await this._dropList(listId, 'deleted');
  }

  /** The list with its members (fetched now; lists() has them afterwards). */
  async listDetail(listId) {
    const id = listId || this.defaultListId;
    if (!id) return null;
    if (this._listFetch.has(id)) return this._listFetch.get(id);
    const p = (async () => {
      try {
        const l = await this._api('GET', `/api/v1/lists/${encodeURIComponent(id)}`);
        if (this.goneLists.has(id)) return null;
        this._putList(l);
        return this.list(id);
      } catch (e) {
        if (e.status === 404) {
          await this._dropList(id, 'unshared');
          return null;
        }
        throw e;
      } finally {
        this._listFetch.delete(id);
      }
    })();
    this._listFetch.set(id, p);
    return p;
  }

  /** Shares a list with a user (or changes their role): role 'editor' or 'viewer'. */
  async share(listId, userId, role) {
    const r = await this._api('POST', `/api/v1/lists/${encodeURIComponent(listId)}/members`, { user_id: userId, role });
    await this.listDetail(listId).catch(() => null);
    return r;
  }

  /** Removes a member (the owner). */
  async unshare(listId, userId) {
    await this._api('DELETE', `/api/v1/lists/${encodeURIComponent(listId)}/members/${encodeURIComponent(userId)}`);
    if (userId === this.userId) await this._dropList(listId, 'left');
    else await this.listDetail(listId).catch(() => null);
  }

  /** Leaves a list (not its owner: transfer first). */
  leave(listId) {
    return this.unshare(listId, this.userId);
  }

  /** Makes a member the owner; the user stays as an editor. */
  async transfer(listId, userId) {
    const l = await this._api('POST', `/api/v1/lists/${encodeURIComponent(listId)}/owner`, { user_id: userId });
    this._putList(l);
    await this.listDetail(listId).catch(() => null);
    return this.list(listId);
  }

  // Someone acting in or present on a list who is not among its members as known here
  // (a member added or removed from another device: the API tells only the member
  // concerned): the list's members are fetched again, at most every 2 s per list.
  _noteMember(listId, userId) {
    const l = this.listMeta.get(listId);
    if (!l || l.default || (l.members && l.members.some((m) => m.user_id === userId))) return;
    const now = Date.now();
    this._memberRefresh = this._memberRefresh || new Map();
    if (now - (this._memberRefresh.get(listId) || 0) < 2000) return;
    this._memberRefresh.set(listId, now);
    this.listDetail(listId).catch(() => {});
  }

  // A list as the API or an event gave it, merged into what is known of it.
  _putList(l) {
    if (!l || typeof l.id !== 'string') return;
    if (l.default) this._setDefaultList(l.id);
    const cur = this.listMeta.get(l.id) || { members: null, member_count: 1 };
    const next = { ...cur };
    for (const k of ['name', 'owner_id', 'default']) if (l[k] !== undefined) next[k] = l[k];
    next.id = l.id;
    if (ROLES.has(l.role)) next.role = l.role;
    if (Array.isArray(l.members)) {
      next.members = l.members.filter((m) => m && typeof m.user_id === 'string');
      next.member_count = next.members.length;
    } else if (Number.isInteger(l.members)) {
      next.member_count = l.members;
    }
    this.goneLists.delete(l.id);
    this.listMeta.set(l.id, next);
    this._emit('lists', { lists: this.lists() });
    this._saveSnapshot();
  }

  _setDefaultList(id) {
    if (this.defaultListId === id) return;
    this.defaultListId = id;
    this._view = null;
    this._order = null;
  }

  // A list the user lost (unshared, deleted, left): its tasks go, its later events are
  // ignored, and the changes queued to it are dropped (each reported as `rejected`).
  async _dropList(listId, reason) {
    const id = this._norm(listId);
    if (!id) return;
    this.goneLists.add(id);
    if (this.goneLists.size > 10000) this.goneLists.delete(this.goneLists.values().next().value);
    const meta = this.listMeta.get(id);
    this.listMeta.delete(id);
    for (const [tid, t] of this.server) if (this._listOfTask(t) === id) this.server.delete(tid);
    this.presence.delete(id);
    if (this._presenceSubs.has(id)) this.unsubscribePresence(id);
    const shownHere = this._norm(this.listId) === id;
    if (shownHere) this.listId = null;
    // Every change to the list goes, the one being sent too: the API refuses it now (a
    // send under way ends as refused, and is not reported twice).
    const drop = (ops) => ops.filter((o) => this._norm(o.list) === id || (o.to && this._norm(o.to) === id));
    const vol = drop(this._volatile);
    this._volatile = this._volatile.filter((o) => !vol.includes(o));
    let dropped = vol;
    try {
      await this._persist;
      const all = await this.store.loadOps();
      const ids = drop(all).map((o) => o.opId);
      if (ids.length) {
        const d = await this.store.mutate(null, () => ({ put: [], del: ids }));
        this._applyDelta(d, false);
        this._broadcast({ t: 'delta', put: [], del: d.del });
        dropped = dropped.concat(all.filter((o) => ids.includes(o.opId)));
      }
    } catch (e) {
      this._storageError(e);
    }
    for (const op of dropped) {
      const error = new ApiError(404, 'list_gone', reason === 'deleted' ? 'the list was deleted' : 'you are no longer a member of the list');
      this._report('rejected', { op, error, id: op.id || null, title: this._titleOf(op), listId: id, dropped: true });
    }
    this._emit('list-removed', { listId: id, reason, dropped: dropped.length, name: meta ? meta.name : null, shown: shownHere });
    this._emit('lists', { lists: this.lists() });
    this._saveSnapshot();
    this._changed();
  }

  // list.shared (a reload hint): the list and its tasks, fetched now; events of the
  // list that arrive meanwhile are applied as usual (versions only grow).
  async _loadList(listId) {
    const id = this._norm(listId);
    if (!id || this._stopped) return;
    try {
      // The members and the tasks at once (the event already named the list and role).
      const [, got] = await Promise.all([this.listDetail(id).catch(() => null), this._fetchTasks(id)]);
      if (this.goneLists.has(id)) return;
      for (const t of got.tasks) this._confirmTask(t);
      this._emit('list-loaded', { listId: id, tasks: got.tasks.length });
      this._saveSnapshot();
      this._changed();
    } catch (e) {
      // 404: no longer a member (its list.unshared follows); else the next reload has it.
      if (e.status !== 404) this._emit('sync-error', { error: e, listId: id });
      // Not now (offline, 5xx): tried again, so the list does not stay empty until a reload.
      if (e instanceof ApiError && e.transient && !this._stopped) setTimeout(() => !this.goneLists.has(id) && this._loadList(id), backoffDelayMs(2));
    }
  }

  // Every page of one list's tasks: {tasks, seq (the first page's), listId}.
  async _fetchTasks(listId) {
    const tasks = [];
    let seq = null;
    let cursor = null;
    let pageList = null;
    const lq = listId ? `&list_id=${encodeURIComponent(listId)}` : '';
    for (let pages = 0; pages < 100000; pages++) {
      const q = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : '?limit=1000';
      const data = await this._api('GET', `/api/v1/tasks${q}${lq}`);
      if (!data || !Array.isArray(data.tasks) || !Number.isInteger(data.seq)) throw new ApiError(200, 'bad_response', 'bad task list');
      if (seq === null) seq = data.seq;
      if (pageList === null && typeof data.list_id === 'string') pageList = data.list_id;
      for (const t of data.tasks) {
        if (!t || typeof t.id !== 'string') continue;
        tasks.push(t.list_id || !pageList ? t : { ...t, list_id: pageList });
      }
      cursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
      if (!cursor) break;
    }
    return { tasks, seq, listId: pageList };
  }

  // ---- presence ----------------------------------------------------------------

  /** Asks the gateway who of a list's members is online (`presence` events follow,
   * now and on each change; asked again after every reconnect). */
  subscribePresence(listId) {
    const id = listId || this.defaultListId;
    if (!id || this._presenceSubs.has(id)) return;
    this._presenceSubs.add(id);
    if (this._wsOpen) this._sendPresenceSub(id);
  }

  /** Stops the presence of a list. */
  unsubscribePresence(listId) {
    const id = listId || this.defaultListId;
    if (!id || !this._presenceSubs.delete(id)) return;
    this.presence.delete(id);
    this._wsSend({ type: 'unsubscribe', list_id: id });
  }

  /** Who of a list's members is online: [{user_id, devices}] (empty: unknown or nobody). */
  online(listId) {
    return this.presence.get(listId || this.defaultListId) || [];
  }

  async _sendPresenceSub(id) {
    const ws = this._ws;
    let r;
    try {
      r = await this._api('POST', `/api/v1/lists/${encodeURIComponent(id)}/presence-ticket`, {});
    } catch (e) {
      this._emit('presence-error', { listId: id, code: e.code || 'ticket', error: e });
      return;
    }
    if (!r || typeof r.ticket !== 'string' || this._ws !== ws || !this._presenceSubs.has(id)) return;
    this._wsSend({ type: 'subscribe', list_id: id, ticket: r.ticket });
  }

  _wsSend(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false; // onclose follows
    }
  }

  /** Catches up from the applied seq now (single flight; safe to call any time). */
  sync() {
    if (this._stopped) return Promise.resolve();
    if (this._syncing) {
      this._syncAgain = true;
      return this._syncing;
    }
    this._syncing = (async () => {
      try {
        await this.ready;
        do {
          this._syncAgain = false;
          await this._catchUp();
        } while (this._syncAgain && !this._stopped);
      } finally {
        this._syncing = null;
        if (this._wsOpen) this._caughtUp = true;
        this._updateState();
      }
    })();
    this._updateState();
    return this._syncing;
  }

  // ---- the API ---------------------------------------------------------------

  async _api(method, path, body, extraHeaders) {
    const headers = { Authorization: `Bearer ${this.token}`, 'X-Client-Id': this.clientId, ...extraHeaders };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(this.apiBase + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      this._setReachable(false);
      throw new ApiError(0, 'network', e && e.message ? e.message : 'network error');
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    // A 5xx from a proxy or the API means "not now", like a network error.
    this._setReachable(res.status < 500);
    if (!res.ok) {
      const err = data && data.error ? data.error : {};
      const e = new ApiError(res.status, err.code, err.message, data);
      if (res.status === 401) this._emit('auth-error', { status: 401, error: e });
      throw e;
    }
    if (data && typeof data === 'object' && res.headers.get('Idempotent-Replayed') === 'true') REPLAYED.add(data);
    return data;
  }

  _setReachable(ok) {
    if (this.apiReachable !== ok) {
      this.apiReachable = ok;
      this._updateState();
      if (ok) this.flush();
    }
  }

  // ---- catch-up --------------------------------------------------------------

  async _reload() {
    // Every page of the default list, then every other list's, then the events from
    // the FIRST page's seq: whatever changed while the later pages were read is in
    // those events (applied on top; a task moved past the cursor meanwhile is fetched
    // when its task.moved arrives).
    // Tasks the API confirmed by reply while this runs are newer than the pages may be.
    const during = new Map();
    this._duringReload = during;
    try {
      await this._reloadPages(during);
    } finally {
      if (this._duringReload === during) this._duringReload = null;
    }
  }

  async _reloadPages(during) {
    const first = await this._fetchTasks(null);
    const server = new TaskMap();
    for (const t of first.tasks) server.set(t.id, t);
    const seq = first.seq;
    const lists = new Map();
    let defaultId = first.listId || this.defaultListId;
    let data = null;
    try {
      data = await this._api('GET', '/api/v1/lists');
    } catch (e) {
      if (e.transient || e.status === 401) throw e;
      data = null; // an API without lists: the default list only
    }
    if (data && Array.isArray(data.lists)) {
      for (const l of data.lists) {
        if (!l || typeof l.id !== 'string') continue;
        if (l.default) defaultId = l.id;
        const cur = this.listMeta.get(l.id);
        const keep = cur && cur.member_count === l.members; // the members fetched before
        lists.set(l.id, { ...l, member_count: Number.isInteger(l.members) ? l.members : 1, members: keep ? cur.members : null });
      }
      for (const l of lists.values()) {
        if (l.default || l.id === defaultId) continue;
        const got = await this._fetchTasks(l.id);
        for (const t of got.tasks) server.set(t.id, t.list_id ? t : { ...t, list_id: l.id });
      }
    } else {
      for (const [id, l] of this.listMeta) lists.set(id, l);
    }
    if (defaultId) this._setDefaultList(defaultId);
    for (const [id, t] of server) if (this.deleted.has(id) && this._norm(this.deleted.get(id)) === this._norm(t.list_id)) server.delete(id);
    for (const [id, t] of during) {
      const cur = server.get(id);
      if (!cur || !(Number.isInteger(cur.version) && Number.isInteger(t.version) && t.version < cur.version)) server.set(id, t);
    }
    this.server = server;
    this.listMeta = lists;
    for (const id of lists.keys()) this.goneLists.delete(id);
    if (this.listId && !lists.has(this.listId) && data && Array.isArray(data.lists)) this.listId = null;
    this.seq = seq;
    this._forceReload = false;
    if (this.confirmedOrder && this.confirmedOrder.seq <= this.seq) this.confirmedOrder = null;
    for (const [id, c] of this.confirmedMoves) if (c.seq <= this.seq) this.confirmedMoves.delete(id);
    this.stats.reloads++;
    this._emit('reload', { seq: this.seq });
    this._emit('lists', { lists: this.lists() });
    this._saveSnapshot();
    this._changed();
  }

  async _catchUp() {
    this.stats.catchups++;
    try {
      if (this.seq === null || this._forceReload) await this._reload();
      let apiSeq = null;
      for (let pages = 0; pages < 1000 && !this._stopped; pages++) {
        let data;
        try {
          this.stats.eventRequests++;
          data = await this._api('GET', `/api/v1/events?since=${this.seq}&limit=${this.pageLimit}`);
        } catch (e) {
          if (e.status === 410) {
            await this._reload(); // too far behind: the events are gone, take the list
            continue;
          }
          throw e;
        }
        if (data && Number.isInteger(data.seq)) apiSeq = data.seq;
        // The API's seq never goes back: one behind ours means the list we hold (a
        // cached snapshot) came from another database. Take the API's list.
        if (data && Number.isInteger(data.seq) && data.seq < this.seq) {
          await this._reload();
          continue;
        }
        const events = data && Array.isArray(data.events) ? data.events : [];
        const before = this.seq;
        let gap = false;
        for (const ev of events) {
          if (!Number.isInteger(ev.seq) || ev.seq <= this.seq) continue;
          if (ev.seq !== this.seq + 1) {
            gap = true; // the API never skips: a hole means something is off, reload
            break;
          }
          this._applyEvent(ev, 'catchup');
        }
        if (gap) {
          await this._reload();
          continue;
        }
        if (this.seq !== before) {
          this._saveSnapshot();
          this._changed();
        }
        // The list may be behind the API's seq when it is ahead of what was returned.
        if (!(data && data.has_more) || this.seq === before) break;
      }
      this._drainBuffer(apiSeq);
    } catch (e) {
      this._emit('sync-error', { error: e });
    }
  }

  // Applies buffered live events that follow on from seq. What is left skips ahead:
  // events past the API's own seq (`apiSeq`, from the catch-up just made) are not
  // the API's (a hand-typed event, a restored database): each such seq is reported
  // once, answered with one full reload, then ignored; a real hole (the API has more
  // than we applied) triggers another catch-up.
  _drainBuffer(apiSeq) {
    if (!this._buffer.length) return;
    this._buffer.sort((a, b) => a.seq - b.seq);
    const rest = [];
    let changed = false;
    for (const ev of this._buffer) {
      if (ev.seq <= this.seq) {
        this.stats.ignored++;
      } else if (ev.seq === this.seq + 1) {
        this._applyEvent(ev, 'live');
        changed = true;
      } else {
        rest.push(ev);
      }
    }
    this._buffer = [];
    if (changed) {
      this._saveSnapshot();
      this._changed();
    }
    if (!rest.length) return;
    const unknown = Number.isInteger(apiSeq) ? rest.filter((ev) => ev.seq > apiSeq) : [];
    const real = rest.filter((ev) => !unknown.includes(ev));
    for (const ev of unknown) {
      if (this._unknownSeqs.has(ev.seq)) {
        this.stats.ignored++;
        continue;
      }
      this._unknownSeqs.add(ev.seq);
      if (this._unknownSeqs.size > 1000) this._unknownSeqs.delete(this._unknownSeqs.values().next().value);
      this.stats.unknownSeq++;
      this._emit('sync-error', { error: new ApiError(200, 'unknown_seq', `an event with seq ${ev.seq} that the API does not have (it has ${apiSeq}): reloading once, then ignoring it`), seq: ev.seq });
      this._forceReload = true;
    }
    if (real.length || this._forceReload) {
      this._buffer = real;
      this._syncAgain = true;
    }
  }

  // ---- events ----------------------------------------------------------------

  _onLiveEvent(msg) {
    const ev = {
      event_id: msg.event_id,
      event_type: msg.event,
      user_id: msg.user_id,
      seq: msg.seq,
      origin: msg.origin ?? null,
      timestamp: msg.timestamp,
      task: msg.task,
      positions: msg.positions,
      order: msg.order,
    };
    for (const k of ['list_id', 'actor', 'list', 'reload']) if (msg[k] !== undefined) ev[k] = msg[k];
    if (ev.user_id && ev.user_id !== this.userId) return; // never someone else's
    if (ev.seq === null || ev.seq === undefined) {
      // A hand-typed event: no order information; apply it as it is (unknown types: nothing).
      if (!EVENT_TYPES.has(ev.event_type) && !LIST_EVENTS.has(ev.event_type)) return;
      this._applyEvent(ev, 'live');
      this._changed();
      return;
    }
    if (!Number.isInteger(ev.seq)) return;
    if ((this.seq !== null && ev.seq <= this.seq) || this._unknownSeqs.has(ev.seq)) {
      this.stats.ignored++;
      return;
    }
    if (this._syncing || this.seq === null || ev.seq !== this.seq + 1) {
      this._buffer.push(ev);
      if (this._buffer.length > 10000) this._buffer.shift();
      this.sync(); // catch up first (or again): the buffer is drained after it
      return;
    }
    this._applyEvent(ev, 'live');
    this._saveSnapshot();
    this._changed();
  }

  _applyEvent(ev, source) {
    const m = this.server;
    let t = ev.task;
    let known = true;
    // Every event names its list (absent before lists: the default list). An event of a
    // list the user lost is skipped (its seq is taken): none should come, and if one
    // was written before the removal it must not bring the list back.
    const evList = typeof ev.list_id === 'string' ? ev.list_id : ev.list && typeof ev.list.id === 'string' ? ev.list.id : null;
    const lost = evList && this.goneLists.has(evList) && ev.event_type !== 'list.shared' && ev.event_type !== 'list.created';
    if (t && typeof t === 'object' && evList && !t.list_id && EVENT_TYPES.has(ev.event_type)) t = { ...t, list_id: evList };
    switch (lost ? 'lost' : ev.event_type) {
      case 'lost':
        known = false;
        break;
      case 'list.created':
      case 'list.updated':
        if (ev.list && typeof ev.list.id === 'string') {
          this._putList(ev.list);
          // Members and this user's role may have changed (a share, a transfer): fetched.
          if (ev.event_type === 'list.updated' && !this.list(ev.list.id)?.default) this.listDetail(ev.list.id).catch(() => {});
        }
        break;
      case 'list.shared':
        if (ev.list && typeof ev.list.id === 'string') {
          this._putList(ev.list);
          this._loadList(ev.list.id); // reload: true (the event never copies the list)
        }
        break;
      case 'list.unshared':
      case 'list.deleted':
        if (ev.list && typeof ev.list.id === 'string') this._dropList(ev.list.id, ev.event_type === 'list.deleted' ? 'deleted' : 'unshared');
        break;
      case 'task.created':
      case 'task.updated':
      case 'task.completed': {
        if (!t || typeof t.id !== 'string' || this._tomb(t.id, t.list_id)) break;
        const cur = m.get(t.id);
        // Versions only grow: a stale copy (e.g. a reply applied ahead of its event)
        // never replaces a newer one.
        if (cur && Number.isInteger(cur.version) && Number.isInteger(t.version) && t.version < cur.version) break;
        const merged = { ...(cur || {}), ...t };
        if (typeof t.position === 'number') this._forceReload = true;
        if (typeof merged.position !== 'string') {
          // a hand-typed event without a key: after every task
          const last = [...m.values()].sort(byPosition).pop();
          merged.position = last && typeof last.position === 'string' ? last.position + 'V' : 'a0';
        }
        m.set(t.id, merged);
        break;
      }
      case 'task.moved': {
        if (!t || typeof t.id !== 'string' || typeof t.position !== 'string') break;
        const cur = m.get(t.id);
        if (cur) m.set(t.id, { ...cur, position: t.position });
        else if (!this._tomb(t.id, evList || undefined)) this._fetchMissing(t.id, evList);
        break;
      }
      case 'task.deleted':
        if (t && typeof t.id === 'string') {
          const cur = m.get(t.id);
          // A delete from another list (a move's first half arriving late) leaves this copy.
          if (cur && evList && this._norm(cur.list_id) !== this._norm(evList)) {
            this.deleted.set(t.id, evList);
            break;
          }
          m.delete(t.id);
          this.deleted.set(t.id, evList || (cur && cur.list_id) || null);
        }
        break;
      case 'task.reordered':
        if (ev.positions && typeof ev.positions === 'object') {
          for (const [id, position] of Object.entries(ev.positions)) {
            const cur = m.get(id);
            if (cur && typeof position === 'string') m.set(id, { ...cur, position });
          }
        } else if (isLegacy(ev)) {
          this._forceReload = true;
        }
        break;
      default:
        known = false; // a newer event type: its seq is taken, the event skipped
        break;
    }
    if (Number.isInteger(ev.seq)) {
      this.seq = ev.seq;
      this.appliedSeqs.push(ev.seq);
      if (this.appliedSeqs.length > 20000) this.appliedSeqs.splice(0, 10000);
      if (this.confirmedOrder && this.confirmedOrder.seq <= ev.seq) this.confirmedOrder = null;
      for (const [id, c] of this.confirmedMoves) if (c.seq <= ev.seq) this.confirmedMoves.delete(id);
    }
    this._view = null;
    if (this._forceReload) this.sync();
    if (!known) {
      this.stats.ignored++;
      return;
    }
    this.stats.applied++;
    const own = ev.origin === this.clientId;
    if (evList && typeof ev.actor === 'string' && source === 'live') this._noteMember(evList, ev.actor);
    this._emit('change', { event: ev, own, source, task: t ? m.get(t.id) || t : null, listId: evList });
  }

  // A task the list lacks although an event moved it (it moved past the cursor while
  // the pages were read): fetched and shown; later events apply on top.
  async _fetchMissing(id, listId) {
    try {
      const t = await this._api('GET', `/api/v1/tasks/${encodeURIComponent(id)}${this._lq(listId, '?')}`);
      if (t && !this.server.has(id)) {
        this._confirmTask(t);
        this._changed();
      }
    } catch {
      // deleted meanwhile (its task.deleted follows) or unreachable (the next reload has it)
    }
  }

  // ---- the queue -------------------------------------------------------------

  _nextK() {
    this._lastK = Math.max(Date.now() * 1000, this._lastK + 1);
    return this._lastK;
  }

  // A new change: shown at once (compacted into this tab's mirror of the queue), then
  // written to the store in one transaction that compacts it against the queue as
  // the store has it (the truth across tabs). Returns the operation's id.
  _enqueue(op) {
    op.opId = uuid();
    op.k = this._nextK();
    op.origin = this.clientId; // sent as its X-Client-Id by whichever tab sends it: the echo is this tab's
    const guess = compact(this.queue.filter((o) => o.id === op.id), op);
    this._applyDelta(guess, false);
    this._emit('local', { op });
    this._changed();
    this._persist = this._persist
      .then(async () => {
        const d = await this.store.mutate(op.id, (ops) => compact(ops, op));
        // The store's answer wins over the guess made above (another tab's change or a
        // send may have come in between).
        if (JSON.stringify(d) !== JSON.stringify(guess)) await this._reloadQueue();
        this._broadcast({ t: 'delta', put: d.put, del: d.del });
        this.flush();
      })
      .catch(async (e) => {
        // Not kept (quota, storage gone): this tab sends it itself while it is open.
        this._storageError(e, op);
        this._volatile.push(op);
        await this._reloadQueue().catch(() => {});
        this.flush();
      });
    return op.opId;
  }

  async _reloadQueue() {
    const ops = await this.store.loadOps();
    this.queue = ops;
    this._changed();
  }

  // Applies a change of the store's queue to this tab's mirror.
  _applyDelta(d, emit = true) {
    if (!d) return;
    const del = new Set(d.del || []);
    const put = new Map((d.put || []).map((o) => [o.opId, o]));
    const next = [];
    for (const o of this.queue) {
      if (del.has(o.opId)) continue;
      if (put.has(o.opId)) {
        next.push(put.get(o.opId));
        put.delete(o.opId);
      } else next.push(o);
    }
    for (const o of put.values()) next.push(o);
    next.sort(opOrder);
    this.queue = next;
    if (emit) this._changed();
    else this._view = null;
  }

  _broadcast(msg) {
    if (!this._channel) return;
    try {
      this._channel.postMessage(msg);
    } catch {
      /* closed */
    }
  }

  _onChannel(msg) {
    if (!msg || typeof msg !== 'object' || this._stopped) return;
    switch (msg.t) {
      case 'delta':
        this._applyDelta(msg);
        if (this.leader) this.flush();
        break;
      case 'outcome':
        // A change of this browser that another tab sent: shown here too.
        if (msg.type === 'conflict' || msg.type === 'rejected') this._emit(msg.type, { ...msg.detail, remote: true });
        break;
      default:
        break;
    }
  }

  _storageError(error, op) {
    this._emit('storage-error', { error, op, quota: !!(error && error.name === 'QuotaExceededError') });
  }

  // One tab of the browser sends the queue: the one holding the Web Lock. When it
  // closes, the lock passes to another tab, which sends what is left.
  _electLeader() {
    if (!this.useLocks) {
      this.leader = true;
      return;
    }
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    this._lockAbort = ctl;
    navigator.locks
      .request(`${LS}sender.${this.userId}`, ctl ? { signal: ctl.signal } : {}, () => {
        if (this._stopped) return undefined;
        this.leader = true;
        this._lockAbort = null;
        this._emit('leader', { leader: true });
        this._reloadQueue()
          .catch(() => {})
          .then(() => this.flush());
        return new Promise((resolve) => {
          this._releaseLock = resolve;
        });
      })
      .catch(() => {
        /* aborted by stop() */
      });
  }

  /** Sends the queue in order, one request at a time (single flight). Only the
   * sending tab sends the shared queue; every tab sends what the store refused. */
  flush() {
    if (this._flushing) this._flushAgain = true;
    if (this._stopped || this._flushing) return this._flushing || Promise.resolve();
    if (!this.leader && !this._volatile.length) return Promise.resolve();
    // The browser knows it is offline: wait for its 'online' event (_wake) instead.
    if (globalThis.navigator && navigator.onLine === false) return Promise.resolve();
    clearTimeout(this._flushTimer);
    this._flushTimer = null;
    this._flushing = (async () => {
      try {
        await this._persist;
        let next; // the head, claimed with the last confirmation (undefined: not yet)
        while (!this._stopped) {
          let op;
          const volatile = this._volatile.length > 0;
          if (volatile) {
            op = this._volatile[0];
          } else if (this.leader) {
            try {
              const tc = Date.now();
              op = next !== undefined ? next : await this.store.claimHead();
              next = undefined;
              this.stats.storeMs += Date.now() - tc;
            } catch (e) {
              this._storageError(e);
              this._scheduleFlush();
              return;
            }
            if (!op) break;
            this._applyDelta({ put: [op], del: [] }, false);
            this._broadcast({ t: 'delta', put: [op], del: [] });
          } else {
            break;
          }
          let outcome;
          const ts = Date.now();
          try {
            outcome = await this._send(op);
            this.stats.sendMs += Date.now() - ts;
          } catch (e) {
            if (e instanceof ApiError && (e.transient || e.status === 401)) {
              // Not now: keep it (and everything after it) and try again later.
              this._scheduleFlush();
              return;
            }
            outcome = { rejected: e };
          }
          this._flushAttempt = 0;
          this.stats.sent++;
          if (volatile) {
            this._volatile.shift();
          } else {
            try {
              const tm = Date.now();
              const d = await this.store.mutate(op.id, (ops) => rebase(ops, op, outcome.version), { claim: this.leader && !this._volatile.length });
              this.stats.storeMs += Date.now() - tm;
              if (d.head !== undefined) next = d.head;
              const put = d.head ? [...d.put.filter((o) => o.opId !== d.head.opId), d.head] : d.put;
              this._applyDelta({ put, del: d.del }, false);
              this._broadcast({ t: 'delta', put, del: d.del });
            } catch (e) {
              this._storageError(e);
              this._applyDelta({ put: [], del: [op.opId] }, false);
            }
          }
          const lostList = (op.list && this.goneLists.has(op.list)) || (op.to && this.goneLists.has(op.to));
          if (outcome.rejected && !lostList) this._report('rejected', { op, error: outcome.rejected, id: op.id, title: this._titleOf(op) });
          if (outcome.conflicts && outcome.conflicts.length) this._report('conflict', { op, id: op.id, title: this._titleOf(op), conflicts: outcome.conflicts, task: outcome.task });
          this._changed();
        }
      } finally {
        this._flushing = null;
        this._updateState();
        // A change queued while the last one was being confirmed: go on.
        if (this._flushAgain && !this._stopped && !this._flushTimer) {
          this._flushAgain = false;
          this.flush();
        }
        this._flushAgain = false;
      }
    })();
    return this._flushing;
  }

  _titleOf(op) {
    const t = this.server.get(op.id) || this.tasks().find((x) => x.id === op.id);
    return (t && t.title) || (op.body && op.body.title) || null;
  }

  _report(type, detail) {
    this._emit(type, detail);
    const { error, ...rest } = detail;
    const plain = error ? { ...rest, error: { status: error.status, code: error.code, message: error.message } } : rest;
    this._broadcast({ t: 'outcome', type, detail: JSON.parse(JSON.stringify(plain)) });
  }

  _scheduleFlush() {
    clearTimeout(this._flushTimer);
    const d = Math.min(backoffDelayMs(this._flushAttempt++), 10000);
    this._flushTimer = setTimeout(() => {
      this._flushTimer = null;
      this.flush();
    }, d);
  }

  // Sends one change. Returns {version?, conflicts?, task?} when the change is done
  // (or moot); {rejected} when the API refused it for good; throws a transient ApiError.
  async _send(op) {
    const enc = encodeURIComponent;
    // Every change carries its own id: the API applies it once however often the
    // request is retried (a reply lost to a network cut), for IDEMPOTENCY_WINDOW.
    const key = { 'X-Client-Id': op.origin || this.clientId };
    if (op.opId) key['Idempotency-Key'] = op.opId;
    const gone = (e) => e.status === 404 || e.status === 410;
    switch (op.kind) {
      case 'create': {
        let t;
        try {
          t = await this._api('POST', '/api/v1/tasks', op.body, key);
        } catch (e) {
          if (e.status !== 410) throw e;
          this._markDeleted(op.id, op.list); // deleted on another device before this arrived
          return { rejected: e };
        }
        if (t && typeof t === 'object' && !t.list_id && op.list) t.list_id = op.list;
        if (!REPLAYED.has(t)) this._confirmTask(t); // a replay may be stale: events tell
        return { version: t && t.version };
      }
      case 'update': {
        let r;
        const body = op.base_version ? { ...op.body, base_version: op.base_version } : op.body;
        try {
          r = await this._api('PATCH', `/api/v1/tasks/${enc(op.id)}${this._lq(op.list)}`, body, key);
        } catch (e) {
          if (e.status === 410) return { rejected: e }; // delete wins: the change is dropped
          if (e.status === 404) return {};
          throw e;
        }
        const merged = r && r.task && Array.isArray(r.conflicts);
        const t = merged ? r.task : r;
        if (t && typeof t === 'object' && !t.list_id && op.list) t.list_id = op.list;
        if (!REPLAYED.has(r)) this._confirmTask(t);
        return { version: t && t.version, conflicts: merged ? r.conflicts : [], task: t };
      }
      case 'delete':
        try {
          await this._api('DELETE', `/api/v1/tasks/${enc(op.id)}${this._lq(op.list)}`, undefined, key);
        } catch (e) {
          if (!gone(e)) throw e;
        }
        this._markDeleted(op.id, op.list);
        return {};
      case 'reorder': {
        // Only ids the list still has: others were deleted meanwhile (here or elsewhere).
        const shown = this.tasks(op.list || null);
        const known = new Set(shown.map((t) => t.id));
        const order = op.order.filter((id) => known.has(id));
        for (const t of shown) if (!order.includes(t.id)) order.push(t.id);
        const r = await this._api('PUT', `/api/v1/tasks/order${this._lq(op.list)}`, { order }, { 'X-Client-Id': key['X-Client-Id'] });
        if (r && r.positions && Number.isInteger(r.seq) && (this.seq === null || r.seq > this.seq)) {
          this.confirmedOrder = { positions: r.positions, seq: r.seq };
        }
        return {};
      }
      case 'move':
        return this._sendMove(op, key);
      default:
        return {};
    }
  }

  // A move goes next to the neighbour named if the API still has it, else next to
  // the other one; a neighbour deleted unknown to us (422/410) is tried once more
  // with the other. The idempotency key covers one body: the second try has its own.
  async _sendMove(op, key) {
    const has = (id) => this.server.has(id) && !this.deleted.has(id);
    if (op.to && this._norm(op.to) !== this._norm(op.list)) {
      // Into another list, at its end: one transaction on the API (task.deleted to the
      // source's members, task.created to the target's); the events show it.
      try {
        await this._api('POST', `/api/v1/tasks/${encodeURIComponent(op.id)}/move${this._lq(op.list)}`, { before: null, list_id: op.to }, key);
      } catch (e) {
        if (e.status === 410) this._markDeleted(op.id, op.list);
        if (e.status === 410 || e.status === 404) return {};
        throw e;
      }
      return {};
    }
    let where = resolveMove(op, has);
    for (let attempt = 0; attempt < 2 && where; attempt++) {
      let r;
      try {
        r = await this._api('POST', `/api/v1/tasks/${encodeURIComponent(op.id)}/move${this._lq(op.list)}`, where, attempt ? { ...key, 'Idempotency-Key': `${op.opId}.2` } : key);
      } catch (e) {
        if (e.status === 410 || e.status === 404) {
          if (e.status === 410) this._markDeleted(op.id, op.list); // the task itself: delete wins
          return {};
        }
        if (e.status === 422) {
          // The neighbour is gone on the server: next to the other one.
          const side = Object.keys(where)[0];
          const anchor = where[side];
          if (anchor) this.server.delete(anchor);
          where = resolveMove({ ...op, prefer: side === 'before' ? 'after' : 'before', [side]: undefined }, has);
          continue;
        }
        throw e;
      }
      if (r && r.task && typeof r.task.position === 'string' && Number.isInteger(r.seq) && (this.seq === null || r.seq > this.seq)) {
        this.confirmedMoves.set(op.id, { position: r.task.position, seq: r.seq });
      }
      return {};
    }
    return {}; // both neighbours gone: the move is moot
  }

  _markDeleted(id, listId) {
    const cur = this.server.get(id);
    this.server.delete(id);
    this.deleted.set(id, listId || (cur && cur.list_id) || null);
    this._view = null;
  }

  // The list_id query of a call about a task of a list (none for the default list).
  _lq(listId, sep = '?') {
    const id = this._norm(listId);
    return id ? `${sep}list_id=${encodeURIComponent(id)}` : '';
  }

  // A task the API returned: newer than what the list has, so show it now (the event
  // that follows carries the same version and changes nothing).
  _confirmTask(t) {
    if (!t || typeof t.id !== 'string' || this._tomb(t.id, t.list_id)) return;
    if (t.list_id && this.goneLists.has(t.list_id)) return;
    const cur = this.server.get(t.id);
    if (cur && Number.isInteger(cur.version) && Number.isInteger(t.version) && t.version < cur.version) return;
    this.server.set(t.id, { ...(cur || {}), ...t });
    if (this._duringReload) this._duringReload.set(t.id, this.server.get(t.id));
    this._view = null;
  }

  // The cached list: written at once, then at most once a second (a burst of events
  // is one write at its end), and when the page hides.
  _saveSnapshot() {
    if (this._snapTimer) return;
    const wait = Math.max(0, (this._lastSnap || 0) + SNAPSHOT_DEBOUNCE_MS - Date.now());
    this._snapTimer = setTimeout(() => {
      this._snapTimer = null;
      this._saveSnapshotNow();
    }, wait);
  }

  _saveSnapshotNow() {
    clearTimeout(this._snapTimer);
    this._snapTimer = null;
    this._lastSnap = Date.now();
    if (this.seq === null || this._stopped) return Promise.resolve();
    const snap = { seq: this.seq, tasks: [...this.server.values()], defaultListId: this.defaultListId, lists: [...this.listMeta.values()], gone: [...this.goneLists] };
    return this.store.putMeta('snapshot', snap).catch((e) => this._storageError(e));
  }

  // ---- the WebSocket ---------------------------------------------------------

  _wsUrl(ticket) {
    let u = this.gatewayUrl.replace(/\/+$/, '');
    if (!/\/ws$/.test(u)) u += '/ws';
    return `${u}${u.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}`;
  }

  // Each connection is authenticated by a fresh single-use ticket (POST
  // /api/v1/ws-ticket, 30 s): the session token never goes into a URL.
  async _connect() {
    if (this._stopped) return;
    clearTimeout(this._reconnectTimer);
    if (!this.gatewayUrl || typeof WebSocket !== 'function') {
      this._startPolling();
      return;
    }
    if (this._ws) return;
    this._connecting = true;
    let ticket;
    try {
      const r = await this._api('POST', '/api/v1/ws-ticket', {});
      ticket = r && typeof r.ticket === 'string' ? r.ticket : null;
      if (!ticket) throw new ApiError(200, 'bad_response', 'no ticket');
    } catch (e) {
      this._connecting = false;
      if (this._stopped) return;
      this._emit('ws-error', { error: e });
      if (e.status === 401) return; // auth-error was emitted: the page decides
      this._startPolling();
      this._scheduleReconnect();
      return;
    }
    this._connecting = false;
    if (this._stopped || this._ws) return;
    let ws;
    try {
      ws = new WebSocket(this._wsUrl(ticket));
    } catch (e) {
      this._emit('ws-error', { error: e });
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._wsOpen = false;
    this._updateState();
    let openedAt = 0;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      openedAt = Date.now();
      this._updateState();
      // Catch-up starts on the gateway's first message (the socket is attached then),
      // not here: an event fanned out in between would be neither caught up nor pushed.
    };
    ws.onmessage = (m) => {
      if (this._ws !== ws) return;
      this._lastRx = Date.now();
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      switch (msg.type) {
        case 'task_update':
          this._onLiveEvent(msg);
          break;
        case 'connected':
        case 'catching_up': {
          const first = !this._wsOpen;
          this._wsOpen = true;
          if (first || msg.type === 'catching_up') this._caughtUp = false;
          this._stopPolling();
          if (Number.isInteger(msg.heartbeat_interval) && msg.heartbeat_interval > 0) this._startHeartbeat(msg.heartbeat_interval);
          else if (first) this._startHeartbeat(30);
          const wasCatchingUp = this._gwCatchingUp;
          this._gwCatchingUp = msg.type === 'catching_up';
          if (first || (wasCatchingUp && msg.type === 'connected')) {
            // Attached: catch up from seq (live events are buffered meanwhile). Once
            // the gateway reads Kafka (connected after catching_up) once more.
            this.sync();
            this.flush();
            this._scheduleSafety(true);
          }
          // Presence subscriptions live on the socket: asked again on each new one.
          if (first) for (const id of this._presenceSubs) this._sendPresenceSub(id);
          this._emit(msg.type === 'connected' ? 'connected' : 'catching-up', { connectionId: msg.connection_id });
          this._updateState();
          break;
        }
        case 'error':
          if (typeof msg.list_id === 'string' || msg.code === 'too_many_subscriptions' || msg.code === 'presence_off' || (msg.code === 'forbidden' && this._presenceSubs.size)) this._emit('presence-error', { listId: msg.list_id, code: msg.code, message: msg.message });
          else this._emit('server-error', { code: msg.code, message: msg.message });
          break;
        case 'presence': {
          // Advisory: only for a list asked for, and only well-formed entries.
          if (typeof msg.list_id !== 'string' || !this._presenceSubs.has(msg.list_id) || !Array.isArray(msg.online)) break;
          const online = msg.online
            .filter((o) => o && typeof o.user_id === 'string')
            .slice(0, 1000)
            .map((o) => ({ user_id: o.user_id, devices: Number.isInteger(o.devices) && o.devices > 0 ? o.devices : 1 }));
          this.presence.set(msg.list_id, online);
          for (const o of online) this._noteMember(msg.list_id, o.user_id);
          this._emit('presence', { listId: msg.list_id, online });
          break;
        }
        case 'ping':
          try {
            ws.send('{"type":"pong"}');
          } catch {
            /* onclose follows */
          }
          break;
        case 'pong':
          this.stats.pongs++;
          this._emit('pong', {});
          break;
        default:
          break; // anything newer
      }
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._wsOpen = false;
      this._caughtUp = false;
      this._gwCatchingUp = false;
      this._stopHeartbeat();
      clearTimeout(this._safetyTimer);
      this.stats.reconnects++;
      // Presence came with the socket: unknown until the next one says (no stale dots).
      for (const id of [...this.presence.keys()]) {
        this.presence.delete(id);
        this._emit('presence', { listId: id, online: [] });
      }
      const lived = openedAt ? Date.now() - openedAt : 0;
      if (openedAt && lived >= this.stableAfterMs) this._attempt = 0; // a stable connection resets the backoff
      this._emit('disconnected', { code: e.code, reason: e.reason, lived });
      if (!openedAt) {
        // Could not be established at all (blocked, gateway down): poll meanwhile.
        this._startPolling();
        this._scheduleReconnect();
      } else if (e.code === 1001) {
        // The gateway is draining (deploy): every socket of it closes at once, so
        // each client comes back at a random point of the drain window, not all
        // together; what happened meanwhile is caught up on reconnect.
        this._scheduleReconnect(Math.round(Math.random() * this.drainSpreadMs));
      } else if (e.code === 4001) {
        // The session expired: reconnect at once with a fresh one, when we can get one.
        this._renewToken();
      } else if (e.code === 1008) {
        // Policy (bad ticket, origin): do not hammer; poll through the API meanwhile.
        this._attempt = BACKOFF_S.length - 1;
        this._startPolling();
        this._scheduleReconnect();
      } else {
        this._startPolling();
        this._scheduleReconnect();
      }
      this._updateState();
    };
  }

  async _renewToken() {
    let token = null;
    try {
      token = this.refreshToken ? await this.refreshToken() : null;
    } catch (e) {
      this._emit('ws-error', { error: e });
    }
    if (this._stopped) return;
    if (typeof token === 'string' && token) {
      this.token = token;
      this._scheduleReconnect(Math.round(Math.random() * 500));
    } else {
      // The page decides (app.js signs out, which stops this client); otherwise poll.
      this._emit('auth-error', { status: 401, error: new ApiError(401, 'token_expired', 'token expired') });
      if (!this._stopped) this._startPolling();
    }
  }

  _scheduleReconnect(delay) {
    if (this._stopped) return;
    clearTimeout(this._reconnectTimer);
    const d = delay ?? backoffDelayMs(this._attempt++);
    this._emit('reconnect-scheduled', { delayMs: d, attempt: this._attempt });
    this._reconnectTimer = setTimeout(() => this._connect(), d);
  }

  // The safety catch-up while push is healthy: it only covers what push could have
  // missed without the client noticing, so it backs off from safetySyncMs to
  // safetySyncMaxMs (with jitter); a catch-up that finds something starts it over.
  _scheduleSafety(reset) {
    clearTimeout(this._safetyTimer);
    if (this._stopped) return;
    if (reset) this._safetyN = 0;
    const d = safetyDelayMs(this._safetyN++, this.safetySyncMs, this.safetySyncMaxMs);
    this._safetyTimer = setTimeout(async () => {
      if (!this._wsOpen || this._stopped) return;
      this.stats.safety++;
      const before = this.stats.applied;
      await this.sync();
      this._scheduleSafety(this.stats.applied !== before);
    }, d);
  }

  // The heartbeat the page can see: a JSON ping every period; the gateway answers
  // pong. Judged from the ping's own send time, not the timer's period: a hidden tab
  // whose timers run once a minute still sees its pong arrive within milliseconds of
  // the ping, so a throttled tab is never taken for a dead connection.
  _startHeartbeat(intervalS) {
    this._stopHeartbeat();
    const every = Math.max(1, Math.min(intervalS, 25)) * 1000;
    this._lastRx = Date.now();
    this._pingSentAt = 0;
    this._heartbeat = setInterval(() => {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return;
      const now = Date.now();
      if (this._pingSentAt && this._lastRx < this._pingSentAt && now - this._pingSentAt > this.pongTimeoutMs) {
        try {
          ws.close(4000, 'heartbeat timeout');
        } catch {
          /* ignore */
        }
        if (ws.onclose) ws.onclose({ code: 4000, reason: 'heartbeat timeout' });
        return;
      }
      if (this._pingSentAt && this._lastRx < this._pingSentAt) return; // still waiting for that pong
      try {
        ws.send('{"type":"ping"}');
        this._pingSentAt = now;
        this.stats.pings++;
      } catch {
        /* onclose follows */
      }
    }, every);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeat);
    this._heartbeat = null;
  }

  _startPolling() {
    if (this._pollTimer || this._stopped) return;
    this._pollTimer = setInterval(() => {
      this.stats.polls++;
      this.sync();
      if (this.pending) this.flush();
    }, this.pollIntervalMs);
    this._updateState();
    this.sync();
  }

  _stopPolling() {
    clearInterval(this._pollTimer);
    this._pollTimer = null;
  }

  // Back online, tab visible again: do everything now instead of waiting for timers.
  _wake() {
    if (this._stopped) return;
    this.sync();
    this.flush();
    if (!this._ws && !this._connecting) {
      this._attempt = 0;
      this._connect();
    }
  }

  // ---- state and events ------------------------------------------------------

  _updateState() {
    if (this._stopped) return;
    const online = globalThis.navigator && navigator.onLine === false ? false : this.apiReachable;
    let s;
    if (!online) s = STATE.OFFLINE;
    // A safety catch-up while live does not change the state (the page would announce it).
    else if (this._wsOpen) s = !this._caughtUp || this.seq === null || this._gwCatchingUp ? STATE.CATCHING_UP : STATE.LIVE;
    else if (this._pollTimer) s = STATE.POLLING;
    else s = STATE.CONNECTING;
    this._setState(s);
  }

  _setState(s) {
    if (s === this.state) return;
    const prev = this.state;
    this.state = s;
    this._emit('state', { state: s, prev });
  }

  // Something shown changed: the cached view is dropped and the page told.
  _changed() {
    this._view = null;
    this._emit('tasks', { pending: this.pending });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

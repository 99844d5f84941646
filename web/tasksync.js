// tasksync.js: the client side of the tasksync protocol, as a dependency-free ES module.
//
//   import { TaskSync } from './tasksync.js';
//   const ts = new TaskSync({ apiBase: '', gatewayUrl: 'ws://127.0.0.1:8005', token, userId });
//   ts.addEventListener('tasks', () => render(ts.tasks()));
//   ts.addEventListener('state', (e) => showState(e.detail.state));
//   ts.addEventListener('change', (e) => { if (!e.detail.own) toast(e.detail.event); });
//   ts.start();
//   ts.create({ title: 'Buy groceries' }); ts.update(id, { completed: true }); ts.remove(id);
//   ts.reorder([id3, id1, id2]);
//
// The model. `server` is the user's list exactly as of event `seq` (the last applied
// sequence number): it changes only by applying events in seq order (or by a full
// reload from GET /api/v1/tasks, which comes with its seq). The list shown is `server`
// with the local changes not yet confirmed (`queue`, in the order they were made)
// applied on top: optimistic, and idempotent, so an own change that comes back as an
// event (recognised by origin == our X-Client-Id) is never applied twice.
//
// Delivery: the WebSocket pushes events; on every (re)connect and on start the client
// first fetches /events?since=seq and buffers live events meanwhile; a live event with
// seq <= applied is ignored, one that skips ahead triggers a catch-up; 410 reloads the
// list. When the socket cannot be opened, /events is polled every few seconds until it
// can. The queue lives in localStorage (per user and tab), survives reloads and is sent
// in order whenever the API answers; creates carry client ids, so a replay is harmless.

const BACKOFF_S = [1, 2, 4, 8, 16, 30];
const EVENT_TYPES = new Set(['task.created', 'task.updated', 'task.completed', 'task.deleted', 'task.reordered', 'task.moved']);
const LS = 'tasksync.';
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

function storageOrNull(kind) {
  try {
    const s = globalThis[kind];
    const k = `${LS}probe`;
    s.setItem(k, '1');
    s.removeItem(k);
    return s;
  } catch {
    return null; // private mode, sandboxed frame, node: run without persistence
  }
}

function readJson(storage, key, fallback) {
  if (!storage) return fallback;
  try {
    const v = storage.getItem(key);
    return v == null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

function writeJson(storage, key, value) {
  if (!storage) return;
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // quota: the in-memory state stays right; persistence is best effort
  }
}

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

// A move applied to a list (an array in display order): {id, before: id|null} puts
// the task before that task (null: at the end), {id, after: id|null} after it (null:
// at the top). A move naming a task the list lacks changes nothing.
function applyMove(list, op) {
  const i = list.findIndex((t) => t.id === op.id);
  if (i < 0) return list;
  const out = list.slice();
  const [t] = out.splice(i, 1);
  let at;
  if ('before' in op) at = op.before === null ? out.length : out.findIndex((x) => x.id === op.before);
  else at = op.after === null ? 0 : out.findIndex((x) => x.id === op.after) + (out.some((x) => x.id === op.after) ? 1 : -1);
  if (at < 0) return list;
  out.splice(at, 0, t);
  return out;
}

// An order (ids) applied to a list: listed ids first in that order, the others after
// them in their relative order (what PUT /api/v1/tasks/order does).
function applyOrderList(list, order) {
  const byId = new Map(list.map((t) => [t.id, t]));
  const out = [];
  const listed = new Set();
  for (const id of order) {
    if (byId.has(id) && !listed.has(id)) {
      out.push(byId.get(id));
      listed.add(id);
    }
  }
  for (const t of list) if (!listed.has(t.id)) out.push(t);
  return out;
}

// A task or event from before position keys (integer positions, an order array): the
// list must be reloaded from the API.
function isLegacy(ev) {
  return Array.isArray(ev.order) || (ev.task && typeof ev.task.position === 'number');
}

// The client id of this tab: kept in sessionStorage so that it survives a reload (its
// queue and its echoes stay its own), but not copied into a duplicated tab: a tab that
// finds an id without the flag its own unload left is a copy and takes a new one.
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

export class TaskSync extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.token        bearer token (JWT) of the user
   * @param {string} o.userId       the user id the token is for (keys local storage)
   * @param {string} [o.apiBase]    base URL of backend-api ('' = same origin)
   * @param {string} [o.gatewayUrl] ws://host:port or ws://host:port/ws; null = poll only
   * @param {number} [o.pollIntervalMs=3000] polling period when the socket is down
   * @param {number} [o.stableAfterMs=10000] a connection open this long resets the backoff
   * @param {number} [o.safetySyncMs=30000] catch-up period while live (belt and braces)
   * @param {string} [o.clientId]   X-Client-Id (default: one per tab, kept over reloads)
   * @param {() => Promise<string>} [o.refreshToken] a fresh token for the same user, asked
   *        for when the gateway closes with 4001 (token expired); without it (or when it
   *        fails) 'auth-error' is emitted
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
    this.safetySyncMs = o.safetySyncMs ?? 30000;
    this.pageLimit = o.pageLimit ?? 500;
    this.local = storageOrNull('localStorage');
    this.session = storageOrNull('sessionStorage');
    this.clientId = o.clientId || tabClientId(this.session);

    this.state = STATE.STOPPED;
    this.seq = null; // last applied seq; null = no list loaded yet
    this.server = new Map(); // id -> task, as of seq
    this.deleted = new Set(); // ids known deleted: a late upsert never brings them back
    this.queue = []; // local changes not yet confirmed by the API, in order
    this.confirmedMoves = new Map(); // id -> {position, seq}: a confirmed move until its event is applied
    this.confirmedOrder = null; // {positions, seq}: a confirmed renumbering until its event is applied
    this._localOrder = 0; // creation order of tasks made here (they have no key yet)
    this._forceReload = false; // a legacy event was seen: reload the list
    this.appliedSeqs = []; // seqs applied, in order (diagnostics and tests)
    this.apiReachable = true;
    this.stats = { applied: 0, ignored: 0, catchups: 0, reloads: 0, reconnects: 0, polls: 0, sent: 0 };

    this._ws = null;
    this._wsOpen = false;
    this._gwCatchingUp = false; // the gateway said catching_up: not reading Kafka yet
    this._attempt = 0; // consecutive failed connection attempts (backoff index)
    this._everOpened = false;
    this._buffer = []; // live events received while catching up
    this._syncing = null; // the running catch-up (a promise), single flight
    this._syncAgain = false;
    this._flushing = null;
    this._timers = new Set();
    this._reconnectTimer = null;
    this._pollTimer = null;
    this._flushTimer = null;
    this._flushAttempt = 0;
    this._heartbeat = null;
    this._stopped = true;
    this._onOnline = () => this._wake();
    this._onOffline = () => this._updateState();
    this._onVisible = () => {
      if (globalThis.document && document.visibilityState === 'visible') this._wake();
    };
    this._onStorage = (e) => {
      if (e.key === this._snapshotKey && !this._wsOpen) this.sync();
    };
  }

  get _snapshotKey() {
    return `${LS}snapshot.${this.userId}`;
  }
  get _queueKey() {
    return `${LS}queue.${this.userId}.${this.clientId}`;
  }
  get _aliveKey() {
    return `${LS}alive.${this.clientId}`;
  }

  // ---- public API ------------------------------------------------------------

  /** Starts syncing: shows the cached list, catches up, connects, sends the queue. */
  start() {
    if (!this._stopped) return this;
    this._stopped = false;
    const snap = readJson(this.local, this._snapshotKey, null);
    // A snapshot from before position keys is not used (the list is reloaded).
    if (snap && Array.isArray(snap.tasks) && Number.isInteger(snap.seq) && snap.tasks.every((t) => t && typeof t.position === 'string')) {
      this.server = new Map(snap.tasks.filter((t) => t && typeof t.id === 'string').map((t) => [t.id, t]));
      this.seq = snap.seq;
    }
    this.queue = readJson(this.local, this._queueKey, []);
    if (!Array.isArray(this.queue)) this.queue = [];
    this._heartbeatAlive();
    this._every(5000, () => this._heartbeatAlive());
    this._adoptOrphans();
    this._every(15000, () => this._adoptOrphans());
    if (typeof addEventListener === 'function') {
      addEventListener('online', this._onOnline);
      addEventListener('offline', this._onOffline);
      addEventListener('storage', this._onStorage);
    }
    if (globalThis.document) document.addEventListener('visibilitychange', this._onVisible);
    this._every(this.safetySyncMs, () => {
      if (this._wsOpen) this.sync();
    });
    this._emitTasks();
    this._connect();
    this.sync();
    this.flush();
    return this;
  }

  /** Stops every timer and the socket; the queue stays in localStorage. */
  stop() {
    this._stopped = true;
    for (const t of this._timers) clearInterval(t);
    this._timers.clear();
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._flushTimer);
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
    if (typeof removeEventListener === 'function') {
      removeEventListener('online', this._onOnline);
      removeEventListener('offline', this._onOffline);
      removeEventListener('storage', this._onStorage);
    }
    if (globalThis.document) document.removeEventListener('visibilitychange', this._onVisible);
    this._setState(STATE.STOPPED);
  }

  /** The list as shown: confirmed state plus local changes, in display order. */
  tasks() {
    const m = new Map(this.server);
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
    let list = [...m.values()].sort(byPosition);
    for (const op of this.queue) list = this._applyOpList(list, op);
    return list;
  }

  /** Number of local changes the API has not confirmed yet. */
  get pending() {
    return this.queue.length;
  }

  /** Adds a task at the end. Returns the (optimistic) task; its id is final. */
  create(fields) {
    const title = String(fields.title ?? '').trim();
    if (!title) throw new RangeError('title must not be empty');
    const now = new Date().toISOString();
    const body = {
      id: fields.id || uuid(),
      title,
      description: fields.description ?? null,
      priority: fields.priority || 'medium',
      due_at: fields.due_at ?? null,
    };
    if (fields.completed) body.completed = true;
    this._enqueue({ kind: 'create', id: body.id, body, localOrder: ++this._localOrder + Date.now() * 1000, at: now });
    return this.tasks().find((t) => t.id === body.id);
  }

  /** Changes some of {title, description, priority, due_at, completed}. */
  update(id, fields) {
    const body = {};
    for (const k of ['title', 'description', 'priority', 'due_at', 'completed']) {
      if (fields[k] !== undefined) body[k] = k === 'title' ? String(fields[k]).trim() : fields[k];
    }
    if (body.title === '') throw new RangeError('title must not be empty');
    if (!Object.keys(body).length) return;
    this._enqueue({ kind: 'update', id, body, at: new Date().toISOString() });
  }

  toggle(id) {
    const t = this.tasks().find((x) => x.id === id);
    if (t) this.update(id, { completed: !t.completed });
  }

  remove(id) {
    this._enqueue({ kind: 'delete', id });
  }

  /** Sets the whole display order; `order` lists task ids. For small lists only (the
   * API renumbers at most 1,000 tasks); `move` works for any list. */
  reorder(order) {
    this._enqueue({ kind: 'reorder', order: [...order] });
  }

  /** Moves a task `delta` places (-1 up, +1 down) or to index `to` when given: one
   * POST /api/v1/tasks/{id}/move, which rewrites that task's key only. */
  move(id, delta, to) {
    const ids = this.tasks().map((t) => t.id);
    const from = ids.indexOf(id);
    if (from < 0) return;
    const dest = to !== undefined ? to : from + delta;
    if (dest < 0 || dest >= ids.length || dest === from) return;
    ids.splice(from, 1);
    this.moveTask(id, dest === 0 ? { after: null } : { after: ids[dest - 1] });
  }

  /** Moves a task relative to another: {before: id|null} (null: the end) or
   * {after: id|null} (null: the top). */
  moveTask(id, where) {
    const op = { kind: 'move', id };
    if ('before' in where) op.before = where.before;
    else op.after = where.after ?? null;
    this._enqueue(op);
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
        do {
          this._syncAgain = false;
          await this._catchUp();
        } while (this._syncAgain && !this._stopped);
      } finally {
        this._syncing = null;
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
    // Every page, then the events from the FIRST page's seq: whatever changed while
    // the later pages were read is in those events (applied on top; a task moved past
    // the cursor meanwhile is fetched when its task.moved arrives).
    const server = new Map();
    let seq = null;
    let cursor = null;
    for (let pages = 0; pages < 100000; pages++) {
      const q = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : '?limit=1000';
      const data = await this._api('GET', `/api/v1/tasks${q}`);
      if (!data || !Array.isArray(data.tasks) || !Number.isInteger(data.seq)) throw new ApiError(200, 'bad_response', 'bad task list');
      if (seq === null) seq = data.seq;
      for (const t of data.tasks) if (t && typeof t.id === 'string') server.set(t.id, t);
      cursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
      if (!cursor) break;
    }
    this.server = server;
    this.seq = seq;
    this._forceReload = false;
    if (this.confirmedOrder && this.confirmedOrder.seq <= this.seq) this.confirmedOrder = null;
    for (const [id, c] of this.confirmedMoves) if (c.seq <= this.seq) this.confirmedMoves.delete(id);
    this.stats.reloads++;
    this._emit('reload', { seq: this.seq });
    this._saveSnapshot();
    this._emitTasks();
  }

  async _catchUp() {
    this.stats.catchups++;
    try {
      if (this.seq === null || this._forceReload) await this._reload();
      for (let pages = 0; pages < 1000 && !this._stopped; pages++) {
        let data;
        try {
          data = await this._api('GET', `/api/v1/events?since=${this.seq}&limit=${this.pageLimit}`);
        } catch (e) {
          if (e.status === 410) {
            await this._reload(); // too far behind: the events are gone, take the list
            continue;
          }
          throw e;
        }
        // The API's seq never goes back: one behind ours means the list we hold (a
        // snapshot in localStorage) came from another database. Take the API's list.
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
          this._emitTasks();
        }
        // The list may be behind the API's seq when it is ahead of what was returned.
        if (!(data && data.has_more) || this.seq === before) break;
      }
      this._drainBuffer();
    } catch (e) {
      this._emit('sync-error', { error: e });
    }
  }

  // Applies buffered live events that follow on from seq; a hole triggers another catch-up.
  _drainBuffer() {
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
    this._buffer = rest;
    if (changed) {
      this._saveSnapshot();
      this._emitTasks();
    }
    if (rest.length) this._syncAgain = true;
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
    if (!EVENT_TYPES.has(ev.event_type)) return;
    if (ev.user_id && ev.user_id !== this.userId) return; // never someone else's
    if (ev.seq === null || ev.seq === undefined) {
      // A hand-typed event: no order information; apply it as it is.
      this._applyEvent(ev, 'live');
      this._emitTasks();
      return;
    }
    if (!Number.isInteger(ev.seq)) return;
    if (this.seq !== null && ev.seq <= this.seq) {
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
    this._emitTasks();
  }

  _applyEvent(ev, source) {
    const m = this.server;
    const t = ev.task;
    switch (ev.event_type) {
      case 'task.created':
      case 'task.updated':
      case 'task.completed': {
        if (!t || typeof t.id !== 'string' || this.deleted.has(t.id)) break;
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
        else if (!this.deleted.has(t.id)) this._fetchMissing(t.id);
        break;
      }
      case 'task.deleted':
        if (t && typeof t.id === 'string') {
          m.delete(t.id);
          this.deleted.add(t.id);
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
        return;
    }
    if (Number.isInteger(ev.seq)) {
      this.seq = ev.seq;
      this.appliedSeqs.push(ev.seq);
      if (this.appliedSeqs.length > 20000) this.appliedSeqs.splice(0, 10000);
      if (this.confirmedOrder && this.confirmedOrder.seq <= ev.seq) this.confirmedOrder = null;
      for (const [id, c] of this.confirmedMoves) if (c.seq <= ev.seq) this.confirmedMoves.delete(id);
    }
    if (this._forceReload) this.sync();
    this.stats.applied++;
    const own = ev.origin === this.clientId;
    this._emit('change', { event: ev, own, source, task: t ? m.get(t.id) || t : null });
  }

  // ---- the local queue -------------------------------------------------------

  _enqueue(op) {
    op.opId = uuid();
    this.queue.push(op);
    this._saveQueue();
    this._emit('local', { op });
    this._emitTasks();
    this.flush();
  }

  // A task the list lacks although an event moved it (it moved past the cursor while
  // the pages were read): fetched and shown; later events apply on top.
  async _fetchMissing(id) {
    try {
      const t = await this._api('GET', `/api/v1/tasks/${encodeURIComponent(id)}`);
      if (t && !this.server.has(id)) {
        this._confirmTask(t);
        this._emitTasks();
      }
    } catch {
      // deleted meanwhile (its task.deleted follows) or unreachable (the next reload has it)
    }
  }

  // One queued change applied to the list shown (display order kept).
  _applyOpList(list, op) {
    if (op.kind === 'move') return applyMove(list, op);
    if (op.kind === 'reorder') return applyOrderList(list, op.order);
    const m = new Map(list.map((t) => [t.id, t]));
    this._applyOp(m, op);
    const out = [];
    for (const t of list) if (m.has(t.id)) out.push(m.get(t.id));
    for (const [id, t] of m) if (!list.some((x) => x.id === id)) out.push(t);
    return out;
  }

  _applyOp(m, op) {
    switch (op.kind) {
      case 'create':
        if (!m.has(op.id) && !this.deleted.has(op.id)) {
          m.set(op.id, {
            completed: false,
            ...op.body,
            localOrder: op.localOrder || 0,
            version: 0,
            created_at: op.at,
            updated_at: op.at,
            pending: true,
          });
        }
        break;
      case 'update': {
        const t = m.get(op.id);
        if (t) m.set(op.id, { ...t, ...op.body, pending: true });
        break;
      }
      case 'delete':
        m.delete(op.id);
        break;
      default:
        break;
    }
  }

  _saveQueue() {
    if (!this.local) return;
    if (this.queue.length) writeJson(this.local, this._queueKey, this.queue);
    else this.local.removeItem(this._queueKey);
  }

  /** Sends the queue in order, one request at a time (single flight). */
  flush() {
    if (this._stopped || this._flushing) return this._flushing || Promise.resolve();
    if (!this.queue.length) return Promise.resolve();
    clearTimeout(this._flushTimer);
    this._flushing = (async () => {
      try {
        while (this.queue.length && !this._stopped) {
          const op = this.queue[0];
          let outcome;
          try {
            outcome = await this._send(op);
          } catch (e) {
            if (e instanceof ApiError && (e.transient || e.status === 401)) {
              // Not now: keep it (and everything after it) and try again later.
              this._scheduleFlush();
              return;
            }
            outcome = { rejected: e };
          }
          this._flushAttempt = 0;
          // The head may have been replaced by an adoption meanwhile: remove by id.
          const i = this.queue.findIndex((q) => q.opId === op.opId);
          if (i >= 0) this.queue.splice(i, 1);
          this._saveQueue();
          this.stats.sent++;
          if (outcome && outcome.rejected) this._emit('rejected', { op, error: outcome.rejected });
          this._emitTasks();
        }
      } finally {
        this._flushing = null;
        this._updateState();
      }
    })();
    return this._flushing;
  }

  _scheduleFlush() {
    clearTimeout(this._flushTimer);
    const d = Math.min(backoffDelayMs(this._flushAttempt++), 10000);
    this._flushTimer = setTimeout(() => this.flush(), d);
  }

  // Sends one change. Returns normally when the change is done (or moot: a delete of
  // something already gone); throws ApiError otherwise.
  async _send(op) {
    const enc = encodeURIComponent;
    // Every change carries its own id: the API applies it once however often the
    // request is retried (a reply lost to a network cut), for IDEMPOTENCY_WINDOW.
    const key = op.opId ? { 'Idempotency-Key': op.opId } : undefined;
    // 404: no such task; 410: deleted (delete wins): nothing left to change.
    const gone = (e) => e.status === 404 || e.status === 410;
    switch (op.kind) {
      case 'create': {
        let t;
        try {
          t = await this._api('POST', '/api/v1/tasks', op.body, key);
        } catch (e) {
          if (e.status !== 410) throw e;
          this.server.delete(op.id); // deleted on another device before this arrived
          this.deleted.add(op.id);
          return {};
        }
        if (!REPLAYED.has(t)) this._confirmTask(t); // a replay may be stale: events tell
        return {};
      }
      case 'update': {
        try {
          const t = await this._api('PATCH', `/api/v1/tasks/${enc(op.id)}`, op.body, key);
          if (!REPLAYED.has(t)) this._confirmTask(t);
        } catch (e) {
          if (gone(e)) return {};
          throw e;
        }
        return {};
      }
      case 'delete':
        try {
          await this._api('DELETE', `/api/v1/tasks/${enc(op.id)}`, undefined, key);
        } catch (e) {
          if (!gone(e)) throw e;
        }
        this.server.delete(op.id);
        this.deleted.add(op.id);
        return {};
      case 'reorder': {
        // Only ids the list still has: others were deleted meanwhile (here or elsewhere).
        const known = new Set(this.tasks().map((t) => t.id));
        const order = op.order.filter((id) => known.has(id));
        for (const t of this.tasks()) if (!order.includes(t.id)) order.push(t.id);
        const r = await this._api('PUT', '/api/v1/tasks/order', { order });
        if (r && r.positions && Number.isInteger(r.seq) && (this.seq === null || r.seq > this.seq)) {
          this.confirmedOrder = { positions: r.positions, seq: r.seq };
        }
        return {};
      }
      case 'move': {
        const body = 'before' in op ? { before: op.before } : { after: op.after };
        let r;
        try {
          r = await this._api('POST', `/api/v1/tasks/${enc(op.id)}/move`, body, key);
        } catch (e) {
          // The task or its neighbour was deleted meanwhile: the move is moot.
          if (gone(e) || e.status === 422) return {};
          throw e;
        }
        if (r && r.task && typeof r.task.position === 'string' && Number.isInteger(r.seq) && (this.seq === null || r.seq > this.seq)) {
          this.confirmedMoves.set(op.id, { position: r.task.position, seq: r.seq });
        }
        return {};
      }
      default:
        return {};
    }
  }

  // A task the API returned: newer than what the list has, so show it now (the event
  // that follows carries the same version and changes nothing).
  _confirmTask(t) {
    if (!t || typeof t.id !== 'string' || this.deleted.has(t.id)) return;
    const cur = this.server.get(t.id);
    if (cur && Number.isInteger(cur.version) && Number.isInteger(t.version) && t.version < cur.version) return;
    this.server.set(t.id, { ...(cur || {}), ...t });
  }

  // Queues of tabs that are gone (no heartbeat for 20 s) are taken over, so a change
  // typed in a tab that was closed while offline is still sent.
  _heartbeatAlive() {
    if (this.local) this.local.setItem(this._aliveKey, String(Date.now()));
  }

  _adoptOrphans() {
    if (!this.local) return;
    const prefix = `${LS}queue.${this.userId}.`;
    const now = Date.now();
    const adopted = [];
    for (let i = this.local.length - 1; i >= 0; i--) {
      const k = this.local.key(i);
      if (!k || !k.startsWith(prefix) || k === this._queueKey) continue;
      const owner = k.slice(prefix.length);
      const alive = Number(this.local.getItem(`${LS}alive.${owner}`) || 0);
      if (now - alive < 20000) continue;
      const ops = readJson(this.local, k, []);
      this.local.removeItem(k);
      this.local.removeItem(`${LS}alive.${owner}`);
      if (Array.isArray(ops)) adopted.push(...ops);
    }
    if (adopted.length) {
      this.queue.push(...adopted);
      this._saveQueue();
      this._emitTasks();
      this.flush();
    }
  }

  _saveSnapshot() {
    writeJson(this.local, this._snapshotKey, { seq: this.seq, tasks: [...this.server.values()] });
  }

  // ---- the WebSocket ---------------------------------------------------------

  _wsUrl() {
    let u = this.gatewayUrl.replace(/\/+$/, '');
    if (!/\/ws$/.test(u)) u += '/ws';
    return `${u}${u.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.token)}`;
  }

  _connect() {
    if (this._stopped) return;
    clearTimeout(this._reconnectTimer);
    if (!this.gatewayUrl || typeof WebSocket !== 'function') {
      this._startPolling();
      return;
    }
    let ws;
    try {
      ws = new WebSocket(this._wsUrl());
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
      this._wsOpen = true;
      this._everOpened = true;
      this._stopPolling();
      this._startHeartbeat(30);
      this.sync(); // catch up before live events (buffered meanwhile); sets the state
      this.flush();
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
          if (Number.isInteger(msg.heartbeat_interval) && msg.heartbeat_interval > 0) this._startHeartbeat(msg.heartbeat_interval);
          if (this._gwCatchingUp) {
            // The gateway reads Kafka now: catch up once more (belt and braces: it
            // delivers what was produced meanwhile too).
            this._gwCatchingUp = false;
            this.sync();
          }
          this._emit('connected', { connectionId: msg.connection_id });
          this._updateState();
          break;
        case 'catching_up':
          // Open, but the gateway is not reading Kafka yet; 'connected' follows.
          if (Number.isInteger(msg.heartbeat_interval) && msg.heartbeat_interval > 0) this._startHeartbeat(msg.heartbeat_interval);
          this._gwCatchingUp = true;
          this._emit('catching-up', { connectionId: msg.connection_id });
          this._updateState();
          break;
        case 'error':
          this._emit('server-error', { code: msg.code, message: msg.message });
          break;
        case 'ping':
          try {
            ws.send('{"type":"pong"}');
          } catch {
            /* onclose follows */
          }
          break;
        default:
          break; // pong and anything newer
      }
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._wsOpen = false;
      this._gwCatchingUp = false;
      this._stopHeartbeat();
      this.stats.reconnects++;
      const lived = openedAt ? Date.now() - openedAt : 0;
      if (openedAt && lived >= this.stableAfterMs) this._attempt = 0; // a stable connection resets the backoff
      this._emit('disconnected', { code: e.code, reason: e.reason, lived });
      if (!openedAt) {
        // Could not be established at all (blocked, gateway down): poll meanwhile.
        this._startPolling();
        this._scheduleReconnect();
      } else if (e.code === 1001) {
        // The gateway is going away (deploy): another replica takes us at once.
        this._scheduleReconnect(Math.round(Math.random() * 500));
      } else if (e.code === 4001) {
        // The token expired: reconnect at once with a fresh one, when we can get one.
        this._renewToken();
      } else if (e.code === 1008) {
        // Policy (bad token, origin): do not hammer; poll through the API meanwhile.
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

  _startHeartbeat(intervalS) {
    this._stopHeartbeat();
    const every = Math.max(1, Math.min(intervalS, 25)) * 1000;
    this._lastRx = Date.now();
    this._heartbeat = setInterval(() => {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return;
      // No frame at all for two periods: the connection is dead even if TCP says not.
      if (Date.now() - this._lastRx > 2 * every + 5000) {
        try {
          ws.close(4000, 'heartbeat timeout');
        } catch {
          /* ignore */
        }
        ws.onclose && ws.onclose({ code: 4000, reason: 'heartbeat timeout' });
        return;
      }
      try {
        ws.send('{"type":"ping"}');
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
      if (this.queue.length) this.flush();
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
    if (!this._ws) {
      this._attempt = 0;
      this._connect();
    }
  }

  _every(ms, fn) {
    const t = setInterval(fn, ms);
    this._timers.add(t);
  }

  // ---- state and events ------------------------------------------------------

  _updateState() {
    if (this._stopped) return;
    const online = globalThis.navigator && navigator.onLine === false ? false : this.apiReachable;
    let s;
    if (!online) s = STATE.OFFLINE;
    else if (this._wsOpen) s = this._syncing || this.seq === null || this._gwCatchingUp ? STATE.CATCHING_UP : STATE.LIVE;
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

  _emitTasks() {
    this._emit('tasks', { pending: this.queue.length });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

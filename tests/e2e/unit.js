// Unit tests of web/tasksync.js in node, without a browser or a server: the browser's
// fetch, WebSocket and localStorage are replaced by small scripted stand-ins, so the
// protocol logic (seq bookkeeping, catch-up, 410, echo, queue order, backoff) is
// checked case by case. The real thing is checked end to end in e2e.js.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
const eq = (a, b, msg) => assert(JSON.stringify(a) === JSON.stringify(b), `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);

class MemStorage {
  constructor() {
    this.m = new Map();
  }
  get length() {
    return this.m.size;
  }
  key(i) {
    return [...this.m.keys()][i] ?? null;
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

// A scripted API: handler(method, path, body, headers) -> {status, body} or throws.
function fakeFetch(handler, log) {
  return async (url, init = {}) => {
    const u = new URL(url, 'http://api.test');
    const body = init.body ? JSON.parse(init.body) : undefined;
    if (u.pathname === '/api/v1/ws-ticket' && (init.method || 'GET') === 'POST') {
      log.tickets = (log.tickets || 0) + 1;
      return new Response(JSON.stringify({ ticket: `tk${log.tickets}`, expires_in: 30 }), { status: 200 });
    }
    log.push(`${init.method || 'GET'} ${u.pathname}${u.search}`);
    const r = await handler(init.method || 'GET', u.pathname + u.search, body, init.headers || {});
    if (r === 'network') throw new TypeError('Failed to fetch');
    return new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status || 200, headers: r.headers || {} });
  };
}

class FakeWS {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWS.all.push(this);
  }
  send(s) {
    this.sent.push(s);
  }
  close(code = 1000) {
    this.readyState = 3;
    if (this.onclose) this.onclose({ code, reason: '' });
  }
  // Opens; the gateway's first message follows (connected unless told otherwise).
  open(first = { type: 'connected', connection_id: 'c1', user_id: 'u1', heartbeat_interval: 30 }) {
    this.readyState = 1;
    this.onopen && this.onopen({});
    if (first) this.push(first);
  }
  push(msg) {
    this.onmessage && this.onmessage({ data: JSON.stringify(msg) });
  }
  fail(code = 1006) {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason: '' });
  }
}

const ev = (seq, type, task, extra = {}) => ({ event_id: `e${seq}`, event_type: type, user_id: 'u1', seq, origin: 'other', timestamp: 't', task, ...extra });
const live = (e) => ({ type: 'task_update', event: e.event_type, event_id: e.event_id, user_id: e.user_id, seq: e.seq, task: e.task, positions: e.positions, order: e.order, origin: e.origin, timestamp: e.timestamp });
// positions are keys (strings); a small number n stands for the key 'a' + n
const task = (id, title, position, version = 1) => ({ id, title, description: null, priority: 'medium', due_at: null, completed: false, position: typeof position === 'number' ? `a${position}` : position, version, created_at: 'c', updated_at: 'u' });

// Starts a client and waits until its store is loaded and its first socket (if any) exists.
async function started(c) {
  c.start();
  await c.ready;
  await sleep(5);
  return c;
}
// The newest socket, once the client has fetched its ticket and opened it.
async function nextWS(n) {
  for (let i = 0; i < 100 && FakeWS.all.length < n; i++) await sleep(1);
  return FakeWS.all[n - 1];
}

async function withEnv(fn) {
  const saved = { fetch: globalThis.fetch, WebSocket: globalThis.WebSocket, localStorage: globalThis.localStorage };
  FakeWS.all = [];
  globalThis.WebSocket = FakeWS;
  try {
    return await fn();
  } finally {
    Object.assign(globalThis, saved);
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete globalThis[k];
  }
}

export function register(test, { TaskSync, backoffDelayMs, MemoryStore, compact, resolveMove, safetyDelayMs }) {
  test('unit: backoff 1,2,4,8,16,30 s with jitter, capped', 5000, async () => {
    eq([0, 1, 2, 3, 4, 5, 6, 9].map((a) => backoffDelayMs(a, () => 0.5)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000], 'no jitter');
    eq([backoffDelayMs(0, () => 0), backoffDelayMs(0, () => 1)], [800, 1200], 'jitter bounds');
  });

  test('unit: catch-up before live events; seq <= applied ignored; a skip triggers catch-up', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const events = [ev(6, 'task.created', task('a', 'A', 0)), ev(7, 'task.created', task('b', 'B', 1)), ev(8, 'task.updated', task('a', 'A2', 0, 2)), ev(9, 'task.deleted', { id: 'b' })];
      let gate;
      const gated = new Promise((r) => (gate = r));
      globalThis.fetch = fakeFetch(async (m, p) => {
        if (p.split('?')[0] === '/api/v1/tasks') return { body: { tasks: [], seq: 5 } };
        const since = Number(new URL(p, 'http://x').searchParams.get('since'));
        if (since === 5) await gated; // hold the first catch-up: live events arrive meanwhile
        return { body: { events: events.filter((e) => e.seq > since && e.seq <= 7), seq: 7, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      const applied = [];
      c.addEventListener('change', (e) => applied.push(e.detail.event.seq));
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(5);
      ws.push(live(events[0])); // 6 while catching up: buffered
      ws.push(live(events[1])); // 7 buffered
      gate();
      await sleep(20);
      eq(applied, [6, 7], 'after the first catch-up');
      ws.push(live(events[0])); // old: ignored
      eq(applied, [6, 7], 'duplicate ignored');
      // 9 skips 8: catch-up fetches 8 (and 9 comes from the buffer or the API, once)
      events.splice(0); // the API now has 8 and 9
      events.push(ev(8, 'task.updated', task('a', 'A2', 0, 2)), ev(9, 'task.deleted', { id: 'b' }));
      globalThis.fetch = fakeFetch(async (m, p) => {
        const since = Number(new URL(p, 'http://x').searchParams.get('since'));
        return { body: { events: events.filter((e) => e.seq > since), seq: 9, has_more: false } };
      }, log);
      ws.push(live(ev(9, 'task.deleted', { id: 'b' })));
      await sleep(30);
      eq(applied, [6, 7, 8, 9], 'after the skip');
      eq(c.tasks().map((t) => [t.id, t.title]), [['a', 'A2']], 'list');
      eq(c.seq, 9, 'seq');
      c.stop();
    });
  });

  test('unit: 410 from /events reloads the list', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      let reloads = 0;
      globalThis.fetch = fakeFetch(async (m, p) => {
        if (p.split('?')[0] === '/api/v1/tasks') return { body: reloads++ === 0 ? { tasks: [task('a', 'A', 0)], seq: 3 } : { tasks: [task('z', 'Z', 0)], seq: 900 } };
        const since = Number(new URL(p, 'http://x').searchParams.get('since'));
        if (since === 3) return { status: 410, body: { error: { code: 'gone', message: 'too old' } } };
        return { body: { events: [], seq: 900, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000 });
      await started(c);
      await sleep(30);
      eq(c.seq, 900, 'seq after 410');
      eq(c.tasks().map((t) => t.id), ['z'], 'list after 410');
      c.stop();
    });
  });

  test('unit: own echo recognised by origin, applied once; hand-typed seq null applied', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      let clientId;
      globalThis.fetch = fakeFetch(async (m, p, body, h) => {
        if (p.split('?')[0] === '/api/v1/tasks' && m === 'GET') return { body: { tasks: [], seq: 0 } };
        if (p.split('?')[0] === '/api/v1/tasks' && m === 'POST') {
          clientId = h['X-Client-Id'];
          return { status: 201, body: task(body.id, body.title, 0) };
        }
        return { body: { events: [], seq: 0, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      const changes = [];
      c.addEventListener('change', (e) => changes.push(e.detail));
      await started(c);
      (await nextWS(1)).open();
      await sleep(10);
      const t = c.create({ title: 'Mine' });
      eq(c.tasks().map((x) => x.title), ['Mine'], 'optimistic');
      await sleep(10);
      eq(clientId, c.clientId, 'X-Client-Id');
      FakeWS.all[0].push(live({ ...ev(1, 'task.created', task(t.id, 'Mine', 0)), origin: c.clientId }));
      eq(c.tasks().map((x) => x.title), ['Mine'], 'after the echo');
      assert(changes.length === 1 && changes[0].own === true, `echo not own: ${JSON.stringify(changes)}`);
      FakeWS.all[0].push({ type: 'task_update', event: 'task.created', user_id: 'u1', seq: null, task: { id: 't1', title: 'By hand' }, origin: null });
      eq(c.tasks().map((x) => x.title), ['Mine', 'By hand'], 'seq null applied');
      eq(c.seq, 1, 'seq null does not move seq');
      c.stop();
    });
  });

  test('unit: offline queue kept in storage, survives a restart, sent in order', 10000, async () => {
    await withEnv(async () => {
      const store = new MemoryStore();
      const log = [];
      let up = false;
      let pos = 0;
      globalThis.fetch = fakeFetch(async (m, p, body) => {
        if (!up) return 'network';
        if (p.split('?')[0] === '/api/v1/tasks' && m === 'GET') return { body: { tasks: [], seq: 0 } };
        if (p.split('?')[0] === '/api/v1/tasks' && m === 'POST') return { status: 201, body: task(body.id, body.title, pos++) };
        if (m === 'PATCH') return { body: { ...task(p.split('/').pop(), body.title || 'x', 0, 2), ...body } };
        if (m === 'DELETE') return { status: 404, body: { error: { code: 'not_found', message: 'gone' } } };
        return { body: { events: [], seq: 0, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', clientId: 'tab1', gatewayUrl: null, pollIntervalMs: 60000, store });
      await started(c);
      const a = c.create({ title: 'one' });
      c.create({ title: 'two' });
      c.update(a.id, { title: 'one!' });
      c.remove('gone-already');
      await sleep(10);
      eq(c.pending, 3, 'queued (the edit went into its create)');
      eq(store.ops.size, 3, 'persisted');
      eq(c.state, 'offline', 'state');
      c.stop();
      // "reload": a new client of the same tab finds the queue
      const c2 = new TaskSync({ token: 't', userId: 'u1', clientId: 'tab1', gatewayUrl: null, pollIntervalMs: 60000, store });
      up = true;
      log.length = 0;
      await started(c2);
      await sleep(30);
      eq(c2.pending, 0, 'sent');
      eq(log.filter((l) => !l.startsWith('GET')), ['POST /api/v1/tasks', 'POST /api/v1/tasks', 'DELETE /api/v1/tasks/gone-already'], 'order');
      eq(c2.tasks().map((t) => t.title), ['one!', 'two'], 'list');
      c2.stop();
    });
  });

  test('unit: socket that cannot open -> polling, backoff grows, stable connection resets it', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      globalThis.fetch = fakeFetch(async (m, p) => (p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } }), log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000, stableAfterMs: 0, drainSpreadMs: 3000 });
      const delays = [];
      c.addEventListener('reconnect-scheduled', (e) => delays.push(e.detail.delayMs));
      await started(c);
      (await nextWS(1)).fail();
      await sleep(5);
      eq(c.state, 'polling', 'state after a failed open');
      c._connect();
      (await nextWS(2)).fail();
      c._connect();
      (await nextWS(3)).fail();
      assert(delays[0] >= 800 && delays[0] <= 1200 && delays[1] >= 1600 && delays[1] <= 2400 && delays[2] >= 3200 && delays[2] <= 4800, `delays ${delays}`);
      c._connect();
      (await nextWS(4)).open();
      await sleep(5);
      eq(c.state, 'live', 'state once open');
      FakeWS.all[3].fail(1006); // lived >= stableAfterMs (0): backoff starts over
      assert(delays[3] >= 800 && delays[3] <= 1200, `delay after a stable connection ${delays[3]}`);
      // A drain (1001): spread over drainSpreadMs, not all at once.
      const spread = [];
      for (let i = 0; i < 40; i++) {
        c._connect();
        const w = await nextWS(5 + i);
        w.open();
        w.fail(1001);
        spread.push(delays[delays.length - 1]);
      }
      assert(spread.every((d) => d >= 0 && d <= 3000), `delays after 1001 ${spread}`);
      assert(Math.max(...spread) - Math.min(...spread) > 1000, `delays after 1001 not spread: ${spread}`);
      c.stop();
    });
  });

  test('unit: polls every period while the socket cannot open; once it opens, push only (polling stops)', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      globalThis.fetch = fakeFetch(async (m, p) => (p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } }), log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 20 });
      const states = [];
      c.addEventListener('state', (e) => states.push(e.detail.state));
      await started(c);
      (await nextWS(1)).fail(1006); // never opened: blocked
      await sleep(130);
      const polled = log.filter((l) => l.startsWith('GET /api/v1/events')).length;
      assert(c.stats.polls >= 3 && polled >= 3, `polls ${c.stats.polls}, /events requests ${polled}`);
      eq(c.state, 'polling', 'state while blocked');
      c._connect(); // the reconnect timer's attempt, now that the socket can open
      (await nextWS(2)).open();
      await sleep(20);
      eq(c.state, 'live', 'state once open');
      const polls = c.stats.polls;
      log.length = 0;
      await sleep(100);
      eq(c.stats.polls, polls, 'polls after the socket opened');
      eq(log, [], 'requests while live and idle');
      assert(states.includes('polling') && states[states.length - 1] === 'live', `states ${states}`);
      // The gateway's JSON ping is answered.
      FakeWS.all[1].push({ type: 'ping' });
      eq(FakeWS.all[1].sent.filter((x) => x === '{"type":"pong"}').length, 1, 'pong');
      c.stop();
    });
  });

  test('unit: catching_up from the gateway: catching up until its connected, then a catch-up and live', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      globalThis.fetch = fakeFetch(async (m, p) => (p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } }), log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      await started(c);
      (await nextWS(1)).open({ type: 'catching_up', connection_id: 'c1', user_id: 'u1', heartbeat_interval: 30 });
      await sleep(20);
      eq(c.state, 'catching_up', 'state while the gateway catches up');
      log.length = 0;
      FakeWS.all[0].push({ type: 'connected', connection_id: 'c1', user_id: 'u1', heartbeat_interval: 30 });
      await sleep(20);
      eq(c.state, 'live', 'state after connected');
      assert(log.some((l) => l.startsWith('GET /api/v1/events')), `no catch-up after connected: ${log}`);
      c.stop();
    });
  });

  test('unit: close 4001 (token expired): a fresh token from refreshToken, reconnect at once; without one, auth-error', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      globalThis.fetch = fakeFetch(async (m, p) => (p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } }), log);
      const c = new TaskSync({ token: 'old', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000, refreshToken: async () => 'fresh' });
      const delays = [];
      c.addEventListener('reconnect-scheduled', (e) => delays.push(e.detail.delayMs));
      await started(c);
      (await nextWS(1)).open();
      FakeWS.all[0].fail(4001);
      await sleep(20);
      eq(c.token, 'fresh', 'token after 4001');
      assert(delays.length === 1 && delays[0] <= 500, `reconnect delays ${delays}`);
      c.stop();

      const d = new TaskSync({ token: 'old', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      let authError = 0;
      d.addEventListener('auth-error', () => authError++);
      const n = FakeWS.all.length;
      await started(d);
      const ws = await nextWS(n + 1);
      ws.open();
      ws.fail(4001);
      await sleep(20);
      eq(authError, 1, 'auth-error without refreshToken');
      d.stop();
    });
  });

  test('unit: a cached list from another database (API seq behind ours) is replaced by the API list', 10000, async () => {
    await withEnv(async () => {
      const store = new MemoryStore();
      await store.putMeta('snapshot', { seq: 50, tasks: [task('old', 'Old life', 0)] });
      const log = [];
      globalThis.fetch = fakeFetch(async (m, p) => {
        if (p.split('?')[0] === '/api/v1/tasks') return { body: { tasks: [task('n', 'New', 0)], seq: 3 } };
        return { body: { events: [], seq: 3, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000, store });
      await started(c);
      await sleep(30);
      eq(c.seq, 3, 'seq');
      eq(c.tasks().map((t) => t.title), ['New'], 'list');
      await c._saveSnapshotNow();
      eq((await store.getMeta('snapshot')).seq, 3, 'snapshot');
      c.stop();
    });
  });

  test('unit: changes the API refuses with 5xx stay queued, in order, until it accepts them', 10000, async () => {
    await withEnv(async () => {
      const store = new MemoryStore();
      const log = [];
      let failing = true;
      const got = [];
      globalThis.fetch = fakeFetch(async (m, p, body) => {
        if (m === 'GET') return p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } };
        if (failing) return { status: 503, body: { error: { code: 'unavailable', message: 'db down' } } };
        got.push(`${m} ${body && body.title}`);
        return { status: m === 'POST' ? 201 : 200, body: task(body.id || p.split('/').pop(), body.title, got.length - 1, 1) };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', clientId: 'tab1', gatewayUrl: null, pollIntervalMs: 60000, store });
      await started(c);
      await sleep(10);
      const a = c.create({ title: 'first' });
      c.create({ title: 'second' });
      c.update(a.id, { title: 'first, edited' });
      await sleep(20);
      eq(c.pending, 2, 'kept while the API answers 503 (the edit went into its create)');
      eq(c.state, 'offline', 'state while the API answers 503');
      eq(store.ops.size, 2, 'persisted');
      eq(c.tasks().map((t) => t.title), ['first, edited', 'second'], 'shown meanwhile');
      failing = false;
      await c.flush(); // what the retry timer does
      eq(c.pending, 0, 'sent');
      eq(got, ['POST first, edited', 'POST second'], 'order');
      eq(store.ops.size, 0, 'queue cleared');
      c.stop();
    });
  });

  test('unit: every page loaded, keys sorted as strings, task.moved and positions applied, a move is one POST', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const pages = {
        '': { tasks: [task('b', 'B', 'a1'), task('c', 'C', 'a1V')], seq: 4, next_cursor: 'k1.a1V' },
        'k1.a1V': { tasks: [task('d', 'D', 'b10')], seq: 5, next_cursor: null },
      };
      const events = [ev(5, 'task.created', task('a', 'A', 'Zz')), ev(6, 'task.moved', { id: 'd', position: 'a0V' }), ev(7, 'task.reordered', null, { positions: { b: 'a2' } })];
      const posts = [];
      globalThis.fetch = fakeFetch(async (m, p, body) => {
        const u = new URL(p, 'http://x');
        if (u.pathname === '/api/v1/tasks' && m === 'GET') return { body: pages[u.searchParams.get('cursor') || ''] };
        if (m === 'POST' && u.pathname.endsWith('/move')) {
          posts.push([u.pathname, body]);
          return { body: { task: task('c', 'C', 'Zy'), seq: 8 } };
        }
        const since = Number(u.searchParams.get('since'));
        return { body: { events: events.filter((e) => e.seq > since), seq: 7, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000 });
      await started(c);
      await sleep(30);
      // catch-up from the FIRST page's seq (4): event 5 is applied, nothing is skipped
      eq(c.seq, 7, 'seq');
      assert(log.includes('GET /api/v1/events?since=4&limit=500') || log.some((l) => l.startsWith('GET /api/v1/events?since=4')), `catch-up from the first page: ${log.join(' ')}`);
      // 'Zz' < 'a0V' < 'a1V' < 'a2' as strings ('Z' sorts before 'a'; 'b10' would sort after 'a2')
      eq(c.tasks().map((t) => t.id), ['a', 'd', 'c', 'b'], 'order by key');
      c.move('c', -2); // to the top: after nothing
      eq(c.tasks().map((t) => t.id), ['c', 'a', 'd', 'b'], 'optimistic');
      await sleep(30);
      eq(posts, [['/api/v1/tasks/c/move', { after: null }]], 'one POST');
      eq(c.tasks().map((t) => t.id), ['c', 'a', 'd', 'b'], 'confirmed');
      c.moveTask('a', { before: null });
      eq(c.tasks().map((t) => t.id), ['c', 'd', 'b', 'a'], 'to the end');
      c.stop();
    });
  });

  // ---- issue 14: merge, compaction, moves, tickets, catch-up that ends ----------

  test('unit: compaction: create+edit+delete vanish; edits merge per field; a change being sent is never touched', 5000, async () => {
    const op = (kind, id, extra = {}) => ({ kind, id, opId: `${kind}-${id}-${extra.n || 0}`, k: extra.n || 0, ...extra });
    const apply = (ops, o) => {
      const d = compact(ops, o);
      const del = new Set(d.del);
      const out = ops.filter((x) => !del.has(x.opId));
      for (const p of d.put) {
        const i = out.findIndex((x) => x.opId === p.opId);
        if (i >= 0) out[i] = p;
        else out.push(p);
      }
      return out;
    };
    let q = [];
    q = apply(q, op('create', 'a', { n: 1, body: { id: 'a', title: 'A', priority: 'low' } }));
    q = apply(q, op('update', 'a', { n: 2, body: { title: 'A2' } }));
    eq(q.map((o) => [o.kind, o.body]), [['create', { id: 'a', title: 'A2', priority: 'low' }]], 'edit into the create');
    q = apply(q, op('move', 'a', { n: 3, after: null }));
    q = apply(q, op('delete', 'a', { n: 4 }));
    eq(q, [], 'create, edit, move, delete: nothing left');

    q = apply([], op('update', 'b', { n: 1, body: { title: 'B1' }, base_version: 3 }));
    q = apply(q, op('update', 'b', { n: 2, body: { title: 'B2', priority: 'high' }, base_version: 4 }));
    eq(q.map((o) => [o.body, o.base_version]), [[{ title: 'B2', priority: 'high' }, 3]], 'consecutive edits merge, the first base stays');
    q = apply(q, op('move', 'b', { n: 3, before: null }));
    q = apply(q, op('move', 'b', { n: 4, after: null }));
    eq(q.map((o) => o.kind + o.k), ['update1', 'move4'], 'a move replaces the queued move');
    q = apply(q, op('delete', 'b', { n: 5 }));
    eq(q.map((o) => o.kind), ['delete'], 'a delete drops the edits and moves of a task the server has');

    // Being sent: never changed, never merged into, never dropped.
    q = [{ ...op('create', 'c', { n: 1, body: { id: 'c', title: 'C' } }), inflight: true }];
    q = apply(q, op('update', 'c', { n: 2, body: { title: 'C2' } }));
    eq(q.map((o) => [o.kind, o.body.title]), [['create', 'C'], ['update', 'C2']], 'edit after a create being sent');
    q = apply(q, op('delete', 'c', { n: 3 }));
    eq(q.map((o) => o.kind), ['create', 'delete'], 'delete after a create being sent: the create stays, the edit goes');
  });

  test('unit: moves name both neighbours and fall back to the one that survives', 5000, async () => {
    const has = (ids) => (id) => ids.includes(id);
    eq(resolveMove({ id: 'x', before: 'b', after: 'a', prefer: 'before' }, has(['a', 'b'])), { before: 'b' }, 'named one');
    eq(resolveMove({ id: 'x', before: 'b', after: 'a', prefer: 'before' }, has(['a'])), { after: 'a' }, 'other one');
    eq(resolveMove({ id: 'x', before: 'b', after: null, prefer: 'before' }, has([])), { after: null }, 'top');
    eq(resolveMove({ id: 'x', before: 'b', after: 'a', prefer: 'after' }, has([])), null, 'both gone');
    await withEnv(async () => {
      const log = [];
      const bodies = [];
      globalThis.fetch = fakeFetch(async (m, p, body) => {
        const u = new URL(p, 'http://x');
        if (u.pathname === '/api/v1/tasks' && m === 'GET') return { body: { tasks: [task('a', 'A', 'a1'), task('b', 'B', 'a2'), task('c', 'C', 'a3'), task('x', 'X', 'a4')], seq: 4 } };
        if (u.pathname.endsWith('/move')) {
          bodies.push(body);
          if (body.before === 'c') return { status: 422, body: { error: { code: 'validation_failed', message: 'no such task: c' } } };
          return { body: { task: { ...task('x', 'X', 'a2V') }, seq: 6 } };
        }
        return { body: { events: [], seq: 4, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000 });
      await started(c);
      await sleep(20);
      c.moveTask('x', { before: 'x' });
      eq(c.pending, 0, 'dropped on itself: nothing queued');
      c.moveTask('x', { before: 'c' }); // between b and c; c was deleted on the server meanwhile
      eq(c.tasks().map((t) => t.id), ['a', 'b', 'x', 'c'], 'optimistic');
      await sleep(30);
      eq(bodies, [{ before: 'c' }, { after: 'b' }], 'refused next to c, then placed after b');
      eq(c.pending, 0, 'sent');
      c.stop();
    });
  });

  test('unit: PATCH carries only the changed fields and base_version; conflicts come back as a conflict event; 410 drops the change', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const patches = [];
      let v = 3;
      globalThis.fetch = fakeFetch(async (m, p, body, h) => {
        const u = new URL(p, 'http://x');
        if (u.pathname === '/api/v1/tasks' && m === 'GET') return { body: { tasks: [{ ...task('a', 'A', 'a1', 3), priority: 'low' }, task('gone', 'G', 'a2', 1)], seq: 4 } };
        if (m === 'PATCH' && u.pathname.endsWith('/gone')) return { status: 410, body: { error: { code: 'task_deleted', message: 'task deleted' } } };
        if (m === 'PATCH') {
          patches.push({ body, key: h['Idempotency-Key'] });
          v++;
          if (body.title === 'Mine') return { body: { task: { ...task('a', 'Theirs', 'a1', v), priority: body.priority || 'low' }, conflicts: [{ field: 'title', yours: 'Mine', theirs: 'Theirs' }] } };
          return { body: { task: { ...task('a', body.title || 'A', 'a1', v), priority: body.priority || 'low' }, conflicts: [] } };
        }
        return { body: { events: [], seq: 4, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000 });
      const conflicts = [];
      const rejected = [];
      c.addEventListener('conflict', (e) => conflicts.push(e.detail));
      c.addEventListener('rejected', (e) => rejected.push(e.detail));
      await started(c);
      await sleep(20);
      c.update('a', { priority: 'high' });
      await sleep(20);
      eq(patches[0].body, { priority: 'high', base_version: 3 }, 'only the field changed, with its base');
      assert(/^[0-9a-f-]{36}$/.test(patches[0].key), `Idempotency-Key ${patches[0].key}`);
      c.update('a', { title: 'Mine' }, { baseVersion: 3 }); // an editor opened on version 3
      await sleep(20);
      eq(patches[1].body, { title: 'Mine', base_version: 3 }, 'the editor\'s base');
      eq(conflicts.length, 1, 'one conflict event');
      eq(conflicts[0].conflicts, [{ field: 'title', yours: 'Mine', theirs: 'Theirs' }], 'yours and theirs');
      eq(c.tasks().find((t) => t.id === 'a').title, 'Theirs', 'their value shown');
      c.update('gone', { title: 'too late' });
      await sleep(20);
      eq(rejected.length, 1, 'a change to a deleted task is dropped and reported');
      eq(rejected[0].error.status, 410, '410');
      eq(c.pending, 0, 'nothing left');
      c.stop();
    });
  });

  test('unit: edits queued behind a sent edit of the same task are rebased on its version', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const patches = [];
      let release;
      const held = new Promise((r) => (release = r));
      globalThis.fetch = fakeFetch(async (m, p, body) => {
        const u = new URL(p, 'http://x');
        if (u.pathname === '/api/v1/tasks' && m === 'GET') return { body: { tasks: [task('a', 'A', 'a1', 3)], seq: 4 } };
        if (m === 'PATCH') {
          patches.push(body);
          if (patches.length === 1) await held;
          return { body: { task: task('a', body.title || 'A', 'a1', 3 + patches.length), conflicts: [] } };
        }
        return { body: { events: [], seq: 4, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000 });
      await started(c);
      await sleep(20);
      c.update('a', { title: 'one' });
      await sleep(10); // being sent
      c.update('a', { title: 'two' });
      release();
      await sleep(30);
      eq(patches, [{ title: 'one', base_version: 3 }, { title: 'two', base_version: 4 }], 'second based on the first one\'s version');
      c.stop();
    });
  });

  test('unit: the socket opens with a ticket from POST /ws-ticket (never the token); catch-up waits for the gateway\'s first message', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      globalThis.fetch = fakeFetch(async (m, p) => (p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } }), log);
      const c = new TaskSync({ token: 'secret-session', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      await started(c);
      const ws = await nextWS(1);
      assert(ws.url === 'ws://gw.test/ws?ticket=tk1', `url ${ws.url}`);
      assert(!ws.url.includes('secret-session'), 'token in the URL');
      log.length = 0;
      ws.open(null); // open, nothing said yet
      await sleep(20);
      eq(log.filter((l) => l.startsWith('GET /api/v1/events')), [], 'no catch-up on onopen');
      ws.push({ type: 'connected', connection_id: 'c1', user_id: 'u1', heartbeat_interval: 30 });
      await sleep(20);
      eq(log.filter((l) => l.startsWith('GET /api/v1/events')).length, 1, 'catch-up after connected');
      ws.fail(1006);
      c._connect();
      const ws2 = await nextWS(2);
      assert(ws2.url === 'ws://gw.test/ws?ticket=tk2', `a fresh ticket per connect: ${ws2.url}`);
      c.stop();
    });
  });

  test('unit: a seq the API lacks: reported once, one reload, then ignored (no loop); unknown event types advance seq', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      let apiSeq = 2;
      const events = [ev(1, 'task.created', task('a', 'A', 'a1')), ev(2, 'task.created', task('b', 'B', 'a2'))];
      globalThis.fetch = fakeFetch(async (m, p) => {
        const u = new URL(p, 'http://x');
        if (u.pathname === '/api/v1/tasks') return { body: { tasks: [task('a', 'A', 'a1'), task('b', 'B', 'a2')], seq: apiSeq } };
        const since = Number(u.searchParams.get('since'));
        return { body: { events: events.filter((e) => e.seq > since), seq: apiSeq, has_more: false } };
      }, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      const errors = [];
      c.addEventListener('sync-error', (e) => errors.push(e.detail.error.code));
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(30);
      eq(c.seq, 2, 'caught up');
      const reloads = c.stats.reloads;
      log.length = 0;
      ws.push(live(ev(999999, 'task.created', task('h', 'Hand-typed', 'z')))); // not the API's
      await sleep(60);
      eq(errors, ['unknown_seq'], 'reported once');
      eq(c.stats.reloads - reloads, 1, 'one reload');
      ws.push(live(ev(999999, 'task.created', task('h', 'Hand-typed', 'z')))); // again: ignored
      await sleep(30);
      const gets = log.filter((l) => l.startsWith('GET /api/v1/events')).length;
      assert(gets <= 3, `GET /events after the unknown seq: ${gets} (${log.join(', ')})`);
      eq(errors.length, 1, 'not reported again');
      eq(c.seq, 2, 'seq unchanged');
      // Live again: the next real event applies at once.
      apiSeq = 4;
      events.push(ev(3, 'task.archived', { id: 'a' }), ev(4, 'task.updated', task('b', 'B2', 'a2', 2)));
      ws.push(live(ev(3, 'task.archived', { id: 'a' }))); // a type this client does not know
      ws.push(live(ev(4, 'task.updated', task('b', 'B2', 'a2', 2))));
      await sleep(30);
      eq(c.seq, 4, 'the unknown type took its seq');
      eq(c.tasks().map((t) => t.title), ['A', 'B2'], 'list');
      eq(c.stats.reloads - reloads, 1, 'no reload for an unknown type');
      c.stop();
    });
  });

  test('unit: safety catch-up backs off to minutes while push is healthy (fewer than 10 an hour)', 5000, async () => {
    let t = 0;
    let n = 0;
    while (t < 3600000) {
      t += safetyDelayMs(n++, 120000, 900000, () => 0); // the shortest delays the jitter allows (-20 %)
      if (t < 3600000) assert(n < 9, `${n} safety catch-ups within an hour (+1 catch-up on connect)`);
    }
    eq([0, 1, 2, 3, 4, 9].map((i) => safetyDelayMs(i, 120000, 900000, () => 0.5)), [120000, 240000, 480000, 900000, 900000, 900000], 'schedule');
  });

  test('unit: a store that refuses a write (quota) is reported, and the change is still sent', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const got = [];
      globalThis.fetch = fakeFetch(async (m, p, body) => {
        if (m === 'GET') return p.split('?')[0] === '/api/v1/tasks' ? { body: { tasks: [], seq: 0 } } : { body: { events: [], seq: 0, has_more: false } };
        got.push(body.title);
        return { status: 201, body: task(body.id, body.title, 'a1') };
      }, log);
      const store = new MemoryStore({ maxOps: 0 });
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: null, pollIntervalMs: 60000, store });
      const errs = [];
      c.addEventListener('storage-error', (e) => errs.push(e.detail));
      await started(c);
      c.create({ title: 'unsaved' });
      await sleep(30);
      eq(errs.length, 1, 'one storage-error');
      eq(errs[0].quota, true, 'marked as quota');
      eq(got, ['unsaved'], 'sent anyway');
      eq(c.pending, 0, 'nothing left');
      c.stop();
    });
  });

  // ---- lists (issue 13) ----------------------------------------------------------

  const DEF = '00000000-0000-3000-8000-000000000001';
  const GRO = '11111111-1111-4111-8111-111111111111';
  const WORK = '22222222-2222-4222-8222-222222222222';
  const L = (id, name, role, extra = {}) => ({ id, name, owner_id: role === 'owner' ? 'u1' : 'alice', default: id === DEF, role, members: 2, ...extra });
  // An API with lists: GET /lists, /tasks?list_id=, /lists/{id}; `events` is the feed.
  function listApi(state, log) {
    return fakeFetch(async (m, p, body) => {
      const u = new URL(p, 'http://x');
      const lid = u.searchParams.get('list_id');
      if (u.pathname === '/api/v1/lists' && m === 'GET') return { body: { lists: state.lists } };
      if (u.pathname.startsWith('/api/v1/lists/') && m === 'GET') {
        const l = state.lists.find((x) => x.id === u.pathname.split('/')[4]);
        return l ? { body: { ...l, members: [{ user_id: l.owner_id, role: 'owner' }, { user_id: 'u1', role: l.role }] } } : { status: 404, body: { error: { code: 'not_found' } } };
      }
      if (u.pathname === '/api/v1/tasks' && m === 'GET') return { body: { tasks: state.tasks[lid || DEF] || [], seq: state.seq, next_cursor: null, list_id: lid || DEF } };
      if (u.pathname === '/api/v1/events') {
        const since = Number(u.searchParams.get('since'));
        return { body: { events: state.events.filter((e) => e.seq > since), seq: state.seq, has_more: false } };
      }
      if (state.write) return state.write(m, p, body);
      return { status: 503, body: { error: { code: 'unavailable' } } };
    }, log);
  }

  test('unit: lists: tasks kept per list, events routed by list_id, a task of a shared list is changed with its list_id', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const state = {
        seq: 4,
        lists: [L(DEF, 'Tasks', 'owner', { members: 1 }), L(GRO, 'Groceries', 'editor')],
        tasks: { [DEF]: [task('d1', 'Mine', 'a1')], [GRO]: [task('g1', 'milk', 'a1')] },
        events: [],
      };
      const sent = [];
      state.write = (m, p, body) => {
        sent.push([m, p, body]);
        return { body: { ...task('g1', 'milk', 'a1', 2), ...body, list_id: GRO } };
      };
      globalThis.fetch = listApi(state, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(20);
      eq(c.defaultListId, DEF, 'the default list from the page');
      eq(c.lists().map((l) => [l.name, l.role]), [['Tasks', 'owner'], ['Groceries', 'editor']], 'lists');
      eq(c.tasks().map((t) => t.title), ['Mine'], 'the default list shown');
      eq(c.tasks(GRO).map((t) => t.title), ['milk'], 'Groceries kept apart');
      // An event of Groceries lands in Groceries only, with who made it.
      const changes = [];
      c.addEventListener('change', (e) => changes.push(e.detail));
      ws.push({ ...live(ev(5, 'task.created', task('g2', 'bread', 'a2'))), list_id: GRO, actor: 'carol' });
      eq(c.tasks().map((t) => t.title), ['Mine'], 'default list unchanged');
      eq(c.tasks(GRO).map((t) => t.title), ['milk', 'bread'], 'Groceries got bread');
      eq([changes[0].listId, changes[0].event.actor], [GRO, 'carol'], 'change names list and actor');
      c.select(GRO);
      eq(c.tasks().map((t) => t.title), ['milk', 'bread'], 'selected');
      c.update('g1', { completed: true });
      const nt = c.create({ title: 'eggs' });
      await sleep(30);
      eq(sent.map((x) => `${x[0]} ${x[1]}`), [`PATCH /api/v1/tasks/g1?list_id=${GRO}`, 'POST /api/v1/tasks'], 'calls carry the list');
      eq(sent[1][2].list_id, GRO, 'create names the list in its body');
      assert(c.tasks().some((t) => t.id === nt.id), 'created task shown in Groceries');
      assert(!c.tasks(DEF).some((t) => t.id === nt.id), 'not in the default list');
      c.stop();
    });
  });

  test('unit: lists: list.unshared drops the list, its tasks, its later events and its queued changes (reported)', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const state = {
        seq: 4,
        lists: [L(DEF, 'Tasks', 'owner', { members: 1 }), L(GRO, 'Groceries', 'editor')],
        tasks: { [DEF]: [task('d1', 'Mine', 'a1')], [GRO]: [task('g1', 'milk', 'a1')] },
        events: [],
      };
      globalThis.fetch = listApi(state, log); // writes: 503, so changes stay queued
      const store = new MemoryStore();
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000, store, useLocks: false });
      const rejected = [];
      const removed = [];
      c.addEventListener('rejected', (e) => rejected.push(e.detail));
      c.addEventListener('list-removed', (e) => removed.push(e.detail));
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(20);
      c.select(GRO);
      c.update('g1', { title: 'oat milk' });
      c.create({ title: 'bread' });
      c.select(null);
      c.create({ title: 'own task' });
      await c.persisted();
      await sleep(10);
      eq(c.pending, 3, 'queued (the API refuses for now)');
      ws.push({ ...live(ev(5, 'list.unshared', undefined)), list: { id: GRO, name: 'Groceries' }, list_id: GRO });
      await sleep(30);
      eq(c.lists().map((l) => l.name), ['Tasks'], 'list gone');
      eq(c.tasks(GRO).length, 0, 'its tasks gone');
      eq(c.pending, 1, 'its queued changes dropped, the default list one kept');
      eq(store.ops.size, 1, 'dropped from the store too');
      eq(rejected.filter((r) => r.dropped).length, 2, 'each dropped change reported');
      eq(removed.map((r) => [r.listId, r.reason, r.dropped]), [[GRO, 'unshared', 2]], 'list-removed');
      ws.push({ ...live(ev(6, 'task.created', task('g9', 'late', 'a9'))), list_id: GRO, actor: 'carol' });
      eq(c.tasks(GRO).length, 0, 'a later event of the list is ignored');
      eq(c.seq, 6, 'its seq is taken');
      c.stop();
    });
  });

  test('unit: lists: list.shared (reload hint) fetches the list and its tasks; a viewer write is refused locally', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const state = { seq: 4, lists: [L(DEF, 'Tasks', 'owner', { members: 1 })], tasks: { [DEF]: [] }, events: [] };
      globalThis.fetch = listApi(state, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      const rejected = [];
      c.addEventListener('rejected', (e) => rejected.push(e.detail));
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(20);
      state.lists.push(L(WORK, 'Board', 'viewer'));
      state.tasks[WORK] = [task('w1', 'plan', 'a1'), task('w2', 'ship', 'a2')];
      ws.push({ ...live(ev(5, 'list.shared', undefined)), list: { id: WORK, name: 'Board', owner_id: 'alice', role: 'viewer' }, list_id: WORK, reload: true });
      await sleep(30);
      eq(c.tasks(WORK).map((t) => t.title), ['plan', 'ship'], 'its tasks fetched');
      eq(c.list(WORK).members.map((m) => m.user_id), ['alice', 'u1'], 'its members fetched');
      assert(log.includes(`GET /api/v1/tasks?limit=1000&list_id=${WORK}`), `tasks of the list read: ${log}`);
      c.select(WORK);
      eq(c.update('w1', { completed: true }), null, 'viewer write refused');
      eq(c.pending, 0, 'nothing queued');
      eq([rejected[0].error.status, rejected[0].error.code, rejected[0].local], [403, 'forbidden', true], 'reported as forbidden');
      eq(c.tasks().map((t) => t.completed), [false, false], 'nothing changed');
      c.stop();
    });
  });

  test('unit: presence: subscribe with a ticket, again after a reconnect; presence messages of the list only', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const state = { seq: 0, lists: [L(DEF, 'Tasks', 'owner', { members: 1 }), L(GRO, 'Groceries', 'owner')], tasks: {}, events: [] };
      let n = 0;
      state.write = (m, p) => (m === 'POST' && p.endsWith('/presence-ticket') ? { body: { ticket: `pt${++n}`, list_id: GRO, role: 'owner', expires_in: 300 } } : { status: 404, body: {} });
      globalThis.fetch = listApi(state, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000, stableAfterMs: 0 });
      const seen = [];
      c.addEventListener('presence', (e) => seen.push(e.detail));
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(20);
      c.subscribePresence(GRO);
      await sleep(20);
      eq(ws.sent.filter((x) => x.includes('subscribe')).map((x) => JSON.parse(x)), [{ type: 'subscribe', list_id: GRO, ticket: 'pt1' }], 'subscribed');
      ws.push({ type: 'presence', list_id: GRO, online: [{ user_id: 'bob', devices: 2 }] });
      ws.push({ type: 'presence', list_id: WORK, online: [{ user_id: 'eve', devices: 1 }] });
      eq(seen.map((s) => [s.listId, s.online]), [[GRO, [{ user_id: 'bob', devices: 2 }]]], 'only the list asked for');
      eq(c.online(GRO), [{ user_id: 'bob', devices: 2 }], 'online()');
      ws.fail(1006);
      await sleep(1300); // the first reconnect is within 1.2 s
      const ws2 = await nextWS(2);
      ws2.open();
      await sleep(20);
      eq(ws2.sent.filter((x) => x.includes('subscribe')).map((x) => JSON.parse(x)), [{ type: 'subscribe', list_id: GRO, ticket: 'pt2' }], 'subscribed again after the reconnect');
      c.unsubscribePresence(GRO);
      eq(JSON.parse(ws2.sent[ws2.sent.length - 1]), { type: 'unsubscribe', list_id: GRO }, 'unsubscribed');
      c.stop();
    });
  });

  test('unit: lists: a move into another list is one POST with list_id; its task.deleted then task.created of the same id land in the target', 10000, async () => {
    await withEnv(async () => {
      const log = [];
      const state = {
        seq: 4,
        lists: [L(DEF, 'Tasks', 'owner', { members: 1 }), L(GRO, 'Groceries', 'editor')],
        tasks: { [DEF]: [task('d1', 'Mine', 'a1')], [GRO]: [task('g1', 'milk', 'a1')] },
        events: [],
      };
      const sent = [];
      state.write = (m, p, body) => {
        sent.push([m, p, body]);
        return { body: { task: { ...task('d1', 'Mine', 'a2', 2), list_id: GRO }, seq: 6 } };
      };
      globalThis.fetch = listApi(state, log);
      const c = new TaskSync({ token: 't', userId: 'u1', gatewayUrl: 'ws://gw.test', pollIntervalMs: 60000 });
      await started(c);
      const ws = await nextWS(1);
      ws.open();
      await sleep(20);
      c.moveToList('d1', GRO);
      eq(c.tasks().map((t) => t.id), [], 'gone from the default list at once');
      eq(c.tasks(GRO).map((t) => t.id), ['g1', 'd1'], 'at the end of Groceries at once');
      await sleep(20);
      eq(sent.map((x) => [x[0], x[1], x[2]]), [['POST', '/api/v1/tasks/d1/move', { before: null, list_id: GRO }]], 'one POST naming the target');
      ws.push({ ...live(ev(5, 'task.deleted', { id: 'd1' })), list_id: DEF, actor: 'u1' });
      ws.push({ ...live(ev(6, 'task.created', task('d1', 'Mine', 'a2', 2))), list_id: GRO, actor: 'u1' });
      await sleep(10);
      eq(c.tasks().map((t) => t.id), [], 'default list');
      eq(c.tasks(GRO).map((t) => [t.id, t.list_id]), [['g1', GRO], ['d1', GRO]], 'Groceries has it (the tombstone of the default list did not stop it)');
      eq(c.pending, 0, 'nothing queued');
      c.stop();
    });
  });
}

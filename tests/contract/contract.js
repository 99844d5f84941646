// The API as a contract (issue 17): proto/openapi.yaml and proto/asyncapi.yaml pass
// @redocly/cli lint; real requests to a running backend-api (the plain build, its own
// database in the harness's PostgreSQL, a topic in the harness's Apache Kafka), happy
// paths and every documented error status, each answer validated against the
// document; the document's routes are exactly server.c's route table and what the
// server answers; every documented (operation, status) was seen or is listed below
// with the reason no test can cause it. Then the operator files (docs/operations.md's
// alert rules and dashboard) against the metrics the running services export, and
// the web package's types, and the React example in a browser. Prints one line per test and `contract: N passed, N failed`.
//
//   node tests/contract/contract.js [name-filter]   (tests/contract/suite.sh sets the environment)
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Stack, freePort, waitHttp } from '../e2e/stack.js';
import { Spec, serverRoutes } from './spec.js';
import { register as registerOperator } from './operator.js';
import { register as registerTypes } from './types.js';
import { register as registerReact } from './react.js';
import { register as registerSocket } from './socket.js';

const ROOT = process.env.TASKSYNC_ROOT || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BIN = path.join(ROOT, 'tests/contract/node_modules/.bin');
const SUITE_LIMIT_MS = 12 * 60 * 1000;
const MAX_TASKS = 40; // MAX_TASKS_PER_USER of the server under test (the quota test)
const MAX_BODY = 65536; // its MAX_BODY_BYTES (the default)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const filter = process.argv[2] || '';

// Documented answers no test here causes, each with the reason. Every other
// documented "operationId status" must have been answered and validated. (413
// event_too_large cannot be caused either: the field bounds keep every event under
// 64 KiB; 413 is caused here by a body over MAX_BODY_BYTES. createTask's 409
// `conflict`, a concurrent create of one id, shares its status with the quota's 409,
// which is caused.)
const UNREACHABLE = {
  'healthz 503': 'the relay thread must stop turning (a wedged process): no request causes it',
};

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(a, b, what) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

const spec = new Spec(ROOT);
const stack = new Stack();
stack.topic = `contract-${Date.now()}`;
const tests = [];
const test = (name, ms, fn, { stackless = false } = {}) => tests.push({ name, ms, fn, stackless });

// ---- the server under test -------------------------------------------------------

async function startStack() {
  stack.createDatabase();
  if (process.env.KAFKA_BROKERS && process.env.KAFKA_DIR) {
    // The harness's cluster: a topic of our own on it.
    execFileSync('bash', [path.join(ROOT, 'tools/kafka/cluster.sh'), 'topic', process.env.KAFKA_DIR, stack.topic, '3'], {
      stdio: 'pipe',
      timeout: 120000,
    });
    stack.brokers = process.env.KAFKA_BROKERS;
  } else {
    await stack.startKafka();
  }
  stack.apiPort = await freePort();
  stack.gwPort = await freePort();
  stack.apiUrl = `http://127.0.0.1:${stack.apiPort}`;
  stack.gwUrl = `ws://127.0.0.1:${stack.gwPort}`;
  stack.apiProc = stack._spawn('backend-api', path.join(stack.bin, 'backend-api'), [], {
    PORT: String(stack.apiPort),
    DATABASE_URL: stack.databaseUrl,
    KAFKA_BROKERS: stack.brokers,
    KAFKA_TOPIC: stack.topic,
    JWT_SECRET: stack.jwtSecret,
    DEV_LOGIN: '1',
    PUBLIC_GATEWAY_URL: stack.gwUrl,
    // The React example's build (tests/contract/react.js), served on the API's origin.
    STATIC_DIR: path.join(ROOT, 'examples/react/dist'),
    ALLOWED_ORIGINS: `http://127.0.0.1:${stack.apiPort}`,
    MAX_TASKS_PER_USER: String(MAX_TASKS),
    MAX_BODY_BYTES: String(MAX_BODY),
    USER_RATE_LIMIT: '100',
    USER_RATE_BURST: '200',
    // The shortest retention: the outbox is pruned every 15 s (the 410 `gone` test).
    EVENT_RETENTION: '60',
    LOG_LEVEL: 'info',
  });
  await waitHttp(`${stack.apiUrl}/healthz`, 30000, stack.apiProc);
  await waitHttp(`${stack.apiUrl}/readyz`, 30000, stack.apiProc);
  await stack.startGateway();
}

/** One request; res = {status, headers, text, json}. */
async function req(method, p, { token, headers = {}, body, raw } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let payload = raw;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
  }
  const r = await fetch(`${stack.apiUrl}${p}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(15000) });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, text, json };
}

/**
 * Sends the request, asserts the status and validates the answer against the
 * document's operation `template`; a happy path's body is also checked against the
 * documented request schema. Returns the response.
 */
async function call(method, template, p, status, opts = {}) {
  if (opts.body !== undefined && status < 300 && opts.checkRequest !== false) spec.checkRequest(method, template, opts.body);
  const res = await req(method, p, opts);
  assert(res.status === status, `${method} ${p}: status ${res.status}, want ${status}: ${res.text.slice(0, 300)}`);
  spec.checkResponse(method, template, res);
  if (status >= 400 && template.startsWith('/api/')) {
    assert(res.json?.error?.code, `${method} ${p}: no error code`);
    if (opts.code) eq(res.json.error.code, opts.code, `${method} ${p} error code`);
    if (opts.field) eq(res.json.error.field, opts.field, `${method} ${p} error field`);
  }
  return res;
}

let userN = 0;
async function user() {
  const name = `contract-${process.pid}-${++userN}`;
  const r = await call('POST', '/api/v1/dev/login', '/api/v1/dev/login', 200, { body: { user: name } });
  return r.json.token;
}

async function createTask(token, fields = {}) {
  const body = { title: `task ${randomUUID().slice(0, 8)}`, ...fields };
  return (await call('POST', '/api/v1/tasks', '/api/v1/tasks', 201, { token, body })).json;
}

const big = (n) => 'x'.repeat(n);
const T = '/api/v1/tasks/{id}';
const MOVE = '/api/v1/tasks/{id}/move';
const L = '/api/v1/lists';
const LI = '/api/v1/lists/{id}';
const MEM = '/api/v1/lists/{id}/members';
const MEMU = '/api/v1/lists/{id}/members/{user_id}';
const OWN = '/api/v1/lists/{id}/owner';
const PT = '/api/v1/lists/{id}/presence-ticket';
const at = (tpl, id, u) => tpl.replace('{id}', id).replace('{user_id}', u || '');
const subOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
const psqlDb = (sql) => execFileSync('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', stack.databaseUrl, '-c', sql], { stdio: 'pipe' });

// ---- the documents --------------------------------------------------------------

test(
  'lint: @redocly/cli lint of openapi.yaml and asyncapi.yaml (strict set)',
  120000,
  async () => {
    try {
      execFileSync(path.join(BIN, 'redocly'), ['lint', '--config', 'proto/redocly.yaml', '--format=stylish', 'proto/openapi.yaml', 'proto/asyncapi.yaml'], {
        cwd: ROOT,
        stdio: 'pipe',
        timeout: 100000,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      });
    } catch (e) {
      throw new Error(`redocly lint failed:\n${e.stdout}${e.stderr}`);
    }
  },
  { stackless: true },
);

test(
  'routes: the document lists exactly the routes of server.c',
  5000,
  async () => {
    // A route "<prefix>{id}*" hands the whole rest of the path to one handler
    // (lists_route): it stands for the documented paths under <prefix>{id}, whose
    // methods together must be the wildcard's (each path's own methods are checked
    // against the server's 405s in the OPTIONS test).
    const routes = serverRoutes(ROOT);
    const wild = routes.filter((r) => r.path.endsWith('{id}*'));
    const under = (p) => wild.find((w) => p.startsWith(w.path.slice(0, -1)));
    const table = routes.filter((r) => !r.path.endsWith('*')).map((r) => `${r.method} ${r.path}`).sort();
    const ops = spec.operations();
    const doc = ops.filter((o) => !under(o.path)).map((o) => `${o.method} ${o.path}`).sort();
    const missing = table.filter((r) => !doc.includes(r));
    const extra = doc.filter((r) => !table.includes(r));
    const wildTable = wild.map((r) => `${r.method} ${r.path}`).sort();
    const wildDoc = [...new Set(ops.filter((o) => under(o.path)).map((o) => `${o.method} ${under(o.path).path}`))].sort();
    for (const r of wildTable) if (!wildDoc.includes(r)) missing.push(`${r} (no documented path under it takes ${r.split(' ')[0]})`);
    for (const r of wildDoc) if (!wildTable.includes(r)) extra.push(r);
    assert(wild.length > 0, 'server.c has no {id}* route (the lists routes): update this test');
    assert(!missing.length && !extra.length, `server.c routes not documented: ${missing.join(', ') || '-'}; documented routes server.c lacks: ${extra.join(', ') || '-'}`);
  },
  { stackless: true },
);

// ---- what the server answers -------------------------------------------------------

test('routes: OPTIONS of every documented path allows exactly its documented methods', 20000, async () => {
  const byPath = {};
  for (const o of spec.operations()) (byPath[o.path] ||= []).push(o.method);
  const wild = serverRoutes(ROOT).filter((r) => r.path.endsWith('{id}*'));
  const token = await user();
  for (const [p, methods] of Object.entries(byPath)) {
    const url = p.replace('{id}', randomUUID()).replace('{user_id}', 'someone');
    const r = await req('OPTIONS', url);
    eq(r.status, 204, `OPTIONS ${url}`);
    const allow = (r.headers.get('allow') || '').split(',').map((s) => s.trim()).filter((m) => m && m !== 'OPTIONS').sort();
    const w = wild.find((x) => p.startsWith(x.path.slice(0, -1)));
    if (!w) {
      eq(allow, [...methods].sort(), `Allow of ${p}`);
      continue;
    }
    // Under a {id}* route the preflight answers the wildcard's methods (server.c
    // routes by pattern); the handler itself answers each other one with 405 and
    // the path's own Allow, which must be the documented methods.
    eq(allow, wild.filter((x) => x.path === w.path).map((x) => x.method).sort(), `preflight Allow of ${p}`);
    for (const m of allow.filter((x) => !methods.includes(x))) {
      const r405 = await req(m, url, { token, body: m === 'GET' || m === 'DELETE' ? undefined : {} });
      eq(r405.status, 405, `${m} ${url}`);
      spec.checkSchema('Error', r405.json);
      const a = r405.headers.get('allow').split(',').map((x) => x.trim()).sort();
      eq(a, [...methods].sort(), `405 Allow of ${p}`);
    }
  }
  // Under a list, a path no documented route takes is 404 (lists_route).
  for (const sub of ['nope', 'members/', 'members/bad id', 'owner/x']) {
    const r = await req('GET', `/api/v1/lists/${randomUUID()}/${sub}`, { token });
    eq(r.status, 404, `GET /api/v1/lists/{id}/${sub}`);
    spec.checkSchema('Error', r.json);
  }
  // An undocumented path under /api is answered by no route: 404 in the error shape.
  for (const [m, p] of [['GET', '/api/v1/nope'], ['OPTIONS', '/api/v1/tasks/x/y'], ['POST', '/api/v2/tasks']]) {
    const r = await req(m, p);
    eq(r.status, 404, `${m} ${p}`);
    spec.checkSchema('Error', r.json);
  }
  // A method a path does not take: 405 with Allow, in the error shape.
  const r = await req('DELETE', '/api/v1/tasks');
  eq(r.status, 405, 'DELETE /api/v1/tasks');
  eq(r.headers.get('allow'), 'GET, POST', 'Allow of the 405');
  spec.checkSchema('Error', r.json);
  eq(r.json.error.code, 'method_not_allowed', '405 code');
});

test('operations: /healthz, /readyz, /metrics, /config.json', 10000, async () => {
  const h = await call('GET', '/healthz', '/healthz', 200);
  eq(h.json.status, 'ok', 'healthz');
  const rd = await call('GET', '/readyz', '/readyz', 200);
  eq(rd.json.database, 'ok', 'readyz database');
  const m = await call('GET', '/metrics', '/metrics', 200);
  assert(/^http_requests_total\{/m.test(m.text), 'metrics has http_requests_total');
  const c = await call('GET', '/config.json', '/config.json', 200);
  eq(c.json, { gateway_url: stack.gwUrl, dev_login: true }, 'config.json');
});

test('dev login: 200 and its errors (400, 413, 415, 422)', 10000, async () => {
  const p = '/api/v1/dev/login';
  await call('POST', p, p, 200, { body: { user: 'alice' } });
  await call('POST', p, p, 415, { raw: '{"user":"a"}', code: 'unsupported_media_type' });
  await call('POST', p, p, 400, { raw: '{"user":', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', p, p, 400, { raw: '[]', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', p, p, 422, { body: { user: 'no spaces' }, code: 'validation_failed', field: 'user' });
  await call('POST', p, p, 422, { body: { user: 'a', extra: 1 }, code: 'validation_failed', field: 'extra' });
  await call('POST', p, p, 413, { body: { user: big(MAX_BODY) }, code: 'too_large' });
  await call('POST', p, p, 400, { body: { user: 'a' }, headers: { 'X-Client-Id': 'bad id!' }, code: 'bad_request', field: 'X-Client-Id' });
});

test('auth: every /api/v1 operation answers 401 without a valid token', 15000, async () => {
  const id = randomUUID();
  const forged = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.AAAA';
  for (const { method, path: p, op } of spec.operations()) {
    if (!op.responses['401']) continue;
    const url = p.replace('{id}', id).replace('{user_id}', 'someone') + (p === '/api/v1/events' ? '?since=0' : '');
    const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined;
    await call(method, p, url, 401, { body, code: 'unauthorized', checkRequest: false });
    await call(method, p, url, 401, { body, token: forged, code: 'unauthorized', checkRequest: false });
  }
});

test('tasks: create (201, 200 for a known id, Idempotency-Key replay) and its errors', 20000, async () => {
  const token = await user();
  const p = '/api/v1/tasks';
  const id = randomUUID();
  const body = { id, title: 'Buy milk', description: null, priority: 'high', due_at: '2030-01-02T03:04:05.678Z', completed: false };
  const r = await call('POST', p, p, 201, { token, body, headers: { 'X-Client-Id': 'tab-1' } });
  eq(r.headers.get('location'), `/api/v1/tasks/${id}`, 'Location');
  eq(r.headers.get('etag'), '"1"', 'ETag');
  eq(r.headers.get('idempotent-replayed'), null, 'a first answer is not marked replayed');
  spec.checkSchema('StoredTask', r.json);
  const again = await call('POST', p, p, 200, { token, body });
  eq(again.json.id, id, 'repeat create answers the stored task');
  // Idempotency-Key: the first reply again, marked.
  const key = randomUUID();
  const kb = { title: 'keyed' };
  const k1 = await call('POST', p, p, 201, { token, body: kb, headers: { 'Idempotency-Key': key } });
  const k2 = await call('POST', p, p, 201, { token, body: kb, headers: { 'Idempotency-Key': key } });
  eq(k2.headers.get('idempotent-replayed'), 'true', 'Idempotent-Replayed');
  eq(k2.json, k1.json, 'replayed body');
  await call('POST', p, p, 422, { token, body: { title: 'other' }, headers: { 'Idempotency-Key': key }, code: 'idempotency_key_reused', field: 'Idempotency-Key' });
  await call('POST', p, p, 400, { token, body: kb, headers: { 'Idempotency-Key': 'not a key' }, code: 'bad_request', field: 'Idempotency-Key' });
  await call('POST', p, p, 415, { token, raw: '{"title":"x"}', headers: { 'Content-Type': 'text/plain' }, code: 'unsupported_media_type' });
  await call('POST', p, p, 400, { token, raw: '{"title":', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', p, p, 422, { token, body: { title: 'x', colour: 'red' }, code: 'validation_failed', field: 'colour' });
  await call('POST', p, p, 422, { token, body: { title: '   ' }, code: 'validation_failed', field: 'title' });
  await call('POST', p, p, 422, { token, body: { title: 'x', priority: 'urgent' }, code: 'validation_failed', field: 'priority' });
  await call('POST', p, p, 422, { token, body: { id: 'nope', title: 'x' }, code: 'validation_failed', field: 'id' });
  await call('POST', p, p, 413, { token, body: { title: big(MAX_BODY) }, code: 'too_large' });
  await call('POST', p, p, 400, { token, body: kb, headers: { 'X-Client-Id': '' + big(129) }, code: 'bad_request', field: 'X-Client-Id' });
});

test('tasks: create beyond MAX_TASKS_PER_USER is 409 task_quota_exceeded', 30000, async () => {
  const token = await user();
  for (let i = 0; i < MAX_TASKS; i++) await createTask(token);
  const r = await call('POST', '/api/v1/tasks', '/api/v1/tasks', 409, { token, body: { title: 'one too many' }, code: 'task_quota_exceeded' });
  eq(r.json.limit, MAX_TASKS, 'limit');
});

test('tasks: list pages with limit and cursor, and its 400s', 20000, async () => {
  const token = await user();
  const p = '/api/v1/tasks';
  const made = [];
  for (let i = 0; i < 5; i++) made.push((await createTask(token)).id);
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const r = await call('GET', p, `${p}?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, 200, { token });
    seen.push(...r.json.tasks.map((t) => t.id));
    cursor = r.json.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  eq(seen, made, 'pages in display order');
  assert(pages === 3, `5 tasks in pages of 2: ${pages} pages`);
  const all = await call('GET', p, p, 200, { token });
  eq(all.json.next_cursor, null, 'one page');
  eq(all.json.seq, 5, 'seq');
  await call('GET', p, `${p}?limit=0`, 400, { token, code: 'bad_request', field: 'limit' });
  await call('GET', p, `${p}?limit=1001`, 400, { token, code: 'bad_request', field: 'limit' });
  await call('GET', p, `${p}?limit=abc`, 400, { token, code: 'bad_request', field: 'limit' });
  await call('GET', p, `${p}?cursor=zz`, 400, { token, code: 'bad_request', field: 'cursor' });
});

test('tasks/{id}: get (200, 404), patch (200, merge conflicts, 412) and their errors', 20000, async () => {
  const token = await user();
  const t = await createTask(token, { priority: 'low' });
  const u = T.replace('{id}', t.id);
  const g = await call('GET', T, u, 200, { token });
  eq(g.headers.get('etag'), '"1"', 'ETag');
  await call('GET', T, T.replace('{id}', randomUUID()), 404, { token, code: 'not_found' });
  await call('GET', T, T.replace('{id}', 'not-a-uuid'), 404, { token, code: 'not_found' });
  // Last writer wins: the task.
  const p1 = await call('PATCH', T, u, 200, { token, body: { title: 'v2' }, headers: { 'If-Match': '"1"' } });
  spec.checkSchema('StoredTask', p1.json);
  eq(p1.headers.get('etag'), '"2"', 'PATCH ETag');
  eq(p1.json.version, 2, 'version');
  // Stale If-Match: 412 with the current task and its ETag.
  const st = await call('PATCH', T, u, 412, { token, body: { title: 'v3' }, headers: { 'If-Match': '"1"' }, code: 'precondition_failed' });
  eq(st.json.task.version, 2, '412 carries the current task');
  eq(st.headers.get('etag'), '"2"', '412 ETag');
  // base_version: per-field merge; the title changed since 1 is a conflict, priority applies.
  const m = await call('PATCH', T, u, 200, { token, body: { title: 'mine', priority: 'high', base_version: 1 } });
  spec.checkSchema('MergeResult', m.json);
  eq(m.json.conflicts, [{ field: 'title', yours: 'mine', theirs: 'v2' }], 'conflicts');
  eq([m.json.task.title, m.json.task.priority], ['v2', 'high'], 'merged task');
  const key = randomUUID();
  const k1 = await call('PATCH', T, u, 200, { token, body: { completed: true }, headers: { 'Idempotency-Key': key } });
  const k2 = await call('PATCH', T, u, 200, { token, body: { completed: true }, headers: { 'Idempotency-Key': key } });
  eq(k2.headers.get('idempotent-replayed'), 'true', 'replayed');
  eq(k2.json, k1.json, 'replayed body');
  await call('PATCH', T, u, 422, { token, body: { completed: false }, headers: { 'Idempotency-Key': key }, code: 'idempotency_key_reused' });
  await call('PATCH', T, u, 400, { token, body: { completed: false }, headers: { 'Idempotency-Key': '' }, code: 'bad_request', field: 'Idempotency-Key' });
  await call('PATCH', T, u, 422, { token, body: {}, code: 'validation_failed', field: 'body' });
  await call('PATCH', T, u, 422, { token, body: { base_version: 0, title: 'x' }, code: 'validation_failed', field: 'base_version' });
  await call('PATCH', T, u, 422, { token, body: { due_at: 'tomorrow' }, code: 'validation_failed', field: 'due_at' });
  await call('PATCH', T, u, 415, { token, raw: '{"title":"x"}', code: 'unsupported_media_type' });
  await call('PATCH', T, u, 400, { token, raw: 'nope', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('PATCH', T, u, 413, { token, body: { description: big(MAX_BODY) }, code: 'too_large' });
  await call('PATCH', T, T.replace('{id}', randomUUID()), 404, { token, body: { title: 'x' }, code: 'not_found' });
});

test('tasks/{id}: delete (204, replay), then 410 task_deleted everywhere, and the errors', 20000, async () => {
  const token = await user();
  const t = await createTask(token);
  const u = T.replace('{id}', t.id);
  const key = randomUUID();
  await call('DELETE', T, T.replace('{id}', randomUUID()), 404, { token, code: 'not_found' });
  await call('DELETE', T, u, 400, { token, headers: { 'Idempotency-Key': 'a b' }, code: 'bad_request' });
  await call('DELETE', T, u, 204, { token, headers: { 'Idempotency-Key': key } });
  const rep = await call('DELETE', T, u, 204, { token, headers: { 'Idempotency-Key': key } });
  eq(rep.headers.get('idempotent-replayed'), 'true', 'replayed delete');
  const other = await createTask(token);
  await call('DELETE', T, T.replace('{id}', other.id), 422, { token, headers: { 'Idempotency-Key': key }, code: 'idempotency_key_reused' });
  await call('DELETE', T, u, 410, { token, code: 'task_deleted', field: 'id' });
  await call('PATCH', T, u, 410, { token, body: { title: 'x' }, code: 'task_deleted' });
  await call('POST', MOVE, `${u}/move`, 410, { token, body: { before: null }, code: 'task_deleted' });
  await call('POST', '/api/v1/tasks', '/api/v1/tasks', 410, { token, body: { id: t.id, title: 'again' }, code: 'task_deleted' });
  await call('GET', T, u, 404, { token, code: 'not_found' });
});

test('move: 200 (and seq null when already there) and its errors', 20000, async () => {
  const token = await user();
  const [a, b, c] = [await createTask(token), await createTask(token), await createTask(token)];
  const mv = (id) => `/api/v1/tasks/${id}/move`;
  const r = await call('POST', MOVE, mv(c.id), 200, { token, body: { after: null } });
  assert(r.json.task.position < a.position, 'moved to the top');
  eq(r.headers.get('etag'), `"${r.json.task.version}"`, 'move ETag');
  assert(Number.isInteger(r.json.seq), 'seq of a move');
  const same = await call('POST', MOVE, mv(c.id), 200, { token, body: { after: null } });
  eq(same.json.seq, null, 'already there');
  const key = randomUUID();
  const k1 = await call('POST', MOVE, mv(a.id), 200, { token, body: { before: null }, headers: { 'Idempotency-Key': key } });
  const k2 = await call('POST', MOVE, mv(a.id), 200, { token, body: { before: null }, headers: { 'Idempotency-Key': key } });
  eq(k2.headers.get('idempotent-replayed'), 'true', 'replayed move');
  eq(k2.json, k1.json, 'replayed body');
  await call('POST', MOVE, mv(a.id), 422, { token, body: { after: null }, headers: { 'Idempotency-Key': key }, code: 'idempotency_key_reused' });
  await call('POST', MOVE, mv(a.id), 400, { token, body: { after: null }, headers: { 'Idempotency-Key': '?' }, code: 'bad_request' });
  await call('POST', MOVE, mv(randomUUID()), 404, { token, body: { before: null }, code: 'not_found' });
  await call('POST', MOVE, mv(a.id), 422, { token, body: { before: randomUUID() }, code: 'validation_failed', field: 'before' });
  await call('POST', MOVE, mv(a.id), 422, { token, body: { after: a.id }, code: 'validation_failed', field: 'after' });
  await call('POST', MOVE, mv(a.id), 422, { token, body: { before: b.id, after: c.id }, code: 'validation_failed', field: 'body' });
  await call('POST', MOVE, mv(a.id), 422, { token, body: { before: 7 }, code: 'validation_failed', field: 'before' });
  await call('POST', MOVE, mv(a.id), 415, { token, raw: '{"before":null}', code: 'unsupported_media_type' });
  await call('POST', MOVE, mv(a.id), 400, { token, raw: '{', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', MOVE, mv(a.id), 413, { token, body: { before: big(MAX_BODY) }, code: 'too_large' });
});

test('move: a gap moved into until no key fits is 409 position_exhausted', 120000, async () => {
  const token = await user();
  const [a, , x, y] = [await createTask(token), await createTask(token), await createTask(token), await createTask(token)];
  // x and y take turns right after a: each move halves the gap below the other.
  let r;
  for (let i = 0; i < 4000; i++) {
    const who = i % 2 ? y : x;
    r = await req('POST', `/api/v1/tasks/${who.id}/move`, { token, body: { after: a.id } });
    if (r.status === 429) {
      await sleep(r.json.retry_after_ms);
      i--;
      continue;
    }
    if (r.status !== 200) break;
  }
  eq(r.status, 409, `status after the gap is used up: ${r.text.slice(0, 200)}`);
  spec.checkResponse('POST', MOVE, r);
  eq([r.json.error.code, r.json.max_key_bytes], ['position_exhausted', 255], 'position_exhausted');
});

test('order: PUT renumbers (200 with skipped) and its errors', 20000, async () => {
  const token = await user();
  const [a, b] = [await createTask(token), await createTask(token)];
  const p = '/api/v1/tasks/order';
  const ghost = randomUUID();
  const r = await call('PUT', p, p, 200, { token, body: { order: [b.id, ghost, b.id, a.id] } });
  eq(
    r.json.skipped.map((s) => s.reason).sort(),
    ['duplicate', 'not_found'],
    'skipped reasons',
  );
  assert(r.json.positions[b.id] < (r.json.positions[a.id] || a.position), 'b before a');
  await call('PUT', p, p, 422, { token, body: { order: 'a,b' }, code: 'validation_failed', field: 'order' });
  await call('PUT', p, p, 422, { token, body: { order: ['x'] }, code: 'validation_failed', field: 'order' });
  await call('PUT', p, p, 422, { token, body: { order: [], more: 1 }, code: 'validation_failed', field: 'more' });
  const tooMany = Array.from({ length: 1001 }, () => randomUUID());
  const l = await call('PUT', p, p, 422, { token, body: { order: tooMany }, code: 'list_too_long' });
  eq(l.json.max, 1000, 'max');
  await call('PUT', p, p, 415, { token, raw: '{"order":[]}', code: 'unsupported_media_type' });
  await call('PUT', p, p, 400, { token, raw: '{', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('PUT', p, p, 413, { token, body: { order: [big(MAX_BODY)] }, code: 'too_large' });
});

test('events: 200 (every event a task-event), has_more, and the 400s', 20000, async () => {
  const token = await user();
  const p = '/api/v1/events';
  const [t, t2] = [await createTask(token), await createTask(token)];
  await call('PATCH', T, T.replace('{id}', t.id), 200, { token, body: { completed: true }, headers: { 'X-Client-Id': 'phone' } });
  await call('POST', MOVE, `/api/v1/tasks/${t2.id}/move`, 200, { token, body: { after: null } });
  await call('PUT', '/api/v1/tasks/order', '/api/v1/tasks/order', 200, { token, body: { order: [t.id, t2.id] } });
  await call('DELETE', T, T.replace('{id}', t.id), 204, { token });
  const all = await call('GET', p, `${p}?since=0`, 200, { token });
  eq(all.json.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6], 'seqs');
  eq(all.json.events.map((e) => e.event_type), ['task.created', 'task.created', 'task.completed', 'task.moved', 'task.reordered', 'task.deleted'], 'types');
  eq(all.json.events[2].origin, 'phone', 'origin from X-Client-Id');
  for (const e of all.json.events) spec.checkSchema('TaskEvent', e);
  const one = await call('GET', p, `${p}?since=1&limit=1`, 200, { token });
  eq([one.json.events.length, one.json.has_more, one.json.seq], [1, true, 6], 'a cut page');
  const none = await call('GET', p, `${p}?since=6`, 200, { token });
  eq([none.json.events.length, none.json.has_more], [0, false], 'nothing new');
  await call('GET', p, p, 400, { token, code: 'bad_request', field: 'since' });
  await call('GET', p, `${p}?since=-1`, 400, { token, code: 'bad_request', field: 'since' });
  await call('GET', p, `${p}?since=0&limit=0`, 400, { token, code: 'bad_request', field: 'limit' });
});

test('events: pruned past since is 410 gone with the current seq', 60000, async () => {
  const token = await user();
  for (let i = 0; i < 3; i++) await createTask(token);
  // The outbox's real pruning (EVENT_RETENTION=60, every 15 s) removes events older
  // than the retention, keeping each user's latest: age this user's by an hour.
  const sub = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
  execFileSync('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', stack.databaseUrl, '-c', `UPDATE outbox SET created_at = created_at - interval '1 hour' WHERE user_id = '${sub.replace(/'/g, "''")}'`], {
    stdio: 'pipe',
  });
  const end = Date.now() + 40000;
  let r;
  do {
    await sleep(1000);
    r = await req('GET', '/api/v1/events?since=0', { token });
  } while (r.status === 200 && Date.now() < end);
  eq(r.status, 410, `after pruning: ${r.text.slice(0, 200)}`);
  spec.checkResponse('GET', '/api/v1/events', r);
  eq([r.json.error.code, r.json.seq], ['gone', 3], 'gone');
  const latest = await call('GET', '/api/v1/events', '/api/v1/events?since=2', 200, { token });
  eq(latest.json.events.length, 1, 'the latest event stays');
});

test('lists: index, create (201, 200 repeat), get, rename, delete and their errors', 30000, async () => {
  const a = await user();
  const b = await user();
  const idx = await call('GET', L, L, 200, { token: a });
  eq([idx.json.lists.length, idx.json.lists[0].default, idx.json.lists[0].role, idx.json.lists[0].members], [1, true, 'owner', 1], 'a new user has the default list');
  const def = idx.json.lists[0].id;
  const id = randomUUID();
  const c = await call('POST', L, L, 201, { token: a, body: { id, name: 'Groceries' }, headers: { 'X-Client-Id': 'tab-1' } });
  eq(c.headers.get('location'), `/api/v1/lists/${id}`, 'Location');
  eq([c.json.id, c.json.name, c.json.owner_id, c.json.default, c.json.role, c.json.members], [id, 'Groceries', subOf(a), false, 'owner', 1], 'created list');
  const again = await call('POST', L, L, 200, { token: a, body: { id, name: 'Groceries' } });
  eq(again.json.members, [{ user_id: subOf(a), role: 'owner' }], 'a repeat answers the list with its members');
  const fresh = await call('POST', L, L, 201, { token: a, body: { name: 'no id given' } });
  assert(fresh.json.id !== id, 'a fresh id');
  await call('POST', L, L, 409, { token: b, body: { id, name: 'mine' }, code: 'conflict', field: 'id' });
  await call('POST', L, L, 409, { token: a, body: { id: def, name: 'default id' }, code: 'conflict', field: 'id' });
  await call('POST', L, L, 422, { token: a, body: { name: ' \t ' }, code: 'validation_failed', field: 'name' });
  await call('POST', L, L, 422, { token: a, body: { name: big(201) }, code: 'validation_failed', field: 'name' });
  await call('POST', L, L, 422, { token: a, body: { name: 'x', colour: 'red' }, code: 'validation_failed', field: 'colour' });
  await call('POST', L, L, 422, { token: a, body: { id: 'nope', name: 'x' }, code: 'validation_failed', field: 'id' });
  await call('POST', L, L, 415, { token: a, raw: '{"name":"x"}', headers: { 'Content-Type': 'text/plain' }, code: 'unsupported_media_type' });
  await call('POST', L, L, 400, { token: a, raw: '{"name":', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', L, L, 413, { token: a, body: { name: big(MAX_BODY) }, code: 'too_large' });
  const idx2 = await call('GET', L, L, 200, { token: a });
  eq(idx2.json.lists.map((l) => l.default), [true, false, false], 'the default list first');

  const u = at(LI, id);
  const g = await call('GET', LI, u, 200, { token: a });
  eq([g.json.name, g.json.members.length], ['Groceries', 1], 'get');
  await call('GET', LI, u, 404, { token: b, code: 'not_found', field: 'list_id' });
  await call('GET', LI, at(LI, 'not-a-uuid'), 404, { token: a, code: 'not_found' });
  const rn = await call('PATCH', LI, u, 200, { token: a, body: { name: 'Shopping' } });
  eq([rn.json.name, rn.json.members], ['Shopping', 1], 'renamed');
  await call('PATCH', LI, u, 404, { token: b, body: { name: 'x' }, code: 'not_found', field: 'list_id' });
  await call('PATCH', LI, u, 422, { token: a, body: { name: '' }, code: 'validation_failed', field: 'name' });
  await call('PATCH', LI, u, 422, { token: a, body: { name: 'x', owner_id: 'b' }, code: 'validation_failed', field: 'owner_id' });
  await call('PATCH', LI, u, 415, { token: a, raw: '{"name":"x"}', code: 'unsupported_media_type' });
  await call('PATCH', LI, u, 400, { token: a, raw: '[', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('PATCH', LI, u, 413, { token: a, body: { name: big(MAX_BODY) }, code: 'too_large' });
  await call('DELETE', LI, at(LI, def), 422, { token: a, code: 'default_list' });
  await call('DELETE', LI, u, 404, { token: b, code: 'not_found', field: 'list_id' });
  await call('DELETE', LI, u, 204, { token: a });
  await call('GET', LI, u, 404, { token: a, code: 'not_found', field: 'list_id' });
  // The owner's feed: list.created, list.updated, list.deleted, each a task-event.
  const ev = await call('GET', '/api/v1/events', '/api/v1/events?since=0', 200, { token: a });
  for (const e of ev.json.events) spec.checkSchema('TaskEvent', e);
  const mine = ev.json.events.filter((e) => e.list_id === id).map((e) => e.event_type);
  eq(mine, ['list.created', 'list.updated', 'list.deleted'], 'the list events of the owner');
  eq(ev.json.events[0].origin, 'tab-1', 'origin');
});

test('lists: members, roles (viewer 403), tasks in a list, leave, transfer, presence ticket and their errors', 60000, async () => {
  const [a, b, c, d] = [await user(), await user(), await user(), await user()];
  const [A, B, C] = [subOf(a), subOf(b), subOf(c)];
  const id = (await call('POST', L, L, 201, { token: a, body: { name: 'Groceries' } })).json.id;
  const def = (await call('GET', L, L, 200, { token: a })).json.lists[0].id;
  const m = at(MEM, id);
  const s1 = await call('POST', MEM, m, 200, { token: a, body: { user_id: B, role: 'editor' } });
  eq([s1.json.user_id, s1.json.role, s1.json.changed, s1.json.list.id], [B, 'editor', true, id], 'shared');
  const s2 = await call('POST', MEM, m, 200, { token: a, body: { user_id: B, role: 'editor' } });
  eq(s2.json.changed, false, 'the same role again changes nothing');
  await call('POST', MEM, m, 200, { token: a, body: { user_id: C, role: 'viewer' } });
  const g = await call('GET', LI, at(LI, id), 200, { token: c });
  eq([g.json.role, g.json.members[0], g.json.members.slice(1).map((x) => `${x.user_id}:${x.role}`).sort()], ['viewer', { user_id: A, role: 'owner' }, [`${B}:editor`, `${C}:viewer`]], 'members, the owner first');
  await call('POST', MEM, m, 403, { token: b, body: { user_id: 'x', role: 'viewer' }, code: 'forbidden' });
  await call('PATCH', LI, at(LI, id), 403, { token: b, body: { name: 'mine' }, code: 'forbidden' });
  await call('DELETE', LI, at(LI, id), 403, { token: c, code: 'forbidden' });
  await call('POST', MEM, m, 404, { token: d, body: { user_id: 'x', role: 'viewer' }, code: 'not_found', field: 'list_id' });
  await call('POST', MEM, m, 409, { token: a, body: { user_id: A, role: 'editor' }, code: 'owner_stays', field: 'user_id' });
  await call('POST', MEM, at(MEM, def), 422, { token: a, body: { user_id: B, role: 'editor' }, code: 'default_list' });
  await call('POST', MEM, m, 422, { token: a, body: { user_id: B, role: 'admin' }, code: 'validation_failed', field: 'role' });
  await call('POST', MEM, m, 422, { token: a, body: { user_id: 'no spaces', role: 'viewer' }, code: 'validation_failed', field: 'user_id' });
  await call('POST', MEM, m, 422, { token: a, body: { user_id: B, role: 'viewer', note: 'hi' }, code: 'validation_failed', field: 'note' });
  await call('POST', MEM, m, 415, { token: a, raw: '{}', code: 'unsupported_media_type' });
  await call('POST', MEM, m, 400, { token: a, raw: '{', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', MEM, m, 413, { token: a, body: { user_id: big(MAX_BODY), role: 'viewer' }, code: 'too_large' });

  // The presence proof: members only.
  const pt = await call('POST', PT, at(PT, id), 200, { token: b });
  eq([pt.json.list_id, pt.json.role, pt.json.expires_in, pt.headers.get('cache-control')], [id, 'editor', 300, 'no-store'], 'presence ticket');
  await call('POST', PT, at(PT, id), 404, { token: d, code: 'not_found', field: 'list_id' });

  // Tasks in the list: editors write, a viewer's write is 403, a non-member's 404.
  const q = `?list_id=${id}`;
  const t = await call('POST', '/api/v1/tasks', '/api/v1/tasks', 201, { token: b, body: { title: 'milk', list_id: id } });
  eq(t.json.list_id, id, 'the task names its list');
  const tu = `/api/v1/tasks/${t.json.id}${q}`;
  await call('POST', '/api/v1/tasks', '/api/v1/tasks', 403, { token: c, body: { title: 'x', list_id: id }, code: 'forbidden' });
  await call('POST', '/api/v1/tasks', '/api/v1/tasks', 404, { token: d, body: { title: 'x', list_id: id }, code: 'not_found', field: 'list_id' });
  await call('POST', '/api/v1/tasks', '/api/v1/tasks', 422, { token: a, body: { title: 'x', list_id: 'groceries' }, code: 'validation_failed', field: 'list_id' });
  await call('PATCH', T, tu, 403, { token: c, body: { completed: true }, code: 'forbidden' });
  await call('DELETE', T, tu, 403, { token: c, code: 'forbidden' });
  await call('POST', MOVE, `/api/v1/tasks/${t.json.id}/move${q}`, 403, { token: c, body: { before: null }, code: 'forbidden' });
  await call('PUT', '/api/v1/tasks/order', `/api/v1/tasks/order${q}`, 403, { token: c, body: { order: [] }, code: 'forbidden' });
  await call('PUT', '/api/v1/tasks/order', `/api/v1/tasks/order${q}`, 404, { token: d, body: { order: [] }, code: 'not_found', field: 'list_id' });
  const page = await call('GET', '/api/v1/tasks', `/api/v1/tasks${q}`, 200, { token: c });
  eq([page.json.list_id, page.json.tasks.map((x) => x.id)], [id, [t.json.id]], 'the viewer reads the list');
  await call('GET', '/api/v1/tasks', `/api/v1/tasks${q}`, 404, { token: d, code: 'not_found', field: 'list_id' });
  await call('GET', '/api/v1/tasks', '/api/v1/tasks?list_id=groceries', 404, { token: a, code: 'not_found', field: 'list_id' });
  await call('GET', T, tu, 404, { token: d, code: 'not_found', field: 'list_id' });
  const p = await call('PATCH', T, tu, 200, { token: b, body: { completed: true } });
  eq(p.json.completed, true, 'an editor checks an item');

  // Moves between lists: into the list (200), onto an id the list holds (409 conflict).
  const mine = await createTask(a);
  const mv = await call('POST', MOVE, `/api/v1/tasks/${mine.id}/move`, 200, { token: a, body: { before: null, list_id: id } });
  eq(mv.json.task.list_id, id, 'moved into the list');
  const twin = randomUUID();
  await createTask(a, { id: twin });
  await createTask(a, { id: twin, list_id: id });
  await call('POST', MOVE, `/api/v1/tasks/${twin}/move`, 409, { token: a, body: { after: null, list_id: id }, code: 'conflict', field: 'list_id' });
  await call('POST', MOVE, `/api/v1/tasks/${twin}/move`, 422, { token: a, body: { after: null, list_id: 7 }, code: 'validation_failed', field: 'list_id' });
  await call('POST', MOVE, `/api/v1/tasks/${twin}/move`, 404, { token: d, body: { after: null, list_id: id }, code: 'not_found' });

  // Leaving, removing, transferring.
  const mu = (u) => at(MEMU, id, u);
  await call('DELETE', MEMU, mu(C), 403, { token: b, code: 'forbidden' });
  await call('DELETE', MEMU, mu('nobody'), 404, { token: a, code: 'not_member', field: 'user_id' });
  await call('DELETE', MEMU, mu(C), 404, { token: d, code: 'not_found', field: 'list_id' });
  await call('DELETE', MEMU, mu(A), 409, { token: a, code: 'owner_stays', field: 'user_id' });
  await call('DELETE', MEMU, at(MEMU, def, A), 422, { token: a, code: 'default_list' });
  await call('DELETE', MEMU, mu(C), 204, { token: c });
  await call('GET', LI, at(LI, id), 404, { token: c, code: 'not_found', field: 'list_id' });
  const o = at(OWN, id);
  await call('POST', OWN, o, 403, { token: b, body: { user_id: B }, code: 'forbidden' });
  await call('POST', OWN, o, 404, { token: a, body: { user_id: C }, code: 'not_member', field: 'user_id' });
  await call('POST', OWN, o, 404, { token: d, body: { user_id: B }, code: 'not_found', field: 'list_id' });
  await call('POST', OWN, at(OWN, def), 422, { token: a, body: { user_id: B }, code: 'default_list' });
  await call('POST', OWN, o, 422, { token: a, body: { user_id: '' }, code: 'validation_failed', field: 'user_id' });
  await call('POST', OWN, o, 422, { token: a, body: { user_id: B, keep: true }, code: 'validation_failed', field: 'keep' });
  await call('POST', OWN, o, 415, { token: a, raw: '{}', code: 'unsupported_media_type' });
  await call('POST', OWN, o, 400, { token: a, raw: 'x', headers: { 'Content-Type': 'application/json' }, code: 'bad_json' });
  await call('POST', OWN, o, 413, { token: a, body: { user_id: big(MAX_BODY) }, code: 'too_large' });
  const tr = await call('POST', OWN, o, 200, { token: a, body: { user_id: B } });
  eq([tr.json.owner_id, tr.json.role], [B, 'editor'], 'transferred; the former owner is an editor');

  // Every member's feed holds the list's events, each a task-event.
  for (const [tok, want] of [[b, 'list.shared'], [c, 'list.unshared']]) {
    const ev = await call('GET', '/api/v1/events', '/api/v1/events?since=0', 200, { token: tok });
    for (const e of ev.json.events) spec.checkSchema('TaskEvent', e);
    assert(ev.json.events.some((e) => e.event_type === want && e.list.id === id), `${want} in the feed`);
  }

  // At most 1,000 members: the rest written straight into the table, then one more.
  psqlDb(`INSERT INTO list_members (list_id, user_id, role) SELECT '${id}'::uuid, 'filler-' || g, 'viewer' FROM generate_series(1, 998) g`);
  const full = await call('POST', MEM, m, 409, { token: b, body: { user_id: 'one-too-many', role: 'viewer' }, code: 'too_many_members', field: 'user_id' });
  eq(full.json.max, 1000, 'max');
});

test('lists: a move into a full list is 409 task_quota_exceeded (MAX_TASKS_PER_USER per list)', 30000, async () => {
  const a = await user();
  const id = (await call('POST', L, L, 201, { token: a, body: { name: 'full' } })).json.id;
  for (let i = 0; i < MAX_TASKS; i++) await createTask(a, { list_id: id });
  await call('POST', '/api/v1/tasks', '/api/v1/tasks', 409, { token: a, body: { title: 'one too many', list_id: id }, code: 'task_quota_exceeded' });
  const t = await createTask(a);
  const r = await call('POST', MOVE, `/api/v1/tasks/${t.id}/move`, 409, { token: a, body: { before: null, list_id: id }, code: 'task_quota_exceeded' });
  eq(r.json.limit, MAX_TASKS, 'limit');
  await call('GET', T, T.replace('{id}', t.id), 200, { token: a });
});

test('ws-ticket: 200 no-store', 10000, async () => {
  const token = await user();
  const r = await call('POST', '/api/v1/ws-ticket', '/api/v1/ws-ticket', 200, { token });
  eq(r.json.expires_in, 30, 'expires_in');
});

// One call of every list operation, on list id (any id: the 429 and 503 come first).
const listCalls = (id) => [
  ['GET', L, L, undefined],
  ['POST', L, L, { name: 'x' }],
  ['GET', LI, at(LI, id), undefined],
  ['PATCH', LI, at(LI, id), { name: 'y' }],
  ['DELETE', LI, at(LI, id), undefined],
  ['POST', MEM, at(MEM, id), { user_id: 'someone', role: 'viewer' }],
  ['DELETE', MEMU, at(MEMU, id, 'someone'), undefined],
  ['POST', OWN, at(OWN, id), { user_id: 'someone' }],
  ['POST', PT, at(PT, id), undefined],
];

test('rate limit: a burst over USER_RATE_BURST is 429 with Retry-After on every kind of call', 200000, async () => {
  const token = await user();
  const t = await createTask(token);
  const u = T.replace('{id}', t.id);
  const calls = [
    ['POST', '/api/v1/ws-ticket', '/api/v1/ws-ticket', undefined],
    ['GET', '/api/v1/tasks', '/api/v1/tasks', undefined],
    ['POST', '/api/v1/tasks', '/api/v1/tasks', { title: 'x' }],
    ['PUT', '/api/v1/tasks/order', '/api/v1/tasks/order', { order: [] }],
    ['GET', T, u, undefined],
    ['PATCH', T, u, { title: 'y' }],
    ['DELETE', T, u, undefined],
    ['POST', MOVE, `${u}/move`, { before: null }],
    ['GET', '/api/v1/events', '/api/v1/events?since=0', undefined],
    ...listCalls(randomUUID()),
  ];
  const ticket = () => req('POST', '/api/v1/ws-ticket', { token });
  for (const [m, tpl, url, body] of calls) {
    // Empty the bucket (USER_RATE_BURST 200, refilled at 100 a second) with cheap
    // calls (no database), 16 at a time (civetweb holds a thread per connection),
    // then send the call among more of them while it stays empty.
    let r;
    for (let i = 0; i < 20; i++) {
      let drained = false;
      for (let j = 0; j < 40 && !drained; j++) drained = (await Promise.all(Array.from({ length: 16 }, ticket))).some((x) => x.status === 429);
      const rs = await Promise.all([...Array.from({ length: 8 }, ticket), req(m, url, { token, body })]);
      r = rs[rs.length - 1];
      if (r.status === 429) break;
    }
    eq(r.status, 429, `${m} ${url} in an empty bucket`);
    spec.checkResponse(m, tpl, r);
    eq(r.json.error.code, 'rate_limited', 'code');
    assert(r.json.retry_after_ms >= 0 && Number(r.headers.get('retry-after')) >= 1, 'retry hints');
  }
  await sleep(2000); // a full bucket again for the next test
});

// Last: it takes the database away from the server.
test('database down: 503 unavailable with Retry-After, /readyz 503; back when it returns', 120000, async () => {
  const token = await user();
  const t = await createTask(token);
  const db = new URL(stack.databaseUrl).pathname.slice(1);
  const admin = process.env.PG_ADMIN_URL;
  const psql = (sql) => execFileSync('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', admin, '-c', sql], { stdio: 'pipe' });
  psql(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS false`);
  try {
    psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}' AND pid <> pg_backend_pid()`);
    const u = T.replace('{id}', t.id);
    const calls = [
      ['GET', '/api/v1/tasks', '/api/v1/tasks', undefined],
      ['POST', '/api/v1/tasks', '/api/v1/tasks', { title: 'x' }],
      ['PUT', '/api/v1/tasks/order', '/api/v1/tasks/order', { order: [] }],
      ['GET', T, u, undefined],
      ['PATCH', T, u, { title: 'y' }],
      ['DELETE', T, u, undefined],
      ['POST', MOVE, `${u}/move`, { before: null }],
      ['GET', '/api/v1/events', '/api/v1/events?since=0', undefined],
      ...listCalls(randomUUID()),
    ];
    for (const [m, tpl, url, body] of calls) {
      // The pool finds out on first use; a call may take the pool's wait (2 s).
      let r;
      for (let i = 0; i < 5; i++) {
        r = await req(m, url, { token, body });
        if (r.status === 503) break;
      }
      eq(r.status, 503, `${m} ${url} without a database: ${r.text.slice(0, 200)}`);
      spec.checkResponse(m, tpl, r);
      eq(r.json.error.code, 'unavailable', 'code');
    }
    const rd = await call('GET', '/readyz', '/readyz', 503);
    eq(rd.json.database, 'down', 'readyz database');
  } finally {
    psql(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS true`);
  }
  await waitHttp(`${stack.apiUrl}/readyz`, 20000, stack.apiProc);
  await call('GET', T, T.replace('{id}', t.id), 200, { token });
});

test('coverage: every documented (operation, status) was answered and validated, or is listed as unreachable', 5000, async () => {
  const missing = spec.documented().filter((k) => !spec.seen.has(k) && !UNREACHABLE[k]);
  assert(!missing.length, `documented but never caused: ${missing.join(', ')}`);
  const stale = Object.keys(UNREACHABLE).filter((k) => spec.seen.has(k) || !spec.documented().includes(k));
  assert(!stale.length, `listed as unreachable but caused or not documented: ${stale.join(', ')}`);
  console.log(`# ${spec.seen.size} (operation, status) pairs validated; unreachable: ${Object.entries(UNREACHABLE).map(([k, v]) => `${k} (${v})`).join('; ')}`);
});

registerSocket(test, { root: ROOT, stack, spec, assert, eq, login: user, api: (...a) => stack.api(...a) });
registerOperator(test, { root: ROOT, stack, assert, eq });
registerTypes(test, { root: ROOT, assert, eq });
registerReact(test, { root: ROOT, stack, assert, eq });

// ---- runner ----------------------------------------------------------------------

async function runOne(t) {
  const t0 = Date.now();
  try {
    await withTimeout(t.fn(), t.ms, t.name);
    console.log(`ok - ${t.name} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    console.log(`not ok - ${t.name} (${Date.now() - t0} ms)\n${String(e.stack || e.message).replace(/^/gm, '#   ')}`);
    for (const n of ['backend-api', 'ws-gateway']) {
      const tail = stack.logTail(n, 10);
      if (tail) console.log(`# --- tail of ${n}.log\n${tail.replace(/^/gm, '#   ')}`);
    }
    return false;
  }
}

async function main() {
  let passed = 0;
  let failed = 0;
  const watchdog = setTimeout(() => {
    console.log('# contract: suite time limit reached; stopping everything');
    stack.killAllNow();
    console.log(`contract: ${passed} passed, ${Math.max(1, failed + 1)} failed`);
    process.exit(1);
  }, SUITE_LIMIT_MS);
  watchdog.unref();
  const chosen = tests.filter((t) => !filter || t.name.includes(filter));
  const withStack = chosen.filter((t) => !t.stackless);
  for (const t of chosen.filter((x) => x.stackless)) (await runOne(t)) ? passed++ : failed++;
  if (withStack.length) {
    try {
      await startStack();
      console.log(`# stack: api ${stack.apiUrl}, gateway ${stack.gwUrl}, Kafka ${stack.brokers} topic ${stack.topic}, logs ${stack.dir}`);
    } catch (e) {
      console.log(`not ok - setup: ${e.stack || e.message}`);
      for (const n of ['backend-api', 'ws-gateway']) console.log(`# --- ${n}\n${stack.logTail(n, 15)}`);
      await stack.stopAll();
      console.log(`contract: ${passed} passed, ${failed + withStack.length} failed`);
      process.exit(1);
    }
    for (const t of withStack) (await runOne(t)) ? passed++ : failed++;
    await stack.stopAll();
  }
  clearTimeout(watchdog);
  console.log(`contract: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

process.on('exit', () => stack.killAllNow());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stack.killAllNow();
    process.exit(130);
  });
}
main();

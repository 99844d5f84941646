// Deployment checks (issue 5), everything that can be checked without a Docker engine
// or a cluster:
//   - `docker-compose config -q` accepts docker-compose.yml, and its services start in
//     the right order with the services' own ports, variables and topic;
//   - `kubectl kustomize` builds the base and every overlay, and every object it
//     renders passes the Kubernetes OpenAPI schema (kubernetes-models `.validate()`);
//   - the properties that matter: probes on paths the services serve, ports equal to
//     the services' defaults, KAFKA_TOPIC equal to the services' default and to the
//     topic created, ClientIP and cookie affinity, PDB/HPA on the gateway, grace
//     periods longer than preStop + SHUTDOWN_TIMEOUT;
//   - Kafka: the apache/kafka tag of compose and k8s is tools/kafka/pom.xml's
//     kafka.version; the KAFKA_* variables of compose's kafka service and of the dev
//     StatefulSet are tools/kafka/config/broker.properties (same values) plus a listed
//     few node-specific ones; the topic gets the partition count `make run` gives it;
//   - the Dockerfiles install exactly packages/build.txt and packages/runtime.txt,
//     the lists `make deps` installs, and runtime.txt covers every library the
//     binaries load;
//   - against the real services (started here on free ports with the harness's
//     PostgreSQL and devbroker): the Dockerfiles' HEALTHCHECK commands and every probe
//     path of the manifests answer 200, and the HEALTHCHECK fails on a 503.
// The variables and defaults of each service come from its own `--help`, not from a
// copy in this file. Prints one line per check and `deploy: N passed, N failed`.
//
//   node tests/deploy/check.mjs       (tests/deploy/suite.sh sets the environment)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.TASKSYNC_PLAIN_BIN || path.join(ROOT, 'build/bin');
const OVERLAYS = ['dev', 'prod'];
const SERVICES = {
  // The paths each service really serves (backend-api/src/server.c,
  // ws-gateway/src/ws_server.c); checked against the running binaries below.
  'backend-api': { liveness: '/healthz', readiness: '/readyz' },
  'ws-gateway': { liveness: '/health', readiness: '/ready' },
};
// Variables a deployment may set that the service does not read: none.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- tiny runner -----------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(a, b, what) {
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 60000, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return r;
}

// ---- what the services say about themselves ---------------------------------------

/** Parses `SERVICE --help`: { NAME: { def: 'value' | null (required) } }. */
function helpTable(service) {
  const bin = path.join(BIN, service);
  assert(fs.existsSync(bin), `${bin} is not built`);
  const r = run(bin, ['--help']);
  assert(r.status === 0, `${service} --help exited ${r.status}`);
  const vars = {};
  let last = null;
  for (const line of r.stdout.split('\n')) {
    let m = /^ {2}([A-Z][A-Z0-9_]*)\s/.exec(line);
    if (m) {
      last = m[1];
      vars[last] = { def: undefined };
      continue;
    }
    m = /^\s+default: (.*?)(?: \[[^\]]*\])?$/.exec(line);
    if (m && last && vars[last].def === undefined) vars[last].def = m[1] === '(required)' ? null : m[1];
  }
  assert(Object.keys(vars).length >= 5, `${service} --help: could not read its variable table`);
  assert(vars.PORT && vars.KAFKA_TOPIC, `${service} --help lists no PORT or KAFKA_TOPIC`);
  return vars;
}

const help = {};
function serviceVars(service) {
  if (!help[service]) help[service] = helpTable(service);
  return help[service];
}

// ---- packages --------------------------------------------------------------------

function pkgList(name) {
  return fs
    .readFileSync(path.join(ROOT, 'packages', name), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** Dockerfile instructions with continuation lines joined: [{ op, args, stage }]. */
function dockerfile(file) {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out = [];
  let cur = '';
  let stage = -1;
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw) && !cur) continue;
    if (/^\s*#/.test(raw)) continue;
    cur += (cur ? ' ' : '') + raw.trim();
    if (cur.endsWith('\\')) {
      cur = cur.slice(0, -1).trim();
      continue;
    }
    if (cur) {
      const m = /^(\S+)\s*(.*)$/.exec(cur);
      const op = m[1].toUpperCase();
      if (op === 'FROM') stage++;
      out.push({ op, args: m[2], stage });
    }
    cur = '';
  }
  return out;
}

function healthcheckCmd(ins) {
  const hc = ins.filter((i) => i.op === 'HEALTHCHECK');
  eq(hc.length, 1, 'HEALTHCHECK instructions');
  const m = /CMD\s+(\[.*\])\s*$/.exec(hc[0].args);
  assert(m, 'HEALTHCHECK is not in exec form');
  return JSON.parse(m[1]);
}

// ---- compose -----------------------------------------------------------------------

let composeCache;
function compose() {
  if (composeCache) return composeCache;
  const r = run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    env: { ...process.env, JWT_SECRET: '' },
  });
  assert(r.status === 0, `docker-compose config failed: ${r.stderr.trim()}`);
  composeCache = YAML.parse(r.stdout);
  return composeCache;
}

function envOf(svc) {
  const e = svc.environment || {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v == null ? '' : String(v)]));
}

function topicCreated(args) {
  const a = args.map(String);
  assert(a.some((x) => x.endsWith('kafka-topics.sh')), `not a kafka-topics.sh command: ${a.join(' ')}`);
  assert(a.includes('--create'), 'kafka-topics.sh without --create');
  const at = (flag) => a[a.indexOf(flag) + 1];
  return { topic: at('--topic'), partitions: Number(at('--partitions')) };
}

function seconds(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(s));
  assert(m, `cannot read duration ${s}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

// ---- kustomize ---------------------------------------------------------------------

const rendered = {};
function kustomize(dir) {
  if (rendered[dir]) return rendered[dir];
  const r = run('kubectl', ['kustomize', path.join('k8s', dir)]);
  assert(r.status === 0, `kubectl kustomize k8s/${dir} failed: ${r.stderr.trim()}`);
  const docs = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean);
  assert(docs.length > 0, `k8s/${dir} renders no object`);
  rendered[dir] = docs;
  return docs;
}

async function modelFor(obj) {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : [null, obj.apiVersion];
  const mod = group ? `kubernetes-models/${group}/${version}/${obj.kind}` : `kubernetes-models/${version}/${obj.kind}`;
  let m;
  try {
    m = await import(mod);
  } catch (e) {
    throw new Error(`no Kubernetes schema for ${obj.apiVersion} ${obj.kind} (${e.code || e.message})`);
  }
  const Model = m[obj.kind];
  assert(typeof Model === 'function', `kubernetes-models has no ${obj.kind} in ${mod}`);
  return Model;
}

const find = (docs, kind, name) => docs.find((d) => d.kind === kind && d.metadata.name === name);
const findAll = (docs, kind) => docs.filter((d) => d.kind === kind);
// Generated ConfigMaps and Secrets carry a hash suffix: tasksync-config-5h2k8...
const byBase = (docs, kind, base) =>
  docs.find((d) => d.kind === kind && (d.metadata.name === base || d.metadata.name.startsWith(base + '-')));

/** The environment one container would see: envFrom ConfigMaps/Secrets, then env. */
function containerEnv(docs, c, { externalSecrets = [] } = {}) {
  const env = {};
  const from = [];
  for (const ef of c.envFrom || []) {
    if (ef.configMapRef) {
      const cm = find(docs, 'ConfigMap', ef.configMapRef.name);
      assert(cm, `envFrom ConfigMap ${ef.configMapRef.name} is not in the output`);
      Object.assign(env, cm.data || {});
      from.push(`ConfigMap ${cm.metadata.name}`);
    } else if (ef.secretRef) {
      const s = find(docs, 'Secret', ef.secretRef.name);
      if (!s) {
        assert(
          externalSecrets.includes(ef.secretRef.name),
          `envFrom Secret ${ef.secretRef.name} is neither in the output nor a documented external one`,
        );
        env[`<external secret ${ef.secretRef.name}>`] = '';
        continue;
      }
      for (const [k, v] of Object.entries(s.data || {})) env[k] = Buffer.from(v, 'base64').toString();
      Object.assign(env, s.stringData || {});
      from.push(`Secret ${s.metadata.name}`);
    }
  }
  for (const e of c.env || []) {
    const ref = e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef;
    if (!ref) {
      env[e.name] = e.value ?? '';
      continue;
    }
    const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
    const o = find(docs, kind, ref.name);
    if (!o) {
      assert(kind === 'Secret' && externalSecrets.includes(ref.name), `${e.name}: ${kind} ${ref.name} is not in the output`);
      env[e.name] = `<external secret ${ref.name}>`;
      continue;
    }
    const v = (o.data || {})[ref.key];
    assert(v !== undefined, `${e.name}: ${kind} ${ref.name} has no key ${ref.key}`);
    env[e.name] = kind === 'Secret' ? Buffer.from(v, 'base64').toString() : v;
  }
  return { env, from };
}

/** A Kubernetes memory quantity in bytes ("512Mi", "1Gi", "500M", "1048576"). */
function memBytes(q) {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  assert(m, `memory quantity ${q} not understood`);
  const mult = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2]] || 1;
  return Number(m[1]) * mult;
}

function portNumber(c, port) {
  if (typeof port === 'number') return port;
  const p = (c.ports || []).find((x) => x.name === port);
  assert(p, `container ${c.name} has no port named ${port}`);
  return p.containerPort;
}

/** Seconds from SIGTERM to exit the service allows itself (SHUTDOWN_TIMEOUT[_MS]). */
function shutdownSeconds(vars, env) {
  if (vars.SHUTDOWN_TIMEOUT) return Number(env.SHUTDOWN_TIMEOUT || vars.SHUTDOWN_TIMEOUT.def);
  if (vars.SHUTDOWN_TIMEOUT_MS) return Number(env.SHUTDOWN_TIMEOUT_MS || vars.SHUTDOWN_TIMEOUT_MS.def) / 1000;
  throw new Error('the service has no SHUTDOWN_TIMEOUT or SHUTDOWN_TIMEOUT_MS');
}

function preStopSleep(c) {
  const cmd = c.lifecycle?.preStop?.exec?.command;
  if (cmd && cmd[0] === 'sleep') return Number(cmd[1]);
  if (c.lifecycle?.preStop?.sleep) return Number(c.lifecycle.preStop.sleep.seconds);
  return null;
}

// ---- live services -----------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function httpStatus(port, p) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function waitStatus(port, p, want, ms) {
  const end = Date.now() + ms;
  let s = 0;
  while (Date.now() < end) {
    s = await httpStatus(port, p);
    if (s === want) return s;
    await sleep(100);
  }
  return s;
}

const started = [];
async function startService(service, extraEnv) {
  assert(fs.existsSync(path.join(BIN, service)), `${path.join(BIN, service)} is not built`);
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    PORT: String(port),
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    KAFKA_TOPIC: 'task-updates',
    JWT_SECRET: 'deploy-check-secret-0123456789',
    LOG_LEVEL: 'warn',
    // ws-gateway refuses to start without it (no default); backend-api reads it too.
    ALLOWED_ORIGINS: 'http://deploy-check.invalid',
    ...extraEnv,
  };
  const child = spawn(path.join(BIN, service), [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((r) => {
    child.on('exit', (code, sig) => r({ code, sig }));
    child.on('error', (e) => r({ code: -1, sig: null, error: e }));
  });
  const svc = { service, port, child, exited, stderr: () => stderr };
  started.push(svc);
  return svc;
}

async function stopService(svc) {
  if (svc.child.exitCode !== null || svc.child.signalCode !== null) return;
  svc.child.kill('SIGTERM');
  const t = setTimeout(() => svc.child.kill('SIGKILL'), 8000);
  await svc.exited;
  clearTimeout(t);
}

function runHealthcheck(argv, port) {
  const r = run(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, PORT: String(port) }, timeout: 10000 });
  return r.status;
}

let dbSeq = 0;
function createDb() {
  const admin = process.env.PG_ADMIN_URL;
  assert(admin, 'PG_ADMIN_URL is not set (run through tests/deploy/suite.sh)');
  const name = `deploy_${process.pid}_${dbSeq++}`;
  const r = run('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', admin, '-c', `CREATE DATABASE "${name}"`]);
  assert(r.status === 0, `could not create database: ${r.stderr}`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
}

// ======================================================================================
// docker-compose.yml

test('compose: docker-compose config -q accepts docker-compose.yml', () => {
  const r = run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q']);
  assert(r.status === 0, `exit ${r.status}: ${r.stderr.trim()}`);
});

test('compose: PostgreSQL 16 with a volume and pg_isready; Kafka KRaft single node with a healthcheck', () => {
  const s = compose().services;
  assert(/^postgres:16(\D|$)/.test(s.postgres.image), `postgres image ${s.postgres.image}`);
  assert((s.postgres.volumes || []).some((v) => (v.target || String(v)).includes('/var/lib/postgresql/data')), 'postgres has no data volume');
  assert(JSON.stringify(s.postgres.healthcheck?.test).includes('pg_isready'), 'postgres healthcheck is not pg_isready');
  const k = s.kafka;
  assert(/^apache\/kafka:\d+\.\d+\.\d+$/.test(k.image), `kafka image must be apache/kafka pinned to x.y.z, got ${k.image}`);
  const ke = envOf(k);
  const roles = (ke.KAFKA_PROCESS_ROLES || '').split(',').sort();
  eq(roles, ['broker', 'controller'], 'KAFKA_PROCESS_ROLES');
  assert(!Object.keys(ke).some((x) => /ZOOKEEPER/.test(x)), 'kafka mentions ZooKeeper');
  assert(/PLAINTEXT:\/\/kafka:9092/.test(ke.KAFKA_ADVERTISED_LISTENERS), 'kafka must advertise kafka:9092 in the network');
  assert(k.healthcheck?.test, 'kafka has no healthcheck');
  assert((k.volumes || []).length > 0, 'kafka has no volume');
});

test('compose: kafka-init creates the services\' default topic; start order follows health', () => {
  const s = compose().services;
  const { topic, partitions } = topicCreated(s['kafka-init'].command);
  for (const svc of ['backend-api', 'ws-gateway']) {
    eq(topic, serviceVars(svc).KAFKA_TOPIC.def, `kafka-init topic vs ${svc}'s KAFKA_TOPIC default`);
    const t = envOf(s[svc]).KAFKA_TOPIC;
    if (t !== undefined) eq(t, topic, `${svc} KAFKA_TOPIC`);
  }
  assert(partitions >= 3, `task-updates with ${partitions} partitions`);
  eq(s['kafka-init'].depends_on?.kafka?.condition, 'service_healthy', 'kafka-init depends_on kafka');
  eq(s['backend-api'].depends_on?.postgres?.condition, 'service_healthy', 'backend-api depends_on postgres');
  eq(s['backend-api'].depends_on?.['kafka-init']?.condition, 'service_completed_successfully', 'backend-api depends_on kafka-init');
  eq(s['ws-gateway'].depends_on?.['kafka-init']?.condition, 'service_completed_successfully', 'ws-gateway depends_on kafka-init');
});

test('compose: services publish their default ports and set only variables they read', () => {
  const s = compose().services;
  for (const svc of ['backend-api', 'ws-gateway']) {
    const vars = serviceVars(svc);
    const env = envOf(s[svc]);
    const port = Number(env.PORT || vars.PORT.def);
    eq(port, Number(vars.PORT.def), `${svc} port vs its default`);
    const published = (s[svc].ports || []).map((p) => (typeof p === 'object' ? p : { target: Number(String(p).split(':').pop()), published: String(p).split(':').slice(-2)[0] }));
    assert(published.some((p) => Number(p.target) === port && Number(p.published) === port), `${svc} does not publish ${port}:${port}`);
    for (const k of Object.keys(env)) assert(vars[k], `${svc} sets ${k}, which it does not read`);
    for (const [k, v] of Object.entries(vars)) if (v.def === null) assert(env[k], `${svc} needs ${k}`);
    assert(s[svc].build?.dockerfile === `${svc}/Dockerfile`, `${svc} is not built from ${svc}/Dockerfile`);
  }
  const be = envOf(s['backend-api']);
  eq(be.DEV_LOGIN, '1', 'backend-api DEV_LOGIN (demo page sign-in)');
  eq(be.PUBLIC_GATEWAY_URL, 'ws://localhost:8005', 'backend-api PUBLIC_GATEWAY_URL');
  for (const svc of ['backend-api', 'ws-gateway']) {
    const shutdown = shutdownSeconds(serviceVars(svc), envOf(s[svc]));
    assert(seconds(s[svc].stop_grace_period || '10s') > shutdown, `${svc} stop_grace_period must exceed its shutdown time (${shutdown} s)`);
  }
});

// ======================================================================================
// Kubernetes

for (const dir of ['base', ...OVERLAYS.map((o) => `overlays/${o}`)]) {
  test(`k8s: kubectl kustomize k8s/${dir} builds`, () => {
    kustomize(dir);
  });
  test(`k8s: every object of k8s/${dir} passes the Kubernetes OpenAPI schema`, async () => {
    const docs = kustomize(dir);
    const bad = [];
    for (const obj of docs) {
      const Model = await modelFor(obj);
      // kustomize folds long base64 values of Secrets over several lines; the API
      // server's base64 decoder skips the newlines, the schema's "byte" format does not.
      const o = obj.kind === 'Secret' && obj.data
        ? { ...obj, data: Object.fromEntries(Object.entries(obj.data).map(([k, v]) => [k, String(v).replace(/\n/g, '')])) }
        : obj;
      try {
        new Model(o).validate();
      } catch (e) {
        bad.push(`${obj.kind}/${obj.metadata?.name}: ${e.message}`);
      }
    }
    assert(bad.length === 0, bad.join('\n'));
    console.log(`#   ${docs.length} objects: ${[...new Set(docs.map((d) => d.kind))].join(', ')}`);
  });
}

const EXTERNAL_SECRETS = { dev: [], prod: ['tasksync-secrets'] };

for (const o of OVERLAYS) {
  const dir = `overlays/${o}`;

  test(`k8s ${o}: one namespace; Deployments backend-api x2 and ws-gateway x3`, () => {
    const docs = kustomize(dir);
    const ns = findAll(docs, 'Namespace');
    eq(ns.length, 1, 'Namespace objects');
    for (const d of docs) if (d.kind !== 'Namespace') eq(d.metadata.namespace, ns[0].metadata.name, `${d.kind}/${d.metadata.name} namespace`);
    eq(find(docs, 'Deployment', 'backend-api')?.spec.replicas, 2, 'backend-api replicas');
    eq(find(docs, 'Deployment', 'ws-gateway')?.spec.replicas, 3, 'ws-gateway replicas');
  });

  for (const svc of Object.keys(SERVICES)) {
    test(`k8s ${o}: ${svc} probes, port, resources, grace period and variables`, () => {
      const docs = kustomize(dir);
      const vars = serviceVars(svc);
      const dep = find(docs, 'Deployment', svc);
      assert(dep, `no Deployment ${svc}`);
      const spec = dep.spec.template.spec;
      eq(spec.containers.length, 1, 'containers');
      const c = spec.containers[0];
      const { env } = containerEnv(docs, c, { externalSecrets: EXTERNAL_SECRETS[o] });
      const port = Number(env.PORT || vars.PORT.def);
      eq(port, Number(vars.PORT.def), `${svc} listens on its default port`);
      // The gateway's HEALTH_PORT: the probes' own listener, which sockets cannot starve.
      const health = vars.HEALTH_PORT ? Number(env.HEALTH_PORT || vars.HEALTH_PORT.def) : 0;
      eq(c.ports.map((p) => p.containerPort), health ? [port, health] : [port], `${svc} containerPort`);
      for (const [kind, want] of [['livenessProbe', SERVICES[svc].liveness], ['readinessProbe', SERVICES[svc].readiness]]) {
        const p = c[kind]?.httpGet;
        assert(p, `${svc} has no httpGet ${kind}`);
        eq(p.path, want, `${svc} ${kind} path`);
        eq(portNumber(c, p.port), health || port, `${svc} ${kind} port`);
      }
      if (vars.SEND_QUEUE_TOTAL_BYTES) {
        // ws-gateway refuses to start when MAX_CONNECTIONS and the send budget cannot
        // fit the container's memory limit (ws_server.c check_capacity): the manifests
        // must not set a combination that makes every pod fail.
        const n = Number(env.MAX_CONNECTIONS || vars.MAX_CONNECTIONS.def);
        const budget = Number(env.SEND_QUEUE_TOTAL_BYTES || vars.SEND_QUEUE_TOTAL_BYTES.def);
        const need = 96 * 2 ** 20 + budget + (n + 16) * 48 * 1024;
        const lim = memBytes(c.resources.limits.memory);
        assert(need <= lim, `${svc}: MAX_CONNECTIONS ${n} and SEND_QUEUE_TOTAL_BYTES ${budget} need ${need} bytes, over the memory limit ${lim}`);
      }
      if (c.startupProbe?.httpGet) eq(c.startupProbe.httpGet.path, SERVICES[svc].liveness, `${svc} startupProbe path`);
      for (const r of ['requests', 'limits'])
        for (const k of ['cpu', 'memory']) assert(c.resources?.[r]?.[k], `${svc} resources.${r}.${k} missing`);
      const pre = preStopSleep(c);
      assert(pre > 0, `${svc} has no preStop sleep`);
      const shutdown = shutdownSeconds(vars, env);
      assert(spec.terminationGracePeriodSeconds > pre + shutdown, `${svc} terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} <= preStop ${pre} + shutdown ${shutdown}`);
      assert(spec.securityContext?.runAsNonRoot === true, `${svc} may run as root`);
      // Every variable set must be one the service reads (a typo, or a consumer-group
      // setting the gateway does not have, fails here); every required one is given.
      const external = Object.keys(env).some((k) => k.startsWith('<external secret'));
      for (const k of Object.keys(env)) if (!k.startsWith('<external')) assert(vars[k] || otherServiceVar(svc, k), `${svc} gets ${k}, which neither service reads`);
      for (const [k, v] of Object.entries(vars)) if (v.def === null) assert(env[k] || external, `${svc} needs ${k}`);
      eq(env.KAFKA_TOPIC, vars.KAFKA_TOPIC.def, `${svc} KAFKA_TOPIC`);
      const s = find(docs, 'Service', svc);
      assert(s, `no Service ${svc}`);
      for (const [k, v] of Object.entries(s.spec.selector)) eq(dep.spec.template.metadata.labels[k], v, `Service ${svc} selector ${k}`);
      eq(s.spec.ports.map((p) => portNumber(c, p.targetPort)), [port], `Service ${svc} targetPort`);
    });
  }

  test(`k8s ${o}: gateway Service ClientIP affinity 3600 s; Ingress cookie affinity and WebSocket timeouts`, () => {
    const docs = kustomize(dir);
    const s = find(docs, 'Service', 'ws-gateway');
    eq(s.spec.sessionAffinity, 'ClientIP', 'ws-gateway sessionAffinity');
    eq(s.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds, 3600, 'ws-gateway affinity timeoutSeconds');
    const ings = findAll(docs, 'Ingress');
    const route = (svc) => {
      for (const ing of ings)
        for (const r of ing.spec.rules || [])
          for (const p of r.http?.paths || []) if (p.backend.service?.name === svc) return { ing, p, host: r.host };
      return null;
    };
    const gw = route('ws-gateway');
    assert(gw, 'no Ingress path to ws-gateway');
    eq(gw.p.path, '/ws', 'gateway Ingress path');
    const a = gw.ing.metadata.annotations || {};
    const nx = (k) => a[`nginx.ingress.kubernetes.io/${k}`];
    eq(nx('affinity'), 'cookie', 'affinity annotation');
    assert(nx('session-cookie-name'), 'no session-cookie-name');
    for (const k of ['proxy-read-timeout', 'proxy-send-timeout']) assert(Number(nx(k)) >= 3600, `${k} is ${nx(k)}`);
    eq(gw.ing.spec.ingressClassName, 'nginx', 'ingressClassName');
    const api = route('backend-api');
    assert(api, 'no Ingress path to backend-api');
    eq(api.host, gw.host, 'the page and the gateway share one host');
    // The demo page's gateway URL and the allowed origin point at that host.
    const cm = byBase(docs, 'ConfigMap', 'tasksync-config');
    eq(new URL(cm.data.PUBLIC_GATEWAY_URL).host, gw.host, 'PUBLIC_GATEWAY_URL host');
    assert(cm.data.ALLOWED_ORIGINS.split(',').some((x) => new URL(x).host === gw.host), 'ALLOWED_ORIGINS lacks the Ingress host');
  });

  test(`k8s ${o}: PodDisruptionBudget and HorizontalPodAutoscaler for the gateway`, () => {
    const docs = kustomize(dir);
    const labels = find(docs, 'Deployment', 'ws-gateway').spec.template.metadata.labels;
    const pdb = findAll(docs, 'PodDisruptionBudget').find((p) => Object.entries(p.spec.selector.matchLabels).every(([k, v]) => labels[k] === v));
    assert(pdb, 'no PDB selects the gateway pods');
    assert(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable >= 1, 'PDB lets every gateway go at once');
    const hpa = findAll(docs, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === 'ws-gateway');
    assert(hpa, 'no HPA targets the ws-gateway Deployment');
    assert(hpa.spec.minReplicas >= 3 && hpa.spec.maxReplicas > hpa.spec.minReplicas, 'HPA bounds');
  });
}

test('k8s dev: PostgreSQL and Kafka StatefulSets, a Job creating the services\' topic, Secrets generated', () => {
  const docs = kustomize('overlays/dev');
  const pg = find(docs, 'StatefulSet', 'postgres');
  assert(pg && /^postgres:16(\D|$)/.test(pg.spec.template.spec.containers[0].image), 'no postgres:16 StatefulSet');
  const k = find(docs, 'StatefulSet', 'kafka');
  assert(k && /^apache\/kafka:\d+\.\d+\.\d+$/.test(k.spec.template.spec.containers[0].image), 'no pinned apache/kafka StatefulSet');
  const kenv = Object.fromEntries(k.spec.template.spec.containers[0].env.map((e) => [e.name, e.value]));
  eq(kenv.KAFKA_PROCESS_ROLES.split(',').sort(), ['broker', 'controller'], 'KAFKA_PROCESS_ROLES');
  assert(find(docs, 'Service', 'postgres') && find(docs, 'Service', 'kafka'), 'postgres/kafka Services');
  const jobs = findAll(docs, 'Job');
  eq(jobs.length, 1, 'Jobs');
  const c = jobs[0].spec.template.spec.containers[0];
  const { topic, partitions } = topicCreated([...(c.command || []), ...(c.args || [])]);
  const cm = byBase(docs, 'ConfigMap', 'tasksync-config');
  eq(topic, cm.data.KAFKA_TOPIC, 'Job topic vs KAFKA_TOPIC');
  assert(partitions >= 3, 'partitions');
  const brokers = cm.data.KAFKA_BROKERS.split(',').map((b) => b.split(':')[0]);
  for (const b of brokers) assert(find(docs, 'Service', b), `KAFKA_BROKERS names ${b}, which has no Service`);
  const sec = byBase(docs, 'Secret', 'tasksync-secrets');
  const dbHost = new URL(Buffer.from(sec.data.DATABASE_URL, 'base64').toString()).hostname;
  assert(find(docs, 'Service', dbHost), `DATABASE_URL names ${dbHost}, which has no Service`);
});

test('k8s prod: no Secret in git, PostgreSQL and Kafka as external services, TLS and released images', () => {
  const docs = kustomize('overlays/prod');
  eq(findAll(docs, 'Secret').length, 0, 'Secrets in the prod output');
  eq(findAll(docs, 'StatefulSet').length, 0, 'StatefulSets in prod');
  const cm = byBase(docs, 'ConfigMap', 'tasksync-config');
  for (const b of cm.data.KAFKA_BROKERS.split(',').map((x) => x.split(':')[0])) {
    const s = find(docs, 'Service', b);
    assert(s && s.spec.type === 'ExternalName', `KAFKA_BROKERS host ${b} is not an ExternalName Service`);
  }
  eq(find(docs, 'Service', 'postgres')?.spec.type, 'ExternalName', 'postgres Service type');
  for (const ing of findAll(docs, 'Ingress')) assert(ing.spec.tls?.length, `Ingress ${ing.metadata.name} has no TLS`);
  for (const d of findAll(docs, 'Deployment')) {
    const img = d.spec.template.spec.containers[0].image;
    assert(/:[0-9][^:]*$/.test(img) && !/:latest$|:dev$/.test(img), `${d.metadata.name} image ${img} is not a release tag`);
  }
  assert(!cm.data.DEV_LOGIN || cm.data.DEV_LOGIN === '0', 'DEV_LOGIN on in prod');
  assert(!cm.data.ALLOWED_ORIGINS.split(',').includes('*'), 'ALLOWED_ORIGINS * in prod');
});

// ======================================================================================
// Kafka: compose and k8s run the release and the broker settings that tests, `make run`
// and bench/ run (tools/kafka/pom.xml, tools/kafka/config/broker.properties)

/** kafka.version of tools/kafka/pom.xml. */
function kafkaVersion() {
  const pom = fs.readFileSync(path.join(ROOT, 'tools/kafka/pom.xml'), 'utf8');
  const m = /<kafka\.version>\s*([^<\s]+)\s*<\/kafka\.version>/.exec(pom);
  assert(m, 'tools/kafka/pom.xml has no <kafka.version>');
  return m[1];
}

/** tools/kafka/config/broker.properties as { name: value } (one property a line). */
function brokerProperties() {
  const text = fs.readFileSync(path.join(ROOT, 'tools/kafka/config/broker.properties'), 'utf8');
  const props = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    assert(!line.endsWith('\\'), `broker.properties: a continued line is not read here: ${line}`);
    const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(line);
    assert(m, `broker.properties: cannot read "${line}"`);
    assert(!(m[1] in props), `broker.properties sets ${m[1]} twice`);
    props[m[1]] = m[2];
  }
  assert(Object.keys(props).length > 0, 'broker.properties sets nothing');
  return props;
}

// The apache/kafka image writes each KAFKA_* variable into server.properties under the
// name its ConvertKey (docker/resources/utility) gives: KAFKA_ dropped, "_" -> ".",
// "__" -> "_", "___" -> "-", lower case.
const propToEnv = (p) => 'KAFKA_' + p.replace(/_/g, '__').replace(/-/g, '___').replace(/\./g, '_').toUpperCase();
const envToProp = (k) =>
  k.slice('KAFKA_'.length).replace(/(?<!_)_(?!_)/g, '.').replace(/___/g, '-').replace(/__/g, '_').toLowerCase();

// KAFKA_* variables of compose's kafka service and the k8s Kafka StatefulSet that are
// not in broker.properties because they differ per node: this node's id, its
// listeners and the addresses it advertises, the quorum as this node reaches it, its
// log dirs. tools/kafka/cluster.sh writes each of them per node (checked below).
const KAFKA_NODE_VARS = [
  'KAFKA_NODE_ID',
  'KAFKA_LISTENERS',
  'KAFKA_ADVERTISED_LISTENERS',
  'KAFKA_LISTENER_SECURITY_PROTOCOL_MAP',
  'KAFKA_CONTROLLER_QUORUM_VOTERS',
  'KAFKA_LOG_DIRS',
];
// KAFKA_* variables that are no broker property: the JVM heap, read by
// kafka-server-start.sh (the StatefulSet sets it to fit its memory limit).
const KAFKA_JVM_VARS = ['KAFKA_HEAP_OPTS'];

/** The properties cluster.sh writes for each node itself (its PROPS here-document). */
function clusterNodeProperties() {
  const sh = fs.readFileSync(path.join(ROOT, 'tools/kafka/cluster.sh'), 'utf8');
  const m = /<<PROPS\n([\s\S]*?)\n\s*PROPS\n/.exec(sh);
  assert(m, 'tools/kafka/cluster.sh has no <<PROPS here-document of per-node lines');
  return new Set([...m[1].matchAll(/^([a-z][a-z0-9._-]*)=/gm)].map((x) => x[1]));
}

/** Both directions: every broker.properties line is a variable with its value; every
 *  KAFKA_* variable is a broker.properties line, node-specific, or a JVM variable. */
function brokerEnvProblems(env, where) {
  const props = brokerProperties();
  const problems = [];
  for (const [p, v] of Object.entries(props)) {
    const k = propToEnv(p);
    if (!(k in env)) problems.push(`${where} lacks ${k} (broker.properties: ${p}=${v})`);
    else if (String(env[k]) !== v) problems.push(`${where}: ${k}=${env[k]}, broker.properties: ${p}=${v}`);
  }
  for (const k of Object.keys(env)) {
    if (!k.startsWith('KAFKA_') || KAFKA_NODE_VARS.includes(k) || KAFKA_JVM_VARS.includes(k)) continue;
    const p = envToProp(k);
    if (!(p in props)) problems.push(`${where} sets ${k} (${p}), which is neither in broker.properties nor a node-specific variable`);
  }
  return problems;
}

/** The kafka container of the dev overlay's StatefulSet and its env as { name: value }. */
function k8sKafkaEnv() {
  const docs = kustomize('overlays/dev');
  const sts = find(docs, 'StatefulSet', 'kafka');
  assert(sts, 'k8s dev has no StatefulSet kafka');
  const cs = sts.spec.template.spec.containers;
  eq(cs.length, 1, 'StatefulSet kafka containers');
  assert(!cs[0].envFrom, 'StatefulSet kafka takes variables from envFrom, which this check does not read');
  const env = {};
  for (const e of cs[0].env || []) {
    assert(!e.valueFrom, `StatefulSet kafka: ${e.name} comes from valueFrom`);
    assert(!(e.name in env), `StatefulSet kafka sets ${e.name} twice`);
    env[e.name] = e.value ?? '';
  }
  return env;
}

/** Every container image of the objects in docs: [{ where, image }]. */
function containerImages(docs, dir) {
  const out = [];
  for (const d of docs) {
    const pod = d.spec?.template?.spec || d.spec?.jobTemplate?.spec?.template?.spec;
    for (const c of [...(pod?.containers || []), ...(pod?.initContainers || [])])
      out.push({ where: `k8s/${dir} ${d.kind}/${d.metadata.name} ${c.name}`, image: c.image });
  }
  return out;
}

test('kafka: the apache/kafka tag of compose, every k8s manifest and docs/deploy.md is kafka.version of tools/kafka/pom.xml', () => {
  const want = kafkaVersion();
  const bad = [];
  // compose as docker-compose reads it: kafka and kafka-init run the image.
  const s = compose().services;
  for (const svc of ['kafka', 'kafka-init']) assert(/^apache\/kafka:/.test(s[svc]?.image || ''), `compose ${svc} does not run apache/kafka`);
  for (const [name, svc] of Object.entries(s))
    if (/^apache\/kafka(:|@|$)/.test(svc.image || '') && svc.image !== `apache/kafka:${want}`) bad.push(`compose ${name}: ${svc.image}`);
  // k8s as kustomize renders it (images: of a kustomization included)...
  let dev = 0;
  for (const dir of ['base', ...OVERLAYS.map((o) => `overlays/${o}`)])
    for (const { where, image } of containerImages(kustomize(dir), dir)) {
      if (!/^apache\/kafka(:|@|$)/.test(image)) continue;
      if (dir === 'overlays/dev') dev++;
      if (image !== `apache/kafka:${want}`) bad.push(`${where}: ${image}`);
    }
  assert(dev >= 2, `k8s dev runs apache/kafka in ${dev} containers (StatefulSet and Job expected)`);
  // ...and every naming of the image in the files, a manifest kustomize does not
  // include or a comment too.
  const files = ['docker-compose.yml'];
  const walk = (d) => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true }))
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (/\.ya?ml$/.test(e.name)) files.push(path.join(d, e.name));
  };
  walk('k8s');
  for (const f of files) {
    const t = fs.readFileSync(path.join(ROOT, f), 'utf8');
    for (const m of t.matchAll(/apache\/kafka:([A-Za-z0-9._-]+)/g)) if (m[1] !== want) bad.push(`${f}: apache/kafka:${m[1]}`);
    // a kustomization retagging the image
    for (const doc of YAML.parseAllDocuments(t).map((d) => d.toJS()).filter(Boolean))
      for (const im of doc.images || [])
        if (im.name === 'apache/kafka' && (im.newTag ?? want) !== want) bad.push(`${f}: images: apache/kafka newTag ${im.newTag}`);
  }
  const doc = fs.readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  for (const m of doc.matchAll(/apache\/kafka:([A-Za-z0-9._-]+)/g)) if (m[1] !== want) bad.push(`docs/deploy.md: apache/kafka:${m[1]}`);
  for (const m of doc.matchAll(/Apache Kafka (\d+(?:\.\d+)+)/g))
    if (m[1] !== want && !want.startsWith(m[1] + '.')) bad.push(`docs/deploy.md: Apache Kafka ${m[1]}`);
  assert(bad.length === 0, `expected apache/kafka:${want}:\n${bad.join('\n')}`);
  console.log(`#   apache/kafka:${want} in compose (${Object.values(s).filter((x) => /^apache\/kafka:/.test(x.image || '')).length} services), k8s dev (${dev} containers), ${files.length} files`);
});

test('kafka: the node-specific KAFKA_* variables are lines cluster.sh writes per node, none in broker.properties', () => {
  const perNode = clusterNodeProperties();
  const props = brokerProperties();
  for (const k of KAFKA_NODE_VARS) {
    eq(propToEnv(envToProp(k)), k, `${k} maps back onto itself`);
    assert(perNode.has(envToProp(k)), `${k} (${envToProp(k)}) is not a line cluster.sh writes per node`);
    assert(!(envToProp(k) in props), `${k} (${envToProp(k)}) is in broker.properties: not node-specific`);
  }
  for (const p of Object.keys(props)) eq(envToProp(propToEnv(p)), p, `${p} maps back onto itself`);
});

test('kafka: compose\'s kafka environment is tools/kafka/config/broker.properties plus node-specific variables, both ways', () => {
  const env = envOf(compose().services.kafka);
  const problems = brokerEnvProblems(env, 'compose kafka');
  assert(problems.length === 0, problems.join('\n'));
  assert(env.CLUSTER_ID, 'compose kafka has no CLUSTER_ID (KRaft storage format)');
});

test('kafka: the k8s dev Kafka StatefulSet\'s environment is tools/kafka/config/broker.properties plus node-specific variables, both ways', () => {
  const env = k8sKafkaEnv();
  const problems = brokerEnvProblems(env, 'StatefulSet kafka');
  assert(problems.length === 0, problems.join('\n'));
  assert(env.CLUSTER_ID, 'StatefulSet kafka has no CLUSTER_ID (KRaft storage format)');
});

test('kafka: compose\'s kafka-init and the k8s dev Job create the topic with the partition count `make run` uses (tools/run-stack.sh)', () => {
  const sh = fs.readFileSync(path.join(ROOT, 'tools/run-stack.sh'), 'utf8');
  const m = /^KAFKA_PARTITIONS=\$\{KAFKA_PARTITIONS:-(\d+)\}/m.exec(sh);
  assert(m, 'tools/run-stack.sh has no KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-N}');
  const want = Number(m[1]);
  eq(topicCreated(compose().services['kafka-init'].command).partitions, want, 'compose kafka-init --partitions');
  const jobs = findAll(kustomize('overlays/dev'), 'Job');
  eq(jobs.length, 1, 'k8s dev Jobs');
  const c = jobs[0].spec.template.spec.containers[0];
  eq(topicCreated([...(c.command || []), ...(c.args || [])]).partitions, want, 'k8s dev Job --partitions');
});

test('ws-gateway joins no consumer group (manifests and sources): every replica gets every event', () => {
  const src = fs.readdirSync(path.join(ROOT, 'ws-gateway/src')).filter((f) => f.endsWith('.c'));
  for (const f of src) {
    const t = fs.readFileSync(path.join(ROOT, 'ws-gateway/src', f), 'utf8');
    assert(!/rd_kafka_subscribe\s*\(/.test(t), `ws-gateway/src/${f} subscribes to a group`);
  }
  assert(!Object.keys(serviceVars('ws-gateway')).some((k) => /GROUP/.test(k)), 'ws-gateway has a group variable');
  // The variable checks above reject any variable the gateway does not read.
});

test('docs: the console-producer recipe matches the compose file and its event is valid', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  const s = compose().services;
  const cmd = /docker compose exec (\S+) (\S+kafka-console-producer\.sh)[^`]*?--bootstrap-server (\S+)[^`]*?--topic (\S+)/s.exec(doc);
  assert(cmd, 'docs/deploy.md has no kafka-console-producer recipe');
  assert(s[cmd[1]] && /^apache\/kafka:/.test(s[cmd[1]].image), `recipe runs in ${cmd[1]}, not the Kafka service`);
  eq(cmd[3], 'localhost:9092', 'bootstrap server inside the kafka container');
  assert(envOf(s[cmd[1]]).KAFKA_LISTENERS.includes(':9092'), 'kafka does not listen on 9092');
  eq(cmd[4], topicCreated(s['kafka-init'].command).topic, 'recipe topic');
  const line = /^(u1)\|(\{.*\})$/m.exec(doc);
  assert(line, 'docs/deploy.md has no example line u1|{...}');
  const ev = JSON.parse(line[2]);
  eq(ev.user_id, line[1], 'key vs user_id');
  // Validated with the proto check's own validator (Draft 2020-12 with formats).
  const py = `
import json, sys, pathlib, jsonschema
from jsonschema import Draft202012Validator, FormatChecker
root = pathlib.Path(sys.argv[1]) / "proto"
schemas = {p.name: json.loads(p.read_text()) for p in root.glob("*.schema.json")}
store = {s["$id"]: s for s in schemas.values()}
sch = schemas["task-event.schema.json"]
v = Draft202012Validator(sch, resolver=jsonschema.RefResolver.from_schema(sch, store=store), format_checker=FormatChecker())
errs = [e.message for e in v.iter_errors(json.loads(sys.stdin.read()))]
print("\\n".join(errs)); sys.exit(1 if errs else 0)
`;
  const r = run('/usr/bin/python3', ['-c', py, ROOT], { input: line[2] });
  assert(r.status === 0, `example event invalid: ${r.stdout}${r.stderr}`);
});

// ======================================================================================
// Dockerfiles and the package lists

for (const svc of Object.keys(SERVICES)) {
  test(`docker ${svc}: multi-stage bookworm -> bookworm-slim, installs exactly packages/build.txt and runtime.txt`, () => {
    const ins = dockerfile(`${svc}/Dockerfile`);
    const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
    eq(froms.length, 2, 'stages');
    assert(/^debian:bookworm\s+AS\s+build$/i.test(froms[0]), `build stage ${froms[0]}`);
    eq(froms[1], 'debian:bookworm-slim', 'run stage');
    const installs = ins.filter((i) => i.op === 'RUN' && /apt-get\s+install/.test(i.args));
    eq(installs.length, 2, 'RUN lines that install packages');
    for (const [stage, list] of [[0, 'build.txt'], [1, 'runtime.txt']]) {
      const r = installs.find((i) => i.stage === stage);
      assert(r, `stage ${stage} installs nothing`);
      // Every apt-get install reads its names from the list file and names none itself.
      const copied = ins
        .filter((i) => i.stage === stage && i.op === 'COPY' && i.args.split(/\s+/)[0] === `packages/${list}`)
        .map((i) => i.args.split(/\s+/).pop());
      for (const cmd of r.args.split(/&&|;/).filter((x) => /apt-get\s+install/.test(x))) {
        const m = /(\S+\.txt)\s*\|\s*xargs\s+apt-get\s+install\b/.exec(cmd);
        assert(m, `apt-get install not fed from a list file: ${cmd.trim()}`);
        const file = path.posix.normalize(m[1]);
        assert(copied.some((c) => path.posix.normalize(c) === file), `stage ${stage} installs from ${file}, not from the copy of packages/${list}`);
        const after = cmd.split(/apt-get\s+install/)[1].trim().split(/\s+/).filter(Boolean);
        assert(after.every((w) => w.startsWith('-')), `apt-get install names packages itself: ${after.join(' ')}`);
      }
      assert(ins.some((i) => i.stage === stage && i.op === 'COPY' && i.args.includes(`packages/${list}`)), `stage ${stage} does not copy packages/${list}`);
    }
    // make deps installs the same files.
    const deps = fs.readFileSync(path.join(ROOT, 'tools/deps.sh'), 'utf8');
    for (const l of ['build.txt', 'runtime.txt']) assert(deps.includes(`packages/${l}`), `tools/deps.sh does not read packages/${l}`);
  });

  test(`docker ${svc}: non-root, exec-form ENTRYPOINT, EXPOSE default port, STOPSIGNAL SIGTERM, HEALTHCHECK`, () => {
    const ins = dockerfile(`${svc}/Dockerfile`);
    const final = ins.filter((i) => i.stage === 1);
    const last = (op) => final.filter((i) => i.op === op).pop();
    const user = last('USER')?.args;
    assert(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
    const ep = JSON.parse(last('ENTRYPOINT').args);
    eq(ep, [`/usr/local/bin/${svc}`], 'ENTRYPOINT (exec form)');
    eq(Number(last('EXPOSE').args), Number(serviceVars(svc).PORT.def), 'EXPOSE');
    eq(last('STOPSIGNAL').args, 'SIGTERM', 'STOPSIGNAL');
    const hc = healthcheckCmd(ins).join(' ');
    assert(hc.includes(`\${PORT:-${serviceVars(svc).PORT.def}}`) && hc.includes(`GET ${SERVICES[svc].liveness} `), `HEALTHCHECK ${hc}`);
    assert(final.some((i) => i.op === 'COPY' && i.args.startsWith('--from=build') && i.args.includes(`build/bin/${svc}`)), 'binary not copied from the build stage');
    if (svc === 'backend-api') {
      const envs = final.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
      const m = /STATIC_DIR=(\S+)/.exec(envs);
      assert(m && serviceVars(svc).STATIC_DIR, 'STATIC_DIR not set (or not read by backend-api)');
      assert(final.some((i) => i.op === 'COPY' && /^web\/?\s/.test(i.args) && i.args.trim().endsWith(m[1].replace(/\/?$/, '/'))), `web/ not copied to ${m[1]}`);
    }
  });

  test(`docker ${svc}: packages/runtime.txt provides every library the binary loads`, () => {
    const bin = path.join(BIN, svc);
    const r = run('readelf', ['-d', bin]);
    assert(r.status === 0, `readelf: ${r.stderr}`);
    const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    assert(needed.length > 0, 'no NEEDED entries');
    const runtime = new Set(pkgList('runtime.txt'));
    const hostIsImageRelease = fs.readFileSync('/etc/debian_version', 'utf8').trim().startsWith('12');
    const missing = [];
    const ld = run('ldd', [bin]).stdout;
    for (const lib of needed) {
      const m = new RegExp(`${lib.replace(/[.+]/g, '\\$&')} => (\\S+)`).exec(ld);
      assert(m, `ldd does not resolve ${lib}`);
      const real = fs.realpathSync(m[1]);
      let owner = run('dpkg', ['-S', real]);
      if (owner.status !== 0) owner = run('dpkg', ['-S', m[1]]);
      assert(owner.status === 0, `no Debian package owns ${m[1]}`);
      const pkg = owner.stdout.split(':')[0].trim();
      // libc6 is in every Debian image (Essential: the slim one too).
      // runtime.txt names Debian 12's packages (the images' base); on another release
      // the same library has another soversion in its package name (libjwt0 is
      // libjwt2 on Debian 13), so there the name without it must match.
      const stem = (p) => p.replace(/-?[0-9.]+(t64)?$/, '');
      const named = runtime.has(pkg) || (!hostIsImageRelease && [...runtime].some((r) => stem(r) === stem(pkg)));
      if (pkg !== 'libc6' && !named) missing.push(`${lib} (${pkg})`);
    }
    assert(missing.length === 0, `not in packages/runtime.txt: ${missing.join(', ')}`);
  });
}

test('docker: .dockerignore keeps build output, node_modules and git out of the context', () => {
  const t = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['.git', 'build', '**/node_modules']) assert(t.includes(p), `.dockerignore lacks ${p}`);
  // ...but not what the images build from.
  for (const p of ['common', 'tools', 'migrations', 'web', 'packages', 'backend-api', 'ws-gateway', 'Makefile']) assert(!t.includes(p), `.dockerignore drops ${p}`);
});

// ======================================================================================
// Against the real services

function otherServiceVar(svc, k) {
  // One ConfigMap feeds both Deployments; a variable only the other service reads is
  // ignored by this one (config_load reads only its own table).
  const other = svc === 'backend-api' ? 'ws-gateway' : 'backend-api';
  return !!serviceVars(other)[k];
}

for (const svc of Object.keys(SERVICES)) {
  test(`live ${svc}: the Dockerfile HEALTHCHECK and every probe path of the manifests answer 200`, async () => {
    const extra = svc === 'backend-api' ? { DATABASE_URL: createDb() } : {};
    const s = await startService(svc, extra);
    try {
      const ready = SERVICES[svc].readiness;
      const st = await waitStatus(s.port, ready, 200, 20000);
      assert(st === 200, `${ready} answered ${st} within 20 s; stderr: ${s.stderr()}`);
      const hc = healthcheckCmd(dockerfile(`${svc}/Dockerfile`));
      eq(runHealthcheck(hc, s.port), 0, 'HEALTHCHECK exit status against the running service');
      const paths = new Set();
      for (const o of OVERLAYS) {
        const c = find(kustomize(`overlays/${o}`), 'Deployment', svc).spec.template.spec.containers[0];
        for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe']) if (c[p]?.httpGet) paths.add(c[p].httpGet.path);
      }
      for (const p of paths) eq(await httpStatus(s.port, p), 200, `GET ${p}`);
      console.log(`#   ${[...paths].join(' ')} -> 200 on ${svc}`);
    } finally {
      await stopService(s);
    }
  });

  test(`live ${svc}: the HEALTHCHECK fails on a 503 and on a closed port`, async () => {
    const hc = healthcheckCmd(dockerfile(`${svc}/Dockerfile`));
    const srv = http.createServer((req, res) => {
      res.writeHead(req.url === SERVICES[svc].liveness ? 503 : 404);
      res.end();
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const port = srv.address().port;
    // spawnSync would block the event loop this server answers on: run it async.
    const status = await new Promise((resolve) => {
      const ch = spawn(hc[0], hc.slice(1), { env: { PATH: process.env.PATH, PORT: String(port) }, stdio: 'ignore' });
      const t = setTimeout(() => ch.kill('SIGKILL'), 10000);
      ch.on('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
    await new Promise((r) => srv.close(r));
    assert(status !== 0, 'HEALTHCHECK passed on a 503');
    assert(runHealthcheck(hc, await freePort()) !== 0, 'HEALTHCHECK passed with nothing listening');
  });
}

// The values compose and the overlays set (not the addresses, which only exist there)
// are accepted by the real binary: it starts and answers its liveness path with them.
for (const svc of Object.keys(SERVICES)) {
  test(`live ${svc}: starts with the configuration of compose, k8s dev and k8s prod`, async () => {
    const sets = { compose: envOf(compose().services[svc]) };
    for (const o of OVERLAYS) {
      const docs = kustomize(`overlays/${o}`);
      const c = find(docs, 'Deployment', svc).spec.template.spec.containers[0];
      sets[`k8s ${o}`] = containerEnv(docs, c, { externalSecrets: EXTERNAL_SECRETS[o] }).env;
    }
    const vars = serviceVars(svc);
    for (const [name, env] of Object.entries(sets)) {
      const mine = Object.fromEntries(Object.entries(env).filter(([k]) => vars[k]));
      delete mine.KAFKA_BROKERS;
      delete mine.DATABASE_URL;
      delete mine.PORT;
      if (!mine.JWT_SECRET || mine.JWT_SECRET.startsWith('<external')) delete mine.JWT_SECRET;
      const s = await startService(svc, { ...mine, ...(svc === 'backend-api' ? { DATABASE_URL: createDb() } : {}) });
      try {
        const st = await waitStatus(s.port, SERVICES[svc].liveness, 200, 15000);
        assert(st === 200, `${name}: ${SERVICES[svc].liveness} answered ${st}; stderr: ${s.stderr()}`);
      } finally {
        await stopService(s);
      }
    }
  });
}

test('live ws-gateway: SIGTERM exits within SHUTDOWN_TIMEOUT, inside the manifests\' grace period', async () => {
  const s = await startService('ws-gateway', { SHUTDOWN_TIMEOUT: '5' });
  try {
    eq(await waitStatus(s.port, '/ready', 200, 20000), 200, '/ready');
    const t0 = Date.now();
    s.child.kill('SIGTERM');
    const r = await Promise.race([s.exited, sleep(8000).then(() => null)]);
    assert(r, 'still running 8 s after SIGTERM');
    const took = (Date.now() - t0) / 1000;
    assert(took <= 5.5, `exit took ${took} s`);
    eq(r.code, 0, 'exit status');
    console.log(`#   exited ${took.toFixed(2)} s after SIGTERM`);
  } finally {
    await stopService(s);
  }
});

// ======================================================================================

const LIMIT_MS = 5 * 60 * 1000;
const guard = setTimeout(() => {
  console.log('deploy: suite time limit reached');
  for (const s of started) s.child.kill('SIGKILL');
  console.log(`deploy: 0 passed, ${tests.length} failed`);
  process.exit(1);
}, LIMIT_MS);

let passed = 0;
let failed = 0;
for (const t of tests) {
  const t0 = Date.now();
  try {
    await t.fn();
    passed++;
    console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${t.name}\n${String(e.message || e).replace(/^/gm, '#   ')}`);
  }
}
for (const s of started) await stopService(s);
clearTimeout(guard);
console.log(`deploy: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

// The real stack for the browser tests: a fresh database in the harness's PostgreSQL
// (PG_ADMIN_URL), an own one-node Apache Kafka (tools/kafka/cluster.sh, so freezing
// or crashing it affects only these tests), backend-api and ws-gateway from
// TASKSYNC_PLAIN_BIN, each on a free loopback port. Every process is started here
// and stopped here by its PID, even on failure.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port on 127.0.0.1 that nothing listens on (the kernel picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until GET url answers 200; throws after ms. */
export async function waitHttp(url, ms = 20000, proc = null) {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    if (proc && proc.exitCode !== null) throw new Error(`${proc.name} exited (${proc.exitCode}) while waiting for ${url}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready after ${ms} ms (${last})`);
}

/**
 * A TCP proxy in front of the gateway that plays a proxy blocking WebSockets: while
 * blocked it answers every connection with 403 (the browser's socket never opens);
 * unblocked it pipes bytes to the gateway unchanged. Connections already piped stay up.
 */
export class BlockingProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.blocked = true;
    this.refused = 0;
    this.passed = 0;
    this.socks = new Set();
    this.server = net.createServer((c) => {
      this.socks.add(c);
      c.on('close', () => this.socks.delete(c));
      c.on('error', () => {});
      if (this.blocked) {
        this.refused++;
        c.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      this.passed++;
      const up = net.connect(this.targetPort, '127.0.0.1');
      this.socks.add(up);
      up.on('close', () => this.socks.delete(up));
      up.on('error', () => c.destroy());
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
      c.pipe(up);
      up.pipe(c);
    });
  }

  async listen() {
    this.port = await freePort();
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', resolve);
    });
    this.url = `ws://127.0.0.1:${this.port}`;
    return this;
  }

  async close() {
    for (const s of this.socks) s.destroy();
    await new Promise((r) => this.server.close(() => r()));
  }
}

export class Stack {
  constructor() {
    const root = process.env.TASKSYNC_ROOT || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
    this.root = root;
    this.bin = process.env.TASKSYNC_PLAIN_BIN || path.join(root, 'build/bin');
    this.dir = fs.mkdtempSync(path.join(process.env.TEST_RUN_DIR || '/tmp', 'e2e-'));
    this.procs = new Set();
    this.jwtSecret = randomBytes(24).toString('hex');
    this.topic = `task-updates`;
    // Presence (ws-gateway PRESENCE_*): a short TTL, so that a SIGKILLed gateway's
    // sockets expire within seconds in the tests (the default is 15 s).
    this.presenceTopic = 'task-presence';
    this.presenceTtlMs = 3000;
  }

  _spawn(name, file, args, env) {
    const log = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const p = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log], cwd: this.root });
    fs.closeSync(log);
    p.name = name;
    p.exited = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    return p;
  }

  /** Stops p: SIGTERM, SIGKILL after ms. */
  async stop(p, ms = 5000) {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    await p.exited;
    clearTimeout(t);
  }

  async stopAll() {
    await Promise.all([this.gw, this.gw2, this.apiProc].filter(Boolean).map((p) => this.stop(p)));
    await Promise.all([...this.procs].map((p) => this.stop(p)));
    this.stopKafka();
  }

  /** Last resort (process exit): no waiting possible, so SIGKILL. */
  killAllNow() {
    if (this.kafkaDir) {
      for (const n of fs.readdirSync(this.kafkaDir).filter((d) => d.startsWith('node-'))) {
        try {
          process.kill(Number(fs.readFileSync(path.join(this.kafkaDir, n, 'pid'), 'utf8')), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const p of this.procs) {
      try {
        p.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  logTail(name, lines = 30) {
    try {
      const t = fs.readFileSync(path.join(this.dir, `${name}.log`), 'utf8').trimEnd().split('\n');
      return t.slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  createDatabase() {
    const admin = process.env.PG_ADMIN_URL;
    if (!admin) throw new Error('PG_ADMIN_URL is not set (run through tests/support/run-tests.sh or tests/e2e/suite.sh)');
    const name = `e2e_${Date.now()}_${randomBytes(3).toString('hex')}`;
    execFileSync('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', admin, '-c', `CREATE DATABASE "${name}"`], { stdio: 'pipe' });
    const u = new URL(admin);
    u.pathname = `/${name}`;
    this.databaseUrl = u.toString();
    return this.databaseUrl;
  }

  /** A one-node Apache Kafka cluster of its own with the topic (3 partitions). */
  async startKafka() {
    this.kafkaDir = path.join(this.dir, 'kafka');
    this.cluster = path.join(this.root, 'tools', 'kafka', 'cluster.sh');
    const run = (...args) => execFileSync('bash', [this.cluster, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 180000 });
    try {
      run('up', this.kafkaDir, '1');
      run('topic', this.kafkaDir, this.topic, '3');
      // Compacted, as tools/lib.sh kafka_presence_topic makes it everywhere else.
      run('topic', this.kafkaDir, this.presenceTopic, '3', '--config', 'cleanup.policy=compact,delete', '--config', 'retention.ms=3600000', '--config', 'segment.ms=600000', '--config', 'min.cleanable.dirty.ratio=0.1', '--config', 'delete.retention.ms=60000');
    } catch (e) {
      throw new Error(`Apache Kafka did not start: ${e.stderr || e.message}\n${this.logTail('kafka/node-1/server')}`);
    }
    const env = Object.fromEntries(
      fs.readFileSync(path.join(this.kafkaDir, 'kafka.env'), 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    this.brokers = env.KAFKA_BROKERS;
    this.kafkaVersion = env.KAFKA_VERSION;
  }

  brokerPid() {
    return Number(fs.readFileSync(path.join(this.kafkaDir, 'node-1', 'pid'), 'utf8'));
  }
  /** A stalled broker: SIGSTOP (its sockets stay open, nothing answers). */
  brokerFreeze() {
    process.kill(this.brokerPid(), 'SIGSTOP');
  }
  brokerThaw() {
    try {
      process.kill(this.brokerPid(), 'SIGCONT');
    } catch {
      /* not running */
    }
  }
  /** A crashed broker: SIGKILL; brokerRestart() starts it on the same log dirs. */
  brokerKill() {
    execFileSync('bash', [this.cluster, 'signal', this.kafkaDir, '1', 'KILL'], { stdio: 'pipe', timeout: 20000 });
  }
  brokerRestart() {
    execFileSync('bash', [this.cluster, 'start', this.kafkaDir, '1'], { stdio: 'pipe', timeout: 180000 });
  }
  /** Whatever a failed test left: the broker running again. */
  brokerHeal() {
    if (!this.kafkaDir) return;
    execFileSync('bash', [this.cluster, 'heal', this.kafkaDir], { stdio: 'pipe', timeout: 180000 });
  }
  stopKafka() {
    if (!this.kafkaDir) return;
    try {
      execFileSync('bash', [this.cluster, 'down', this.kafkaDir], { stdio: 'pipe', timeout: 60000 });
    } catch {
      /* best effort */
    }
  }

  async startApi() {
    this.apiPort = this.apiPort || (await freePort());
    this.gwPort = this.gwPort || (await freePort());
    this.apiUrl = `http://127.0.0.1:${this.apiPort}`;
    this.gwUrl = `ws://127.0.0.1:${this.gwPort}`;
    this.apiProc = this._spawn('backend-api', path.join(this.bin, 'backend-api'), [], {
      PORT: String(this.apiPort),
      DATABASE_URL: this.databaseUrl,
      KAFKA_BROKERS: this.brokers,
      KAFKA_TOPIC: this.topic,
      JWT_SECRET: this.jwtSecret,
      DEV_LOGIN: '1',
      STATIC_DIR: path.join(this.root, 'web'),
      PUBLIC_GATEWAY_URL: this.gwUrl,
      ALLOWED_ORIGINS: this.apiUrl,
      LOG_LEVEL: 'info',
    });
    await waitHttp(`${this.apiUrl}/healthz`, 30000, this.apiProc);
    await waitHttp(`${this.apiUrl}/readyz`, 30000, this.apiProc);
  }

  _gatewayEnv(port, id) {
    return {
      PORT: String(port),
      KAFKA_BROKERS: this.brokers,
      KAFKA_TOPIC: this.topic,
      JWT_SECRET: this.jwtSecret,
      ALLOWED_ORIGINS: this.apiUrl,
      PRESENCE_TOPIC: this.presenceTopic,
      PRESENCE_TTL_MS: String(this.presenceTtlMs),
      PRESENCE_HEARTBEAT_MS: String(Math.floor(this.presenceTtlMs / 3)),
      GATEWAY_ID: id,
      // E2E_GATEWAY_LOG_LEVEL=debug logs each event fanned out (for latency hunts).
      LOG_LEVEL: process.env.E2E_GATEWAY_LOG_LEVEL || 'info',
    };
  }

  async startGateway() {
    this.gw = this._spawn('ws-gateway', path.join(this.bin, 'ws-gateway'), [], this._gatewayEnv(this.gwPort, 'gw1'));
    const base = `http://127.0.0.1:${this.gwPort}`;
    await waitHttp(`${base}/health`, 30000, this.gw);
    await waitHttp(`${base}/ready`, 30000, this.gw);
  }

  /** A second gateway on the same Kafka (presence across gateways); started on demand. */
  async startGateway2() {
    this.gw2Port = this.gw2Port || (await freePort());
    this.gw2Url = `ws://127.0.0.1:${this.gw2Port}`;
    this.gw2 = this._spawn('ws-gateway-2', path.join(this.bin, 'ws-gateway'), [], this._gatewayEnv(this.gw2Port, 'gw2'));
    const base = `http://127.0.0.1:${this.gw2Port}`;
    await waitHttp(`${base}/health`, 30000, this.gw2);
    await waitHttp(`${base}/ready`, 30000, this.gw2);
  }

  /** SIGKILL the second gateway (no goodbye to its sockets, no presence tombstones). */
  async killGateway2() {
    this.gw2.kill('SIGKILL');
    await this.gw2.exited;
  }

  /** SIGKILL the gateway (no goodbye to its sockets). */
  async killGateway() {
    this.gw.kill('SIGKILL');
    await this.gw.exited;
  }

  async start() {
    this.createDatabase();
    await this.startKafka();
    await this.startApi();
    await this.startGateway();
  }

  // ---- the API, from the test's side (its own view of the truth) -------------

  async login(user) {
    const r = await fetch(`${this.apiUrl}/api/v1/dev/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    if (!r.ok) throw new Error(`dev login: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()).token;
  }

  async api(token, method, p, body) {
    const r = await fetch(`${this.apiUrl}${p}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    return { status: r.status, data };
  }
}

// The WebSocket side of the contract: a real socket on the running ws-gateway (a
// ticket from POST /api/v1/ws-ticket), every message it receives validated against
// the payloads proto/asyncapi.yaml's receive operation lists (the JSON Schemas they
// reference), and its handshake refusals in the error shape.
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import YAML from 'yaml';

const BASE = 'https://tasksync.dev/proto/';

export function register(test, { root, stack, spec, assert, eq, login, api }) {
  const doc = YAML.parse(fs.readFileSync(path.join(root, 'proto/asyncapi.yaml'), 'utf8'));
  /** The validators of an operation's messages (by message name). */
  const payloads = (operation) =>
    doc.operations[operation].messages.map((m) => {
      // #/channels/<c>/messages/<k> -> the channel's message -> #/components/messages/<name>
      const [, , ch, , key] = m.$ref.split('/');
      const name = doc.channels[ch].messages[key].$ref.split('/').pop();
      const msg = doc.components.messages[name];
      const ref = msg.payload.$ref;
      assert(ref, `message ${name} has no payload $ref`);
      return { name: msg.name, v: spec.ajv.compile({ $ref: new URL(ref, BASE).href }) };
    });

  test('socket: every message the gateway sends fits asyncapi.yaml; handshake refusals are errors', 30000, async () => {
    const receive = payloads('receiveMessages');
    const send = payloads('sendMessages');
    const token = await login();
    const user = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
    const ticketFor = async () => (await api(token, 'POST', '/api/v1/ws-ticket')).data.ticket;
    const ticket = await ticketFor();
    const got = [];
    const misfits = [];
    const ws = new WebSocket(`${stack.gwUrl}/ws/${user}?ticket=${encodeURIComponent(ticket)}&device_id=laptop`, { origin: stack.apiUrl });
    const waitFor = (pred, what, ms = 10000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${what}: not received in ${ms} ms (got ${JSON.stringify(got).slice(0, 400)})`)), ms);
        const check = () => {
          const m = got.find(pred);
          if (m) {
            clearTimeout(t);
            ws.off('message', check);
            resolve(m);
          }
        };
        ws.on('message', check);
        check();
      });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      const fits = receive.filter((p) => p.v(m)).map((p) => p.name);
      if (!fits.length) misfits.push(m);
      got.unshift(m);
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    try {
      const hello = await waitFor((m) => m.type === 'connected' || m.type === 'catching_up', 'connected');
      eq([hello.user_id, hello.device_id], [user, 'laptop'], 'hello');
      const hello2 = await waitFor((m) => m.type === 'connected', 'connected', 15000);
      const t = (await api(token, 'POST', '/api/v1/tasks', { title: 'over the socket' })).data;
      const up = await waitFor((m) => m.type === 'task_update' && m.task && m.task.id === t.id, 'task_update');
      eq([up.event, up.seq, up.user_id], ['task.created', 1, user], 'task_update');
      // A shared list's events on this user's socket: list.shared, a change another
      // member made in the list (list_id, actor), list.unshared.
      const owner = await login();
      const ownerId = JSON.parse(Buffer.from(owner.split('.')[1], 'base64url').toString()).sub;
      const list = (await api(owner, 'POST', '/api/v1/lists', { name: 'Groceries' })).data;
      eq((await api(owner, 'POST', `/api/v1/lists/${list.id}/members`, { user_id: user, role: 'editor' })).status, 200, 'share');
      const shared = await waitFor((m) => m.type === 'task_update' && m.event === 'list.shared', 'list.shared');
      eq([shared.seq, shared.list.id, shared.list.role, shared.reload, shared.actor], [2, list.id, 'editor', true, ownerId], 'list.shared');
      const milk = (await api(owner, 'POST', '/api/v1/tasks', { title: 'milk', list_id: list.id })).data;
      const made = await waitFor((m) => m.type === 'task_update' && m.task && m.task.id === milk.id, 'task.created in the list');
      eq([made.seq, made.list_id, made.actor, made.user_id], [3, list.id, ownerId, user], 'a member\'s change');
      eq((await api(owner, 'DELETE', `/api/v1/lists/${list.id}/members/${user}`)).status, 204, 'remove');
      const gone = await waitFor((m) => m.type === 'task_update' && m.event === 'list.unshared', 'list.unshared');
      eq([gone.seq, gone.list.id], [4, list.id], 'list.unshared');
      const ping = { type: 'ping' };
      assert(send.some((p) => p.v(ping)), 'ping fits a send payload');
      ws.send(JSON.stringify(ping));
      await waitFor((m) => m.type === 'pong', 'pong');
      ws.send('not json');
      const err = await waitFor((m) => m.type === 'error', 'error');
      assert(typeof err.code === 'string', 'error code');
      assert(hello2.heartbeat_interval >= 1, 'heartbeat_interval');
      assert(!misfits.length, `messages no receive payload of asyncapi.yaml fits: ${JSON.stringify(misfits)}`);
      assert(got.length >= 7, `${got.length} messages`);
    } finally {
      ws.close();
    }
    // Refusals before the upgrade: plain HTTP in the error shape.
    const refused = (url, headers) =>
      new Promise((resolve, reject) => {
        const w = new WebSocket(url, { headers, origin: headers.Origin });
        w.once('open', () => reject(new Error(`${url} opened`)));
        w.once('unexpected-response', (req, res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
        });
        w.once('error', () => {});
      });
    const checks = [
      [`${stack.gwUrl}/ws/${user}?ticket=${encodeURIComponent(ticket)}`, { Origin: stack.apiUrl }, 401], // used twice
      [`${stack.gwUrl}/ws/${user}?ticket=${encodeURIComponent(await ticketFor())}`, { Origin: 'http://evil.example' }, 403],
      [`${stack.gwUrl}/ws/someone-else?ticket=${encodeURIComponent(await ticketFor())}`, { Origin: stack.apiUrl }, 403],
      [`${stack.gwUrl}/ws/${user}`, { Origin: stack.apiUrl }, 401],
      [`${stack.gwUrl}/ws/a/b`, { Origin: stack.apiUrl }, 404],
    ];
    for (const [url, headers, status] of checks) {
      const r = await refused(url, headers);
      eq(r.status, status, `refusal of ${url.replace(/ticket=[^&]+/, 'ticket=...')}`);
      assert(typeof r.body.error?.code === 'string' && typeof r.body.error?.message === 'string', `error shape: ${JSON.stringify(r.body)}`);
    }
  });
}

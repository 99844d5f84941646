// The browser tests of issue 14 (offline-first without losing, resurrecting or
// overwriting a change), against the real stack: each asserts the final state of
// every tab and of the API. Registered by e2e.js, which passes its helpers.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export function register(test, h) {
  const { stack, device, addTask, item, shown, waitList, serverList, waitState } = h;
  const pending0 = (page, ms = 20000) => page.waitForFunction(() => window.tasksync && window.tasksync.pending === 0, null, { timeout: ms });
  const titlesOf = (list) => list.map((t) => t.title);
  const editTitle = async (page, title, to, priority) => {
    const li = await item(page, title);
    await li.locator('.edit').click();
    if (to !== null) await li.locator('.edit-title').fill(to);
    if (priority) await li.locator('.edit-priority').selectOption(priority);
    await li.locator('.edit-title').press('Enter');
  };
  const prioShown = (page, id) => page.evaluate((i) => document.querySelector(`#list li.task[data-id="${i}"] .prio`).textContent, id);

  // ---- tokens never go to a host the server did not name --------------------------

  test('a ?gateway= link sends no token anywhere: the page uses /config.json\'s gateway with a ticket', 60000, async () => {
    // A second local server plays evil.example: it counts what it receives.
    const seen = { connections: 0, bytes: 0 };
    const evil = net.createServer((c) => {
      seen.connections++;
      c.on('data', (d) => (seen.bytes += d.length));
      c.on('error', () => {});
      c.end();
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    const port = evil.address().port;
    try {
      const sockets = [];
      const ctx = await h.browser().newContext({ viewport: { width: 640, height: 560 } });
      ctx.on('page', (p) => p.on('websocket', (ws) => sockets.push(ws.url())));
      const P = await device('ivan', { context: ctx, query: `?gateway=${encodeURIComponent(`ws://127.0.0.1:${port}`)}` });
      await addTask(P.page, 'Linked');
      await pending0(P.page);
      await sleep(1000);
      assert(seen.connections === 0 && seen.bytes === 0, `the foreign host received ${seen.connections} connections, ${seen.bytes} bytes`);
      const ws = sockets.filter((u) => u && u.startsWith('ws://'));
      assert(ws.length >= 1 && ws.every((u) => u.startsWith(stack.gwUrl)), `sockets went to ${JSON.stringify(ws)}, want ${stack.gwUrl}`);
      const opened = ws.filter((u) => u.includes('?'));
      assert(opened.length >= 1 && opened.every((u) => /[?&]ticket=/.test(u) && !/[?&]token=/.test(u)), `socket URLs ${JSON.stringify(opened)}: want a ticket, never the token`);
      const stored = await P.page.evaluate(() => ({ ls: Object.keys(localStorage).filter((k) => localStorage.getItem(k).includes('eyJ')), ss: !!sessionStorage.getItem('tasksync.session') }));
      assert(stored.ls.length === 0, `a token in localStorage: ${stored.ls}`);
      assert(stored.ss, 'the session is not in sessionStorage');
      await ctx.close();
    } finally {
      evil.close();
    }
  });

  // ---- per-field merge -------------------------------------------------------------

  test('phone offline edits the title while the laptop edits the priority: both survive', 60000, async () => {
    const L = await device('judy');
    const P = await device('judy');
    const token = await stack.login('judy');
    await addTask(L.page, 'Plan the trip');
    await pending0(L.page);
    const t0 = (await serverList(token)).tasks[0];
    await waitList(P.page, [t0], 3000, 'phone has it');
    await P.ctx.setOffline(true);
    await editTitle(P.page, 'Plan the trip', 'Plan the trip to Rome', null);
    await editTitle(L.page, 'Plan the trip', null, 'high');
    await pending0(L.page);
    await P.ctx.setOffline(false);
    await pending0(P.page);
    const srv = await serverList(token);
    assert(srv.tasks.length === 1 && srv.tasks[0].title === 'Plan the trip to Rome' && srv.tasks[0].priority === 'high', `server: ${JSON.stringify(srv.tasks)}`);
    for (const d of [L, P]) {
      await waitList(d.page, srv.tasks, 5000, `${d === L ? 'laptop' : 'phone'} at the end`);
      await d.page.waitForFunction((i) => document.querySelector(`#list li.task[data-id="${i}"] .prio`).textContent === 'high', t0.id, { timeout: 5000 });
    }
    const notes = await h.toasts(P.page);
    assert(!notes.some((n) => n.includes('superseded')), `a conflict was reported: ${JSON.stringify(notes)}`);
    for (const d of [L, P]) await d.ctx.close();
  });

  test('both edit the title: the later one wins and the other device shows a conflict notice', 60000, async () => {
    const L = await device('ken');
    const P = await device('ken');
    const token = await stack.login('ken');
    await addTask(L.page, 'Draft');
    await pending0(L.page);
    const t0 = (await serverList(token)).tasks[0];
    await waitList(P.page, [t0], 3000, 'phone has it');
    await P.ctx.setOffline(true);
    await editTitle(P.page, 'Draft', 'Draft (phone)', null); // typed first, offline
    await sleep(200);
    await editTitle(L.page, 'Draft', 'Draft (laptop)', null); // typed later, online: committed first
    await pending0(L.page);
    await P.ctx.setOffline(false);
    await pending0(P.page);
    const srv = await serverList(token);
    assert(srv.tasks.length === 1 && srv.tasks[0].title === 'Draft (laptop)', `server: ${JSON.stringify(srv.tasks)}`);
    await waitList(L.page, srv.tasks, 5000, 'laptop at the end');
    await waitList(P.page, srv.tasks, 5000, 'phone at the end');
    await P.page.waitForFunction(() => window.__toasts.some((t) => t.includes('superseded') && t.includes('Draft (phone)') && t.includes('Draft (laptop)')), null, { timeout: 5000 });
    const ln = await h.toasts(L.page);
    assert(!ln.some((n) => n.includes('superseded')), `the laptop reported a conflict: ${JSON.stringify(ln)}`);
    for (const d of [L, P]) await d.ctx.close();
  });

  // ---- delete wins -----------------------------------------------------------------

  test('a create whose reply is lost, deleted on another device, then retried: stays deleted everywhere', 60000, async () => {
    const L = await device('lena');
    const P = await device('lena', { sw: false });
    const token = await stack.login('lena');
    const s0 = (await serverList(token)).seq;
    // The phone's create reaches the API, but its reply is lost (the connection
    // drops), and the phone goes offline before its retry.
    let dropped = 0;
    await P.ctx.route('**/api/v1/tasks', async (route) => {
      if (route.request().method() !== 'POST' || dropped) return route.continue();
      dropped++;
      await route.fetch();
      await P.ctx.setOffline(true);
      await route.abort('connectionreset');
    });
    await addTask(P.page, 'Lost reply');
    await L.page.waitForFunction(() => [...document.querySelectorAll('#list .title')].some((e) => e.textContent === 'Lost reply'), null, { timeout: 5000 });
    assert(dropped === 1, 'the reply was not dropped');
    assert((await P.page.evaluate(() => window.tasksync.pending)) === 1, 'the phone does not hold its create');
    await (await item(L.page, 'Lost reply')).locator('.delete').click();
    await pending0(L.page);
    assert((await serverList(token)).tasks.length === 0, 'not deleted on the server');
    await P.ctx.setOffline(false);
    await pending0(P.page);
    await sleep(1000);
    const srv = await serverList(token);
    assert(srv.tasks.length === 0, `the retry brought it back: ${JSON.stringify(srv.tasks)}`);
    assert(srv.seq === s0 + 2, `server seq moved by ${srv.seq - s0}, want 2 (one create, one delete)`);
    await waitList(P.page, [], 5000, 'phone at the end');
    await waitList(L.page, [], 5000, 'laptop at the end');
    for (const d of [L, P]) await d.ctx.close();
  });

  // ---- moves relative to neighbours ----------------------------------------------------

  test('offline move, then create, then online (a neighbour deleted meanwhile): the order is as intended', 60000, async () => {
    const L = await device('mike');
    const P = await device('mike');
    const token = await stack.login('mike');
    for (const t of ['A', 'B', 'C']) await addTask(L.page, t);
    await pending0(L.page);
    let srv = await serverList(token);
    await waitList(P.page, srv.tasks, 5000, 'phone has A, B, C');
    await P.ctx.setOffline(true);
    await (await item(P.page, 'C')).locator('.handle').dragTo(await item(P.page, 'A')); // C before A: the top
    await addTask(P.page, 'D');
    const typed = titlesOf(await shown(P.page));
    assert(typed.join() === 'C,A,B,D', `phone shows ${typed}`);
    await (await item(L.page, 'A')).locator('.delete').click(); // the neighbour C was put before
    await pending0(L.page);
    await P.ctx.setOffline(false);
    await pending0(P.page);
    srv = await serverList(token);
    assert(titlesOf(srv.tasks).join() === 'C,B,D', `server order ${titlesOf(srv.tasks)}, want C,B,D`);
    await waitList(P.page, srv.tasks, 5000, 'phone at the end');
    await waitList(L.page, srv.tasks, 5000, 'laptop at the end');
    for (const d of [L, P]) await d.ctx.close();
  });

  // ---- one queue across tabs -------------------------------------------------------------

  test('two tabs, one hidden with throttled timers, both offline, changes in each, online: each applied once, in the order typed', 90000, async () => {
    const ctx = await h.browser().newContext({ viewport: { width: 640, height: 560 } });
    // The hidden tab: the page sees itself hidden, and its timers run at most once
    // every 10 s (browsers run a hidden tab's timers once a minute).
    const hidden = await ctx.newPage();
    await hidden.addInitScript(() => {
      Object.defineProperty(Document.prototype, 'visibilityState', { get: () => 'hidden', configurable: true });
      Object.defineProperty(Document.prototype, 'hidden', { get: () => true, configurable: true });
      const st = window.setTimeout.bind(window);
      const si = window.setInterval.bind(window);
      const next = (ms) => Math.max(ms || 0, 10000 - (Date.now() % 10000));
      window.setTimeout = (fn, ms, ...a) => st(fn, next(ms), ...a);
      window.setInterval = (fn, ms, ...a) => si(fn, Math.max(ms || 0, 10000), ...a);
    });
    const H = await device('nina', { context: ctx, page: hidden });
    const V = await device('nina', { context: ctx });
    const token = await stack.login('nina');
    await addTask(V.page, 'S0');
    await pending0(V.page);
    const s0 = (await serverList(token)).seq;
    assert(await H.page.evaluate(() => window.tasksync.leader), 'the hidden tab (opened first) is not the sending tab');
    await ctx.setOffline(true);
    const order = ['V1', 'H1', 'V2', 'H2', 'V3'];
    for (const t of order) await addTask(t[0] === 'V' ? V.page : H.page, t);
    await (await item(H.page, 'S0')).locator('.toggle').click(); // a change to a task both tabs had
    await V.page.waitForFunction(() => window.tasksync.pending === 6, null, { timeout: 5000 });
    await ctx.setOffline(false);
    await pending0(V.page, 40000);
    await sleep(500);
    const srv = await serverList(token);
    assert(titlesOf(srv.tasks).join() === ['S0', ...order].join(), `server has ${titlesOf(srv.tasks)}, want S0,${order}`);
    assert(srv.seq === s0 + 6, `server seq moved by ${srv.seq - s0}, want 6 (each change once)`);
    assert(srv.tasks.find((t) => t.title === 'S0').completed === true, 'the toggle was lost');
    await waitList(V.page, srv.tasks, 5000, 'visible tab at the end');
    await waitList(H.page, srv.tasks, 25000, 'hidden tab at the end');
    await ctx.close();
  });

  // ---- catch-up that ends ------------------------------------------------------------------

  test('a hand-typed event with a far-future seq: one reload, then live again, no loop', 90000, async () => {
    const A = await device('olga');
    const B = await device('olga');
    const gets = [];
    A.page.on('request', (r) => {
      if (r.url().includes('/api/v1/events')) gets.push(Date.now());
    });
    await addTask(B.page, 'Before');
    await pending0(B.page);
    const reloads = await A.page.evaluate(() => window.tasksync.stats.reloads);
    const line = `olga|${JSON.stringify({ event_type: 'task.created', user_id: 'olga', seq: 999999999, task: { id: 'hand-1', title: 'Typed by hand' } })}\n`;
    execFileSync(path.join(stack.root, 'tools/kafka/bin/kafka-console-producer.sh'), ['--bootstrap-server', stack.brokers, '--topic', stack.topic, '--property', 'parse.key=true', '--property', 'key.separator=|'], { input: line, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60000 });
    await A.page.waitForFunction(() => window.tasksync.stats.unknownSeq === 1, null, { timeout: 20000 });
    const t1 = Date.now();
    await sleep(4000);
    const st = await A.page.evaluate(() => ({ reloads: window.tasksync.stats.reloads, state: window.tasksync.state }));
    assert(st.reloads - reloads === 1, `reloads after the event: ${st.reloads - reloads}, want 1`);
    const after = gets.filter((t) => t >= t1).length;
    assert(after <= 1, `${after} GET /events in the 4 s after the reload: a loop`);
    assert(st.state === 'live', `state ${st.state}`);
    await A.page.waitForFunction(() => window.__toasts.some((t) => t.includes('999999999')), null, { timeout: 2000 });
    // Live again: B's next change comes to A by push.
    const n = await A.page.evaluate(() => window.__changes.length);
    await addTask(B.page, 'After');
    await A.page.waitForFunction((k) => window.__changes.length > k, n, { timeout: 5000 });
    const last = await A.page.evaluate(() => window.__changes[window.__changes.length - 1]);
    assert(last.source === 'live', `A got it by ${last.source}`);
    const srv = await serverList(await stack.login('olga'));
    assert(titlesOf(srv.tasks).join() === 'Before,After', `server ${titlesOf(srv.tasks)}`);
    await waitList(A.page, srv.tasks, 5000, 'A at the end');
    await waitList(B.page, srv.tasks, 5000, 'B at the end');
    for (const d of [A, B]) await d.ctx.close();
  });

  // ---- the demo: a long list draws only the rows in view -------------------------------

  test('a list of 150 draws only the rows in view; scrolling draws others; an open editor stays open, focused, its caret kept', 90000, async () => {
    const token = await stack.login('rowan');
    const N = 150;
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const r = await stack.api(token, 'POST', '/api/v1/tasks', { title: `W${String(i).padStart(3, '0')}` });
        assert(r.status === 201, `create: HTTP ${r.status}`);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    const all = [];
    let pg = await serverList(token);
    all.push(...pg.tasks);
    while (pg.next_cursor) {
      pg = (await stack.api(token, 'GET', `/api/v1/tasks?limit=1000&cursor=${encodeURIComponent(pg.next_cursor)}`)).data;
      all.push(...pg.tasks);
    }
    assert(all.length === N, `server has ${all.length}`);
    const A = await device('rowan');
    const p = A.page;
    await p.waitForFunction((n) => document.querySelector('#list').dataset.count === String(n), N, { timeout: 10000 });
    await sleep(200); // drawn
    const rowsOf = () => p.evaluate(() => [...document.querySelectorAll('#list li.task')].map((li) => ({ id: li.dataset.id, title: li.querySelector('.title, .edit-title').textContent || li.querySelector('.edit-title').value, pos: Number(li.getAttribute('aria-posinset')), size: Number(li.getAttribute('aria-setsize')), top: li.getBoundingClientRect().top })));
    // The rows drawn: a run from the top, in order, labelled with their place.
    const top = await rowsOf();
    assert(top.length > 5 && top.length < 60, `rows in the document: ${top.length} of ${N}`);
    top.forEach((r, k) => assert(r.id === all[k].id && r.pos === k + 1 && r.size === N, `row ${k}: ${JSON.stringify(r)}, want ${all[k].title}`));
    for (let k = 1; k < top.length; k++) assert(top[k].top > top[k - 1].top, `rows not in place: ${top[k - 1].top}, ${top[k].top}`);
    const height = await p.evaluate(() => document.querySelector('#list').getBoundingClientRect().height);
    assert(height >= N * 40, `the list is ${height} px tall for ${N} rows`);
    // An editor opened on the first row, text typed, caret put: scrolled to the end and back.
    const first = p.locator(`#list li.task[data-id="${all[0].id}"]`);
    await first.locator('.edit').click();
    await first.locator('.edit-title').fill('draft');
    await p.evaluate(() => document.activeElement.setSelectionRange(2, 2));
    await p.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const lastId = all[N - 1].id;
    await p.waitForFunction((id) => !!document.querySelector(`#list li.task[data-id="${id}"]`), lastId, { timeout: 5000 });
    const bottom = await rowsOf();
    assert(bottom.length < 60, `rows in the document after scrolling: ${bottom.length}`);
    assert(bottom[0].id === all[0].id && bottom[bottom.length - 1].id === lastId && bottom[bottom.length - 1].pos === N, `after scrolling: first ${JSON.stringify(bottom[0])}, last ${JSON.stringify(bottom[bottom.length - 1])}`);
    const vh = await p.evaluate(() => window.innerHeight);
    assert(bottom[bottom.length - 1].top < vh && bottom[bottom.length - 1].top > 0, `the last row is not in view: top ${bottom[bottom.length - 1].top} of ${vh}`);
    // A remote change to the row being edited, far off screen: nothing typed is lost.
    const r = await stack.api(token, 'PATCH', `/api/v1/tasks/${all[0].id}`, { priority: 'high' });
    assert(r.status === 200, `PATCH: HTTP ${r.status}`);
    await p.waitForFunction((id) => window.tasksync.tasks().find((t) => t.id === id).priority === 'high', all[0].id, { timeout: 5000 });
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.waitForFunction((id) => document.querySelectorAll('#list li.task').length < 60 && document.querySelector('#list li.task:last-child').dataset.id !== id, lastId, { timeout: 5000 });
    const ed = await p.evaluate(() => ({ cls: document.activeElement.className, value: document.activeElement.value, caret: document.activeElement.selectionStart }));
    assert(ed.cls === 'edit-title' && ed.value === 'draft' && ed.caret === 2, `editor after scrolling: ${JSON.stringify(ed)}`);
    await p.keyboard.press('Escape');
    await A.ctx.close();
  });

  // ---- the demo: focus and what is typed survive remote updates ------------------------

  test('focus, the caret and what is typed survive remote reorders and edits, also in an open editor', 60000, async () => {
    const A = await device('quinn');
    const B = await device('quinn');
    const token = await stack.login('quinn');
    for (const t of ['X', 'Y', 'Z']) await addTask(B.page, t);
    await pending0(B.page);
    await waitList(A.page, (await serverList(token)).tasks, 5000, 'A has X, Y, Z');
    const order = (page) => page.evaluate(() => [...document.querySelectorAll('#list li.task .title, #list li.task .edit-title')].map((e) => e.textContent || e.value));
    // A row button keeps the keyboard focus while B moves rows.
    await (await item(A.page, 'X')).locator('.delete').focus();
    await (await item(B.page, 'Z')).locator('.handle').dragTo(await item(B.page, 'X')); // Z to the top
    await A.page.waitForFunction(() => [...document.querySelectorAll('#list li.task .title')].map((e) => e.textContent).join() === 'Z,X,Y', null, { timeout: 5000 });
    const label = await A.page.evaluate(() => document.activeElement && document.activeElement.getAttribute('aria-label'));
    assert(label === 'Delete “X”', `focus after a remote move: ${label}`);
    // An open editor: what is typed and the caret stay while B moves it and edits it.
    const y = await item(A.page, 'Y');
    await y.locator('.edit').click();
    await y.locator('.edit-title').fill('Y draft');
    await A.page.evaluate(() => document.activeElement.setSelectionRange(1, 1));
    await (await item(B.page, 'Y')).locator('.up').click(); // Y above X
    await editTitle(B.page, 'Y', 'Y (B)', null);
    await pending0(B.page);
    await A.page.waitForFunction(() => [...document.querySelectorAll('#list li.task')].map((li) => li.dataset.version).join() && window.tasksync.tasks().map((t) => t.title).join() === 'Z,Y (B),X', null, { timeout: 5000 });
    await sleep(300); // drawn
    const ed = await A.page.evaluate(() => ({ cls: document.activeElement.className, value: document.activeElement.value, caret: document.activeElement.selectionStart }));
    assert(ed.cls === 'edit-title' && ed.value === 'Y draft' && ed.caret === 1, `editor after remote changes: ${JSON.stringify(ed)}`);
    const shownA = await order(A.page);
    assert(shownA.join() === 'Z,Y draft,X', `A shows ${shownA}`);
    // Saved: the editor opened before B's title, so B's title stays and A is told.
    await A.page.keyboard.press('Enter');
    await pending0(A.page);
    await A.page.waitForFunction(() => window.__toasts.some((t) => t.includes('superseded') && t.includes('Y (B)')), null, { timeout: 5000 });
    const srv = await serverList(token);
    assert(titlesOf(srv.tasks).join() === 'Z,Y (B),X', `server ${titlesOf(srv.tasks)}`);
    await waitList(A.page, srv.tasks, 5000, 'A at the end');
    await waitList(B.page, srv.tasks, 5000, 'B at the end');
    for (const d of [A, B]) await d.ctx.close();
  });

  // ---- a long queue ----------------------------------------------------------------------

  test('1,000 operations queued offline replay in order after a reload', 240000, async () => {
    const P = await device('pete');
    const token = await stack.login('pete');
    await P.page.waitForFunction(() => !!navigator.serviceWorker && !!navigator.serviceWorker.controller, null, { timeout: 10000 });
    const s0 = (await serverList(token)).seq;
    await P.ctx.setOffline(true);
    const N = Number(process.env.E2E_QUEUE_N || 1000);
    const tq = Date.now();
    await P.page.evaluate((n) => {
      for (let i = 0; i < n; i++) window.tasksync.create({ title: `T${String(i).padStart(4, '0')}` });
    }, N);
    console.log(`# ${N} changes made in ${Date.now() - tq} ms`);
    await P.page.waitForFunction((n) => window.tasksync.pending === n, N, { timeout: 20000 });
    const t0w = Date.now();
    await P.page.evaluate(() => window.tasksync.persisted()); // every change written to IndexedDB
    console.log(`# 1,000 changes queued and written in ${Date.now() - t0w} ms after the last was made`);
    console.log(`# reloading`);
    await P.page.reload();
    await P.page.waitForFunction(() => !!window.tasksync, null, { timeout: 20000 });
    const kept = await P.page.evaluate(() => window.tasksync.pending);
    assert(kept === N, `after the reload ${kept} changes are queued, want ${N}`);
    const t0 = Date.now();
    await P.ctx.setOffline(false);
    for (let i = 0; i < 40; i++) {
      const st = await P.page.evaluate(() => ({ pending: window.tasksync.pending, state: window.tasksync.state, leader: window.tasksync.leader, sent: window.tasksync.stats.sent, sendMs: window.tasksync.stats.sendMs, storeMs: window.tasksync.stats.storeMs, applied: window.tasksync.stats.applied, catchups: window.tasksync.stats.catchups }));
      if (st.pending === 0) break;
      console.log(`# replay: ${JSON.stringify(st)} after ${Date.now() - t0} ms`);
      await sleep(5000);
    }
    await pending0(P.page, 200000);
    const secs = (Date.now() - t0) / 1000;
    console.log(`# ${N} queued creates replayed in ${secs.toFixed(1)} s`);
    h.figures.push(`queue replay of ${N} operations: ${secs.toFixed(1)} s`);
    const srv = await serverList(token);
    const all = [];
    let page = srv;
    all.push(...page.tasks);
    while (page.next_cursor) {
      page = (await stack.api(token, 'GET', `/api/v1/tasks?limit=1000&cursor=${encodeURIComponent(page.next_cursor)}`)).data;
      all.push(...page.tasks);
    }
    const want = Array.from({ length: N }, (_, i) => `T${String(i).padStart(4, '0')}`);
    assert(titlesOf(all).join() === want.join(), `server order differs (first ${titlesOf(all).slice(0, 5)}; ${all.length} tasks)`);
    assert(srv.seq === s0 + N, `server seq moved by ${srv.seq - s0}, want ${N}`);
    // The page lists all N (it draws only the rows in view, in order from the first).
    await P.page.waitForFunction((n) => document.querySelector('#list').dataset.count === String(n) && document.querySelector('#list li.task .title')?.textContent === 'T0000', N, { timeout: 20000 });
    await P.ctx.close();
  });
}

// The browser tests of presence in the demo (issue 13): a member opening a tab shows as
// online (a green dot on their initials) on another member's page within 2 s, a
// gateway SIGKILLed takes its sockets' members offline within PRESENCE_TTL_MS, and a
// non-member learns nothing of a list's presence. Two gateways on one Kafka cluster
// (stack.js: the second one started here; PRESENCE_TTL_MS short). Registered by
// e2e.js, which passes its helpers.

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export function register(test, h) {
  const { stack, device, figures } = h;
  const ctx = {};

  // ---- presence (the gateway's part: ws-gateway presence_bus) ---------------------
  // Two gateways share the presence topic; PRESENCE_TTL_MS is short in this stack
  // (stack.js), so a SIGKILLed gateway's sockets expire within seconds.

  const onlineDot = (page, user) => page.evaluate((u) => { const a = document.querySelector(`#members .avatar[data-user="${u}"]`); return a ? a.classList.contains('is-online') : null; }, user);

  test('presence: B opens a tab: A sees B’s online dot within 2 s; B’s gateway SIGKILLed: A sees B offline within the TTL', 120000, async () => {
    if (!stack.gw2 || stack.gw2.exitCode !== null || stack.gw2.signalCode !== null) await stack.startGateway2();
    const A = await device('pia');
    const l = await A.page.evaluate(async () => {
      const x = await window.tasksync.createList('Household');
      window.tasksync.select(x.id);
      return x.id;
    });
    await A.page.evaluate((id) => window.tasksync.share(id, 'pete', 'editor'), l);
    await A.page.waitForFunction(() => document.querySelector('#list-name').textContent === 'Household', null, { timeout: 5000 });
    const diag = (what) => async (e) => {
      const d = await A.page.evaluate(() => ({ subs: [...window.tasksync._presenceSubs], presence: [...window.tasksync.presence], lists: window.tasksync.lists(), members: document.querySelector('#members').innerHTML, changes: window.__changes.slice(-5) }));
      throw new Error(`${what}: ${e.message}\n${JSON.stringify(d)}`);
    };
    await A.page.waitForFunction(() => document.querySelectorAll('#members .avatar').length === 2, null, { timeout: 5000 }).catch(diag('both members shown'));
    await A.page.waitForFunction(() => document.querySelector('#members .avatar[data-user="pia"]')?.classList.contains('is-online'), null, { timeout: 5000 }).catch(diag('own dot'));
    assert((await onlineDot(A.page, 'pete')) === false, 'pete online before opening a tab');
    // pete opens a tab on the second gateway: timed from the tab's navigation start
    // (its load, sign-in, ticket, socket, lists, presence proof and subscribe included).
    const B = await device('pete', { gateway: stack.gw2Url, sw: false });
    const t0 = await B.page.evaluate(() => performance.timeOrigin);
    const t1 = await B.page.evaluate(() => window.tasksyncDemo.signedInAt);
    const at = await A.page.waitForFunction(() => { const a = document.querySelector('#members .avatar[data-user="pete"]'); return a && a.classList.contains('is-online') && Date.now(); }, null, { timeout: 5000, polling: 10 });
    const seen = await at.jsonValue();
    const on = Math.round(seen - t0);
    const onSigned = Math.round(seen - t1);
    // Within 2 s of his tab starting its client (signed in: the test's typing into the
    // sign-in form is not the system's time); from the navigation start it is reported.
    assert(onSigned <= 2000, `A saw pete online ${onSigned} ms after his tab signed in, want <= 2000`);
    // His gateway dies without a word: his entry expires within PRESENCE_TTL_MS.
    const k0 = Date.now();
    await stack.killGateway2();
    const off = await A.page.waitForFunction(() => { const a = document.querySelector('#members .avatar[data-user="pete"]'); return a && !a.classList.contains('is-online') && Date.now(); }, null, { timeout: stack.presenceTtlMs + 10000, polling: 20 });
    const gone = (await off.jsonValue()) - k0;
    assert(gone <= stack.presenceTtlMs + 1500, `A saw pete offline ${gone} ms after his gateway was killed, TTL ${stack.presenceTtlMs} ms`);
    figures.push(`presence: pete online at A ${onSigned} ms after his tab signed in (${on} ms after its navigation start); offline ${gone} ms after his gateway was SIGKILLed (PRESENCE_TTL_MS ${stack.presenceTtlMs})`);
    await stack.startGateway2();
    await B.ctx.close();
    ctx.presenceList = l;
    ctx.presenceA = A;
  });

  test('presence: a non-member gets no presence of the list (404 for a proof; a proof of another list is refused)', 60000, async () => {
    assert(ctx.presenceList && ctx.presenceA, 'needs the first presence test');
    const L = ctx.presenceList;
    const tokE = await stack.login('eve');
    const p = await stack.api(tokE, 'POST', `/api/v1/lists/${L}/presence-ticket`, {});
    assert(p.status === 404, `a non-member's proof: ${p.status}`);
    // eve's proof of her own list, offered for pia's list, on her own socket.
    const own = await stack.api(tokE, 'POST', '/api/v1/lists', { name: 'Eve’s' });
    assert(own.status === 201, `eve's list: ${own.status}`);
    const proof = (await stack.api(tokE, 'POST', `/api/v1/lists/${own.data.id}/presence-ticket`, {})).data.ticket;
    const ws = (await stack.api(tokE, 'POST', '/api/v1/ws-ticket', {})).data.ticket;
    const page = await ctx.presenceA.ctx.newPage();
    await page.goto(`${stack.apiUrl}/config.json`);
    const got = await page.evaluate(
      ([gw, tk, L, proof]) =>
        new Promise((resolve) => {
          const msgs = [];
          const s = new WebSocket(`${gw}/ws?ticket=${encodeURIComponent(tk)}`);
          s.onmessage = (m) => {
            const msg = JSON.parse(m.data);
            msgs.push(msg);
            if (msg.type === 'connected') s.send(JSON.stringify({ type: 'subscribe', list_id: L, ticket: proof }));
          };
          setTimeout(() => {
            s.close();
            resolve(msgs);
          }, 2500);
        }),
      [stack.gwUrl, ws, L, proof],
    );
    const err = got.find((m) => m.type === 'error');
    assert(err && err.code === 'forbidden', `no forbidden error: ${JSON.stringify(got)}`);
    const leak = got.filter((m) => m.type === 'presence');
    assert(leak.length === 0, `a non-member received presence: ${JSON.stringify(leak)}`);
    await page.close();
    await ctx.presenceA.ctx.close();
  });
}

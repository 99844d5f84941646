// The React example (examples/react) built with Vite and driven in Debian's chromium
// (playwright-core) against the real stack: backend-api serves the build
// (STATIC_DIR=examples/react/dist, one origin), the gateway pushes. Two tabs of one
// browser and a second device stay in step; a device offline queues its changes and
// sends them when it is back; a change made offline to a task another device
// deleted meanwhile shows a notice (delete wins), and a rename made offline of a task
// another device renamed first shows the client's conflict (the per-field merge).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function register(test, { root, stack, assert }) {
  const app = path.join(root, 'examples/react');

  test(
    'react example: npm install and vite build',
    240000,
    async () => {
      const sh = (cmd, args, ms) => {
        try {
          execFileSync(cmd, args, { cwd: app, stdio: 'pipe', timeout: ms });
        } catch (e) {
          throw new Error(`${cmd} ${args.join(' ')} in examples/react:\n${e.stdout}${e.stderr}`);
        }
      };
      const nm = path.join(app, 'node_modules');
      if (!fs.existsSync(path.join(nm, '.bin/vite')) || fs.statSync(path.join(app, 'package.json')).mtimeMs > fs.statSync(nm).mtimeMs)
        sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], 180000);
      sh(path.join(nm, '.bin/vite'), ['build', '--logLevel', 'warn'], 180000);
      const files = fs.readdirSync(path.join(app, 'dist'));
      assert(files.includes('index.html') && files.some((f) => f.endsWith('.js')), `dist holds ${files}`);
      assert(files.every((f) => !fs.statSync(path.join(app, 'dist', f)).isDirectory()), 'dist has a subfolder (STATIC_DIR serves none)');
    },
    { stackless: true },
  );

  test('react example: two tabs in step, offline then online, delete wins and a merge conflict notice', 150000, async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic', '--disable-dev-shm-usage'],
    });
    try {
      const user = `react-${process.pid}`;
      const device = async () => {
        const ctx = await browser.newContext({ viewport: { width: 600, height: 500 } });
        const tab = await ctx.newPage();
        tab.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
        await tab.goto(`${stack.apiUrl}/`);
        return { ctx, tab };
      };
      const state = (page, s, ms = 20000) => page.waitForFunction((x) => document.querySelector('.state')?.dataset.state === x, s, { timeout: ms });
      const titles = (page) => page.evaluate(() => [...document.querySelectorAll('#tasks li .title')].map((e) => e.textContent));
      const waitTitles = async (page, want, what, ms = 15000) => {
        try {
          await page.waitForFunction((w) => JSON.stringify([...document.querySelectorAll('#tasks li .title')].map((e) => e.textContent)) === JSON.stringify(w), want, { timeout: ms });
        } catch {
          throw new Error(`${what}: shows ${JSON.stringify(await titles(page))}, want ${JSON.stringify(want)}`);
        }
      };
      const add = async (page, title) => {
        await page.fill('#title', title);
        await page.click('#add button[type=submit]');
      };
      const row = (page, title) => page.locator('#tasks li', { has: page.locator('.title', { hasText: title }) });

      // Device A signs in; its second tab shares the session.
      const A = await device();
      await A.tab.fill('#user', user);
      await A.tab.click('#signin button[type=submit]');
      await state(A.tab, 'live');
      const A2 = await A.ctx.newPage();
      await A2.goto(`${stack.apiUrl}/`);
      await state(A2, 'live');
      const B = await device();
      await B.tab.fill('#user', user);
      await B.tab.click('#signin button[type=submit]');
      await state(B.tab, 'live');

      // In step: a change in one tab shows in the other tab and on the other device.
      await add(A.tab, 'Buy milk');
      await waitTitles(A2, ['Buy milk'], 'tab 2');
      await waitTitles(B.tab, ['Buy milk'], 'device B');
      await add(A2, 'Walk the dog');
      await waitTitles(A.tab, ['Buy milk', 'Walk the dog'], 'tab 1');
      await waitTitles(B.tab, ['Buy milk', 'Walk the dog'], 'device B');

      // Offline: A's change waits (pending) and B does not see it; online: it is sent.
      await A.ctx.setOffline(true);
      await state(A.tab, 'offline', 10000);
      await add(A.tab, 'Offline idea');
      await A.tab.waitForFunction(() => document.querySelector('#pending').textContent === '1 unsent', null, { timeout: 5000 });
      assert((await row(A.tab, 'Offline idea').getAttribute('class')).includes('pending'), 'the queued task is marked pending');
      // Meanwhile B deletes a task A is about to change offline.
      await row(A.tab, 'Walk the dog').locator('input[type=checkbox]').check();
      await A.tab.waitForFunction(() => document.querySelector('#pending').textContent === '2 unsent', null, { timeout: 5000 });
      await row(B.tab, 'Walk the dog').locator('button.delete').click();
      await waitTitles(B.tab, ['Buy milk'], 'device B after its delete');
      assert(JSON.stringify(await titles(B.tab)) === JSON.stringify(['Buy milk']), 'B never saw the offline task');

      await A.ctx.setOffline(false);
      await state(A.tab, 'live', 30000);
      await A.tab.waitForFunction(() => document.querySelector('#pending').textContent === '0 unsent', null, { timeout: 20000 });
      await waitTitles(B.tab, ['Buy milk', 'Offline idea'], 'device B after A came back');
      await waitTitles(A.tab, ['Buy milk', 'Offline idea'], 'tab 1 after it came back (delete wins)');
      await waitTitles(A2, ['Buy milk', 'Offline idea'], 'tab 2 after it came back');

      // The conflict notice: A changed "Walk the dog" while B deleted it.
      const notice = A.tab.locator('.conflict[data-kind=deleted]');
      await notice.waitFor({ timeout: 15000 });
      const text = await notice.textContent();
      assert(text.includes('Walk the dog'), `the notice names the task: ${text}`);
      await notice.locator('button').click();
      await A.tab.waitForFunction(() => !document.querySelector('.conflict'), null, { timeout: 5000 });
      assert((await B.tab.locator('.conflict').count()) === 0, 'B, whose change came first, has no notice');
      // The other tab of device A was told too (the client reports the sending tab's outcome in every tab).
      await A2.locator('.conflict[data-kind=deleted]').waitFor({ timeout: 15000 });
      await A2.locator('.conflict[data-kind=deleted] button').click();

      // The per-field merge: A renames "Buy milk" offline while B renames it online;
      // B's rename was committed first, so the server keeps it and A's client reports
      // the field ({field, yours, theirs}) as a conflict notice in both of A's tabs.
      await A.ctx.setOffline(true);
      await state(A.tab, 'offline', 10000);
      A.tab.once('dialog', (d) => d.accept('Buy oat milk'));
      await row(A.tab, 'Buy milk').locator('.title').dblclick();
      await waitTitles(A.tab, ['Buy oat milk', 'Offline idea'], 'tab 1 after its offline rename');
      await A.tab.waitForFunction(() => document.querySelector('#pending').textContent === '1 unsent', null, { timeout: 5000 });
      B.tab.once('dialog', (d) => d.accept('Buy whole milk'));
      await row(B.tab, 'Buy milk').locator('.title').dblclick();
      await B.tab.waitForFunction(() => document.querySelector('#pending').textContent === '0 unsent', null, { timeout: 10000 });
      await waitTitles(B.tab, ['Buy whole milk', 'Offline idea'], 'device B after its rename');
      await A.ctx.setOffline(false);
      await state(A.tab, 'live', 30000);
      await A.tab.waitForFunction(() => document.querySelector('#pending').textContent === '0 unsent', null, { timeout: 20000 });
      for (const [page, what] of [
        [A.tab, 'tab 1'],
        [A2, 'tab 2'],
        [B.tab, 'device B'],
      ])
        await waitTitles(page, ['Buy whole milk', 'Offline idea'], `${what} after the merge (first committer wins)`);
      for (const [page, what] of [
        [A.tab, 'tab 1'],
        [A2, 'tab 2'],
      ]) {
        const merged = page.locator('.conflict[data-kind=conflict]');
        await merged.waitFor({ timeout: 15000 });
        const t = await merged.textContent();
        assert(t.includes('title kept "Buy whole milk" (yours: "Buy oat milk")'), `${what}: the notice names the field, theirs and yours: ${t}`);
        assert((await page.locator('.conflict').count()) === 1, `${what}: one notice`);
      }
      assert((await B.tab.locator('.conflict').count()) === 0, 'B, whose rename came first, has no notice');
    } finally {
      await browser.close().catch(() => {});
    }
  });
}

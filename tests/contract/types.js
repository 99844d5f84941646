// The web package's types: web/types/api.d.ts is what openapi-typescript makes of
// proto/openapi.yaml today (so client types cannot drift from the contract), and a
// consumer file that imports the package by name through its `exports` passes
// `tsc --noEmit` (strict), with lines that must fail to type-check.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function register(test, { root, assert }) {
  const here = path.join(root, 'tests/contract');
  const bin = path.join(here, 'node_modules/.bin');
  const run = (cmd, args) => {
    try {
      return execFileSync(path.join(bin, cmd), args, { cwd: here, stdio: 'pipe', timeout: 110000 }).toString();
    } catch (e) {
      throw new Error(`${cmd} ${args.join(' ')}:\n${e.stdout}${e.stderr}`);
    }
  };
  const opts = { stackless: true };

  test(
    'types: web/types/api.d.ts is what openapi-typescript generates from proto/openapi.yaml',
    120000,
    async () => {
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'contract-types-')), 'api.d.ts');
      try {
        run('openapi-typescript', ['../../proto/openapi.yaml', '-o', out]);
        const fresh = fs.readFileSync(out, 'utf8');
        const kept = fs.readFileSync(path.join(root, 'web/types/api.d.ts'), 'utf8');
        assert(fresh === kept, 'web/types/api.d.ts differs from a fresh generation: run `npm run types` in tests/contract and commit it');
        for (const t of ['"ws-message.schema"', '"task-event.schema"', 'StoredTask', 'MergeResult'])
          assert(kept.includes(t), `api.d.ts lacks ${t}`);
      } finally {
        fs.rmSync(path.dirname(out), { recursive: true, force: true });
      }
    },
    opts,
  );

  test(
    'types: tsc --noEmit of a consumer of tasksync, tasksync/react and tasksync/types',
    120000,
    async () => {
      const link = path.join(here, 'node_modules/tasksync');
      assert(fs.existsSync(path.join(link, 'package.json')), 'node_modules/tasksync is missing (npm install in tests/contract)');
      run('tsc', ['-p', 'types/tsconfig.json']);
      // Every entry point of the package exists where `exports` says.
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'web/package.json'), 'utf8'));
      for (const [entry, target] of Object.entries(pkg.exports)) {
        for (const file of typeof target === 'string' ? [target] : Object.values(target))
          assert(fs.existsSync(path.join(root, 'web', file)), `exports ${entry}: ${file} is missing`);
      }
    },
    opts,
  );

  test(
    'types: the package imports in node by its name (exports "."), with every export declared',
    20000,
    async () => {
      const code = "import('tasksync').then((m) => { if (typeof m.TaskSync !== 'function' || !m.STATE.LIVE) process.exit(3); console.log(JSON.stringify(Object.keys(m).sort())); })";
      let names;
      try {
        names = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: here, stdio: 'pipe', timeout: 15000 }).toString());
      } catch (e) {
        throw new Error(`import('tasksync') failed: ${e.stderr}`);
      }
      // tasksync.d.ts declares exactly what tasksync.js exports, no more, no less.
      const dts = fs.readFileSync(path.join(root, 'web/tasksync.d.ts'), 'utf8');
      const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]).sort();
      assert(JSON.stringify(declared) === JSON.stringify(names), `tasksync.js exports ${names.join(', ')}; tasksync.d.ts declares ${declared.join(', ')}`);
    },
    opts,
  );
}

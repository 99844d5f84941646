// The operator files against the running services: deploy/prometheus/alerts.yml
// (promtool check rules, promtool test rules) and deploy/grafana/tasksync.json may
// name only metrics that backend-api and ws-gateway export (scraped from their
// /metrics after the contract tests have exercised them), and docs/operations.md
// describes every metric family they export and every alert.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads. */
export function promqlMetrics(expr) {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, ' ') // matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/(?<![A-Za-z_])[0-9][0-9.]*(e[+-]?[0-9]+)?/gi, ' ') // numbers (1e9)
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping labels
  const out = new Set();
  for (const m of s.matchAll(/(?<![0-9.A-Za-z_:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    if (m[2]) continue; // a function
    if (PROMQL_WORDS.has(m[1].toLowerCase())) continue;
    if (m[1].startsWith('$')) continue;
    out.add(m[1]);
  }
  return [...out];
}

/** {families: Set of names from # TYPE, series: Set of sample names}. */
export function parseExposition(text) {
  const families = new Set();
  const series = new Set();
  for (const line of text.split('\n')) {
    const t = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/);
    if (t) {
      families.add(t[1]);
      if (t[2] === 'histogram') for (const suf of ['_bucket', '_sum', '_count']) series.add(t[1] + suf);
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/);
    if (m) series.add(m[1]);
  }
  return { families, series };
}

export function register(test, { root, stack, assert }) {
  const alertsFile = path.join(root, 'deploy/prometheus/alerts.yml');
  const dashFile = path.join(root, 'deploy/grafana/tasksync.json');
  const docFile = path.join(root, 'docs/operations.md');

  const scrape = async () => {
    const api = await (await fetch(`${stack.apiUrl}/metrics`)).text();
    const gw = await (await fetch(`http://127.0.0.1:${stack.gwPort}/metrics`)).text();
    const a = parseExposition(api);
    const g = parseExposition(gw);
    return {
      families: new Set([...a.families, ...g.families]),
      series: new Set([...a.series, ...g.series]),
    };
  };

  test('operator: promtool check rules and promtool test rules of deploy/prometheus', 60000, async () => {
    const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => fs.existsSync(p));
    assert(promtool, 'promtool is not installed (Debian package prometheus: make deps)');
    const run = (...args) => {
      try {
        return execFileSync(promtool, args, { cwd: path.dirname(alertsFile), stdio: 'pipe', timeout: 50000 }).toString();
      } catch (e) {
        throw new Error(`promtool ${args.join(' ')}:\n${e.stdout}${e.stderr}`);
      }
    };
    run('check', 'rules', 'alerts.yml');
    run('test', 'rules', 'alerts.test.yml');
  });

  test('operator: the alert rules and the dashboard read only metrics the services export', 20000, async () => {
    const { series } = await scrape();
    const used = new Map(); // metric -> where
    const rules = YAML.parse(fs.readFileSync(alertsFile, 'utf8'));
    let nrules = 0;
    for (const g of rules.groups)
      for (const r of g.rules) {
        nrules++;
        for (const m of promqlMetrics(r.expr)) used.set(m, `alert ${r.alert}`);
      }
    assert(nrules >= 4, `only ${nrules} rules`);
    let dash;
    try {
      dash = JSON.parse(fs.readFileSync(dashFile, 'utf8'));
    } catch (e) {
      throw new Error(`${dashFile} is not valid JSON: ${e.message}`);
    }
    assert(Array.isArray(dash.panels) && dash.title && dash.uid, 'a dashboard has title, uid and panels');
    const ids = new Set();
    let nexpr = 0;
    for (const p of dash.panels) {
      assert(!ids.has(p.id), `panel id ${p.id} repeated`);
      ids.add(p.id);
      assert(p.gridPos && p.type && p.title, `panel ${p.id} lacks gridPos, type or title`);
      for (const t of p.targets || []) {
        nexpr++;
        for (const m of promqlMetrics(t.expr)) used.set(m, `panel "${p.title}"`);
      }
    }
    assert(nexpr >= 10, `only ${nexpr} dashboard queries`);
    const unknown = [...used].filter(([m]) => !series.has(m)).map(([m, w]) => `${m} (${w})`);
    assert(!unknown.length, `not exported by backend-api or ws-gateway: ${unknown.join(', ')}`);
    // The four the issue names are there.
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    for (const a of ['TasksyncOutboxBacklogGrowing', 'TasksyncEventsDeadLettered', 'TasksyncGatewayConsumerLag', 'TasksyncSocketsClosed1013'])
      assert(alerts.includes(a), `alert ${a} missing`);
  });

  test('operator: docs/operations.md names every exported metric family and every alert', 20000, async () => {
    const doc = fs.readFileSync(docFile, 'utf8');
    const { families } = await scrape();
    assert(families.size >= 20, `only ${families.size} metric families scraped`);
    const missing = [...families].filter((f) => !doc.includes(`\`${f}\``));
    assert(!missing.length, `metrics the services export that docs/operations.md does not describe: ${missing.join(', ')}`);
    const rules = YAML.parse(fs.readFileSync(alertsFile, 'utf8'));
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    const undoc = alerts.filter((a) => !doc.includes(a));
    assert(!undoc.length, `alerts docs/operations.md does not explain: ${undoc.join(', ')}`);
  });
}

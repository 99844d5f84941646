// proto/openapi.yaml as a validator of real answers: the document and the JSON Schemas
// beside it are loaded into one Ajv (draft 2020-12) under their $ids, so a response's
// schema is compiled straight from the document (refs to task.schema.json and to
// #/components resolve as they are written), never copied into the test.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export const DOC_ID = 'https://tasksync.dev/proto/openapi.yaml';
export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export class Spec {
  constructor(root) {
    this.root = root;
    const proto = path.join(root, 'proto');
    this.doc = YAML.parse(fs.readFileSync(path.join(proto, 'openapi.yaml'), 'utf8'));
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    for (const f of fs.readdirSync(proto).filter((n) => n.endsWith('.schema.json')))
      this.ajv.addSchema(JSON.parse(fs.readFileSync(path.join(proto, f), 'utf8')));
    this.ajv.addSchema(this.doc, DOC_ID);
    this.seen = new Set(); // "operationId status" answered and validated
  }

  /** [{method, path, op}] of every operation in the document. */
  operations() {
    const out = [];
    for (const [p, item] of Object.entries(this.doc.paths))
      for (const m of METHODS) if (item[m]) out.push({ method: m.toUpperCase(), path: p, op: item[m] });
    return out;
  }

  op(method, template) {
    const item = this.doc.paths[template];
    const op = item && item[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${template} is not in openapi.yaml`);
    return op;
  }

  /** Follows a local $ref; returns [object, its JSON pointer]. */
  deref(obj, pointer) {
    while (obj && obj.$ref) {
      if (!obj.$ref.startsWith('#/')) throw new Error(`cannot follow ${obj.$ref}`);
      pointer = obj.$ref.slice(1);
      obj = pointer
        .split('/')
        .slice(1)
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((o, k) => o[k], this.doc);
    }
    return [obj, pointer];
  }

  validator(pointer) {
    const v = this.ajv.getSchema(`${DOC_ID}#${pointer}`);
    if (!v) throw new Error(`no schema at ${pointer}`);
    return v;
  }

  /** Throws unless body validates against the operation's request body schema. */
  checkRequest(method, template, body) {
    const op = this.op(method, template);
    const base = `/paths/${esc(template)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`;
    if (!op.requestBody) throw new Error(`${method} ${template} documents no request body`);
    const v = this.validator(base);
    if (!v(body)) throw new Error(`request ${JSON.stringify(body)} does not fit ${method} ${template}: ${this.ajv.errorsText(v.errors)}`);
  }

  /**
   * Throws unless res (status, headers, text) is a documented answer of the operation:
   * its status listed, its Content-Type, its required headers and every documented
   * header present validating, and its body validating against the schema.
   */
  checkResponse(method, template, res) {
    const op = this.op(method, template);
    const where = `${method} ${template} -> ${res.status}`;
    const raw = op.responses[String(res.status)];
    if (!raw) throw new Error(`${where}: status not documented (body ${res.text.slice(0, 300)})`);
    const [resp, rptr] = this.deref(raw, `/paths/${esc(template)}/${method.toLowerCase()}/responses/${res.status}`);
    for (const [name, h0] of Object.entries(resp.headers || {})) {
      const [h, hptr] = this.deref(h0, `${rptr}/headers/${esc(name)}`);
      const value = res.headers.get(name);
      if (value === null) {
        if (h.required) throw new Error(`${where}: header ${name} missing`);
        continue;
      }
      const v = this.validator(`${hptr}/schema`);
      if (!v(value)) throw new Error(`${where}: header ${name}: ${JSON.stringify(value)}: ${this.ajv.errorsText(v.errors)}`);
    }
    if (!resp.content) {
      if (res.text !== '') throw new Error(`${where}: documented without a body, got ${res.text.slice(0, 200)}`);
    } else {
      const ct = (res.headers.get('content-type') || '').split(';')[0].trim();
      const media = resp.content[ct];
      if (!media) throw new Error(`${where}: Content-Type ${ct} not documented (${Object.keys(resp.content)})`);
      if (ct === 'application/json') {
        let body;
        try {
          body = JSON.parse(res.text);
        } catch (e) {
          throw new Error(`${where}: body is not JSON: ${e.message}`);
        }
        const v = this.validator(`${rptr}/content/application~1json/schema`);
        if (!v(body)) throw new Error(`${where}: body does not fit the document: ${this.ajv.errorsText(v.errors)}\n${JSON.stringify(body).slice(0, 600)}`);
      }
    }
    this.seen.add(`${op.operationId} ${res.status}`);
  }

  /** Throws unless value validates against #/components/schemas/<name>. */
  checkSchema(name, value) {
    const v = this.validator(`/components/schemas/${name}`);
    if (!v(value)) throw new Error(`${JSON.stringify(value).slice(0, 300)} is not a ${name}: ${this.ajv.errorsText(v.errors)}`);
  }

  /** Every "operationId status" the document lists. */
  documented() {
    const out = [];
    for (const { op } of this.operations()) for (const s of Object.keys(op.responses)) out.push(`${op.operationId} ${s}`);
    return out;
  }
}

/** The routes of backend-api/src/server.c's table: [{method, path}]. */
export function serverRoutes(root) {
  const src = fs.readFileSync(path.join(root, 'backend-api/src/server.c'), 'utf8');
  const m = src.match(/static const route routes\[\] = \{([\s\S]*?)\n\};/);
  if (!m) throw new Error('the route table of server.c was not found');
  const out = [...m[1].matchAll(/\{\s*"([A-Z]+)",\s*"([^"]+)"/g)].map((r) => ({ method: r[1], path: r[2] }));
  if (out.length < 5) throw new Error(`only ${out.length} routes parsed from server.c`);
  return out;
}

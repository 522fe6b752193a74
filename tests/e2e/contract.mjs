// The API contract check (issue 16): every response a test receives from a confab server is
// validated against the OpenAPI document that server publishes (`/api/openapi.json`): its
// status must be documented for the operation, and its JSON body must match that response's
// schema. A test file turns it on with `checkContract()` (harness.mjs); from then on every
// `fetch` to a started server is checked, whether made by `srv.http` or by a client library
// (@elizaos/api-client), and a mismatch fails the request that received it.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const documents = new Map(); // base url → Promise<Contract>
const originalFetch = globalThis.fetch;
let installed = false;
/** What was checked, for tests that want to prove the hook ran. */
export const checked = { responses: 0, operations: new Set() };

class Contract {
  constructor(doc) {
    this.doc = doc;
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats(this.ajv);
    // Local references point into the document, registered once under its own id.
    this.ajv.addSchema({ $id: 'confab-openapi', components: doc.components ?? {} });
    this.validators = new Map();
    // Templates with fewer parameters first, so `/messages/search` wins over `/messages/{id}`.
    this.routes = Object.keys(doc.paths)
      .map((template) => {
        const params = (template.match(/\{[^}]+\}/g) || []).length;
        const escape = (part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
        const pattern = new RegExp(`^${template.split(/\{[^}]+\}/).map(escape).join('[^/]+')}$`);
        return { template, params, pattern };
      })
      .sort((a, b) => a.params - b.params);
  }

  operation(method, pathname) {
    for (const r of this.routes) {
      if (r.pattern.test(pathname)) {
        const op = this.doc.paths[r.template][method.toLowerCase()];
        return op ? { template: r.template, op } : undefined;
      }
    }
    return undefined;
  }

  validator(key, schema) {
    if (!this.validators.has(key)) {
      const rebased = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"confab-openapi#/components/'));
      this.validators.set(key, this.ajv.compile(rebased));
    }
    return this.validators.get(key);
  }

  /** Throws when `res` (status, content type, body text) breaks the document. */
  check(method, pathname, status, contentType, text) {
    const found = this.operation(method, pathname);
    // Unknown paths and methods are the API-wide 404 fallback, outside any operation.
    if (!found) return;
    const { template, op } = found;
    const where = `${method.toUpperCase()} ${pathname} (${template}) → ${status}`;
    const response = op.responses[String(status)] ?? op.responses.default;
    if (!response) {
      throw new Error(`contract: ${where}: status not documented (documented: ${Object.keys(op.responses).join(', ')})\n${text.slice(0, 500)}`);
    }
    checked.responses++;
    checked.operations.add(`${method.toUpperCase()} ${template}`);
    const media = (contentType || '').split(';')[0].trim();
    if (media !== 'application/json') return;
    const schema = response.content?.['application/json']?.schema;
    if (!schema) {
      if (text.length) throw new Error(`contract: ${where}: a JSON body where the document has none\n${text.slice(0, 500)}`);
      return;
    }
    let body;
    try { body = JSON.parse(text); } catch { throw new Error(`contract: ${where}: body is not JSON\n${text.slice(0, 500)}`); }
    const validate = this.validator(`${template} ${method} ${status}`, schema);
    if (!validate(body)) {
      throw new Error(`contract: ${where}: body does not match its schema: ${this.ajv.errorsText(validate.errors)}\n${text.slice(0, 800)}`);
    }
  }
}

/** The contract a server publishes (fetched once per server). */
export function contractOf(base) {
  if (!documents.has(base)) {
    documents.set(base, originalFetch(`${base}/api/openapi.json`).then(async (res) => {
      if (res.status !== 200) throw new Error(`contract: /api/openapi.json answered ${res.status}`);
      return new Contract(await res.json());
    }));
  }
  return documents.get(base);
}

const servers = new Set();

/** Checks every response from servers registered with `watch` from now on. */
export function install() {
  if (installed) return;
  installed = true;
  globalThis.fetch = async function checkedFetch(input, init = {}) {
    const res = await originalFetch(input, init);
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const base = url.origin;
    if (!servers.has(base)) return res;
    const method = (init.method || (typeof input === 'object' && input.method) || 'GET').toUpperCase();
    const type = res.headers.get('content-type') || '';
    // Streams (Server-Sent Events) are checked by status only: their body never ends here.
    const text = type.startsWith('application/json') ? await res.clone().text() : '';
    (await contractOf(base)).check(method, url.pathname, res.status, type, text);
    return res;
  };
}

/** Registers a started server's base url (`http://127.0.0.1:port`) for checking. */
export function watch(base) {
  servers.add(new URL(base).origin);
}

export function unwatch(base) {
  const origin = new URL(base).origin;
  servers.delete(origin);
  documents.delete(origin);
}

// The published API contract (issue 16): /api/openapi.json describes every route the server
// serves, each documented operation is routed, the reference page renders it in a real browser
// with nothing fetched from elsewhere, the Socket.IO events are described beside it, and the
// response check the REST suites run (contract.mjs) does catch a response that breaks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer, uuid, checkContract } from './harness.mjs';
import { checked, contractOf } from './contract.mjs';

checkContract();

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Every documented operation, with its path parameters filled in. */
function operations(doc) {
  const ops = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (item[method]) ops.push({ method, template, path: template.replace(/\{[^}]+\}/g, () => uuid()), op: item[method] });
    }
  }
  return ops;
}

test('the document is OpenAPI 3.1, public, and every operation in it is served', async () => {
  const srv = await startServer();
  try {
    const res = await srv.http('GET', '/api/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /application\/json/);
    const doc = res.json;
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.components.securitySchemes.api_key && doc.components.securitySchemes.bearer);
    const ops = operations(doc);
    assert.ok(ops.length >= 75, `${ops.length} operations`);
    const ids = ops.map((o) => o.op.operationId);
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
    // The three envelope styles and the error shapes are in the document.
    for (const name of ['ApiFailure', 'AuthRequired']) assert.ok(doc.components.schemas[name], name);
    for (const { method, path, template, op } of ops) {
      // Each request is one the server answers from the operation, never the API-wide
      // "endpoint not found" fallback (an undocumented method or path would get it). The
      // response check (checkContract) validates each answer against the operation.
      const body = ['post', 'patch', 'put'].includes(method) ? {} : undefined;
      const got = await srv.http(method.toUpperCase(), path, body);
      const fallback = got.json?.error?.message === 'API endpoint not found';
      assert.ok(!fallback, `${method.toUpperCase()} ${template} is documented but not served`);
      assert.ok(got.status < 500, `${method.toUpperCase()} ${template}: ${got.status} ${got.text}`);
      assert.ok(op.responses[String(got.status)], `${method.toUpperCase()} ${template}: ${got.status} undocumented`);
    }
    assert.ok(checked.operations.size >= ops.length - 1, `checked ${checked.operations.size} operations`);
  } finally {
    await srv.stop();
  }
});

test('with authentication on, the reference stays public and every /api operation refuses without credentials', async () => {
  const srv = await startServer({ env: { ELIZA_SERVER_AUTH_TOKEN: 'contract-secret' } });
  try {
    const doc = (await srv.http('GET', '/api/openapi.json')).json;
    assert.equal(doc.openapi, '3.1.0');
    assert.equal((await srv.http('GET', '/api/docs')).status, 200);
    for (const { method, path, template, op } of operations(doc)) {
      if (!template.startsWith('/api/')) continue;
      if (op.tags.includes('reference')) {
        assert.equal((await srv.http('GET', template)).status, 200, `${template} is public`);
        continue;
      }
      assert.deepEqual(op.security, [{ api_key: [] }, { bearer: [] }], template);
      const body = ['post', 'patch', 'put'].includes(method) ? {} : undefined;
      const got = await srv.http(method.toUpperCase(), path, body);
      assert.equal(got.status, 401, `${method.toUpperCase()} ${template} without credentials: ${got.status}`);
      const ok = await srv.http(method.toUpperCase(), path, body, { 'x-api-key': 'contract-secret' });
      assert.notEqual(ok.status, 401, `${method.toUpperCase()} ${template} with the key`);
    }
  } finally {
    await srv.stop();
  }
});

test('the response check rejects a body or a status the document does not allow', async () => {
  const srv = await startServer();
  try {
    const contract = await contractOf(new URL(srv.url).origin);
    const channel = `/api/messaging/channels/${uuid()}/details`;
    // A real answer passes.
    contract.check('GET', channel, 404, 'application/json', JSON.stringify({ success: false, error: 'Channel not found' }));
    assert.throws(() => contract.check('GET', channel, 200, 'application/json', JSON.stringify({ success: true, data: { id: 5 } })),
      /does not match its schema/);
    assert.throws(() => contract.check('GET', channel, 418, 'application/json', '{}'), /status not documented/);
    assert.throws(() => contract.check('GET', '/api/server/ping', 200, 'application/json', JSON.stringify({ pong: 'yes' })),
      /does not match its schema/);
  } finally {
    await srv.stop();
  }
});

test('the Socket.IO events are described from the protocol types (AsyncAPI)', async () => {
  const srv = await startServer();
  try {
    const res = await srv.http('GET', '/api/asyncapi.json');
    assert.equal(res.status, 200);
    const doc = res.json;
    assert.equal(doc.asyncapi, '3.0.0');
    const messages = doc.components.messages;
    for (const name of ['message', 'join_channel', 'send_message', 'leave_channel', 'typing']) {
      assert.ok(messages[`client.${name}`], `client ${name}`);
    }
    for (const name of ['messageBroadcast', 'messageAck', 'messageError', 'channel_joined', 'userJoined', 'messageStreamChunk', 'controlMessage']) {
      assert.ok(messages[`server.${name}`], `server ${name}`);
    }
    const broadcast = doc.components.schemas.MessageBroadcast;
    for (const field of ['id', 'senderId', 'text', 'channelId', 'createdAt']) assert.ok(broadcast.properties[field], field);
  } finally {
    await srv.stop();
  }
});

test('/api/docs renders every route in a browser, fetching nothing from elsewhere', async () => {
  const srv = await startServer();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const elsewhere = [];
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.origin !== new URL(srv.url).origin && !url.protocol.startsWith('data') && !url.protocol.startsWith('blob')) elsewhere.push(req.url());
    });
    await page.route((url) => new URL(url).origin !== new URL(srv.url).origin, (route) => route.abort());
    await page.goto(`${srv.url}/api/docs`);
    await page.getByText('confab REST API').first().waitFor({ timeout: 30000 });
    // Open every tag's group in the sidebar: each operation is listed by its summary.
    const doc = (await srv.http('GET', '/api/openapi.json')).json;
    for (const { name } of doc.tags) {
      const group = page.getByRole('button', { name: `Open Group - ${name}` });
      if (await group.count()) await group.first().click();
    }
    const summaries = operations(doc).map(({ op }) => op.summary);
    assert.ok(summaries.every(Boolean), 'every operation has a summary');
    await page.waitForFunction((all) => all.every((s) => document.body.innerText.includes(s)), summaries, { timeout: 30000 })
      .catch(() => {});
    const text = await page.evaluate(() => document.body.innerText);
    const missing = summaries.filter((s) => !text.includes(s));
    assert.deepEqual(missing, [], 'operations the page does not show');
    assert.deepEqual(elsewhere, [], 'requests to other origins');
  } finally {
    await browser.close();
    await srv.stop();
  }
});

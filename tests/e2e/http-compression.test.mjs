// HTTP compression: JSON answers and the page's files come compressed as the client accepts
// (gzip, br, zstd), the page's files precompressed at build time; Server-Sent Events are never
// compressed and leave event by event; Socket.IO is untouched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { startServer, uuid, DEFAULT_SERVER } from './harness.mjs';
import { parseSse } from './agent-util.mjs';

/** A raw GET/POST (fetch would decode the body itself): status, headers and the bytes. */
function raw(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('no answer within 10 s')));
    req.end(body);
  });
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** A chat-completions endpoint that streams one token, then waits until released. */
function heldModel() {
  const state = {};
  let release;
  state.released = new Promise((r) => { release = r; });
  state.release = () => release();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'first' } }] })}\n\n`);
      await state.released;
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: ' second' } }] })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    state.url = `http://127.0.0.1:${server.address().port}/v1`;
    state.close = () => { release(); server.closeAllConnections(); server.close(); };
    resolve(state);
  }));
}

let srv;
let model;
before(async () => {
  model = await heldModel();
  srv = await startServer({
    env: { OPENAI_BASE_URL: model.url, OPENAI_API_KEY: 'sk-test', OPENAI_MODEL: 'm', CONFAB_MODEL_RETRIES: '0' },
  });
  // Enough channels that the list is worth compressing.
  for (let i = 0; i < 20; i++) {
    const r = await srv.http('POST', '/api/messaging/central-channels', {
      name: `compression-${i}`, message_server_id: DEFAULT_SERVER, participantCentralUserIds: [uuid()], type: 'GROUP',
    });
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => { await srv.stop(); model.close(); });

const LIST = `/api/messaging/central-servers/${DEFAULT_SERVER}/channels`;

test('JSON answers are compressed with each coding the client accepts', async () => {
  const plain = await raw(srv.url + LIST);
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['content-encoding'], undefined, 'no Accept-Encoding: identity');
  const expected = JSON.parse(plain.body);
  assert.ok(expected.data.channels.length >= 20);

  const gz = await raw(srv.url + LIST, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.deepEqual(JSON.parse(zlib.gunzipSync(gz.body)), expected);
  assert.ok(gz.body.length < plain.body.length);

  const br = await raw(srv.url + LIST, { headers: { 'accept-encoding': 'br' } });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.deepEqual(JSON.parse(zlib.brotliDecompressSync(br.body)), expected);

  const zst = await raw(srv.url + LIST, { headers: { 'accept-encoding': 'zstd' } });
  assert.equal(zst.headers['content-encoding'], 'zstd');
  assert.deepEqual(zst.body.subarray(0, 4), ZSTD_MAGIC, 'a zstd frame');

  const refused = await raw(srv.url + LIST, { headers: { 'accept-encoding': 'gzip;q=0, identity' } });
  assert.equal(refused.headers['content-encoding'], undefined);
  assert.deepEqual(JSON.parse(refused.body), expected);
});

test('the page comes precompressed, one validator per encoding', async () => {
  const plain = await raw(srv.url + '/');
  assert.equal(plain.status, 200);
  assert.match(plain.headers['content-type'], /text\/html/);
  for (const [coding, decode] of [['br', zlib.brotliDecompressSync], ['gzip', zlib.gunzipSync]]) {
    const res = await raw(srv.url + '/', { headers: { 'accept-encoding': `${coding}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], coding);
    assert.match(res.headers.vary, /accept-encoding/i);
    assert.deepEqual(decode(res.body), plain.body, `${coding} decodes to the page`);
    assert.notEqual(res.headers.etag, plain.headers.etag);
    const again = await raw(srv.url + '/', { headers: { 'accept-encoding': coding, 'if-none-match': res.headers.etag } });
    assert.equal(again.status, 304);
  }
  // The script the page loads, too.
  const script = plain.body.toString().match(/src="(\/assets\/[^"]+\.js)"/);
  assert.ok(script, 'the page loads a hashed script');
  const js = await raw(srv.url + script[1], { headers: { 'accept-encoding': 'gzip, deflate, br, zstd' } });
  assert.equal(js.headers['content-encoding'], 'br');
  assert.match(zlib.brotliDecompressSync(js.body).toString(), /socket/);
});

test('Server-Sent Events are not compressed and arrive event by event', async () => {
  const user = uuid();
  const AGENT = 'b850bc30-45f8-0041-a00a-83df46d8555d';
  const dm = await srv.http('GET', `/api/messaging/dm-channel?currentUserId=${user}&targetUserId=${AGENT}`);
  assert.equal(dm.status, 200, dm.text);
  const body = JSON.stringify({ author_id: user, content: 'Hello', message_server_id: DEFAULT_SERVER, transport: 'sse' });
  const text = await new Promise((resolve, reject) => {
    const req = http.request(`${srv.url}/api/messaging/channels/${dm.json.data.id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, br, zstd' },
    }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'], /text\/event-stream/);
      assert.equal(res.headers['content-encoding'], undefined, 'SSE is sent as is');
      let seen = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        seen += d;
        // The model is still holding its second token: the first chunk reached us anyway.
        if (seen.includes('event: chunk') && seen.includes('first')) model.release();
      });
      res.on('end', () => resolve(seen));
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error('the stream did not finish within 15 s')));
    req.end(body);
  });
  const events = parseSse(text);
  assert.equal(events.at(-1).event, 'done');
  assert.equal(events.at(-1).data.text, 'first second');
});

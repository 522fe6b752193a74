// Attachments and media (issue 17 part 1): real multipart uploads with fetch/FormData, the
// /media files and their headers, path escapes, access to a private channel's files,
// attachments in broadcasts and history, files removed with their message or channel, the
// upload rate limits, and images handed to a vision model as image parts.
// With CONFAB_TEST_DATABASE_URL the same tests run with media in PostgreSQL, plus two nodes on
// one database serving each other's files.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, waitFor, until, uuid, DEFAULT_SERVER } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';
import { ELIZA } from './agent-util.mjs';

const PG = !!process.env.CONFAB_TEST_DATABASE_URL;
// A 1×1 PNG, a GIF header, a PDF header: real magic bytes.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
const DENIED_READ = "Access denied: You don't have permission to access this channel";

const srv = await startServer();
after(() => srv.stop());

async function upload(server, path, { data = PNG, type = 'image/png', name = 'photo.png', field = 'file', headers = {} } = {}) {
  const form = new FormData();
  if (data !== null) form.append(field, new Blob([data], { type }), name);
  else form.append('other', 'x');
  const res = await fetch(server.url + path, { method: 'POST', body: form, headers });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

async function get(server, path, headers = {}) {
  const res = await fetch(server.url + path, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  let json;
  try { json = JSON.parse(body.toString()); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, body, json };
}

/** Polls (bounded) until a file is gone: removal runs after the deletion's response. */
async function gone(server, url, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await get(server, url);
    if (r.status === 404) return r;
    if (Date.now() > end) assert.fail(`${url} still served (${r.status})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('channel upload: ElizaOS shape, served back byte for byte with safe headers', async () => {
  const channel = uuid();
  const r = await upload(srv, `/api/messaging/channels/${channel}/upload-media`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.success, true);
  const d = r.json.data;
  assert.match(d.url, new RegExp(`^/media/uploads/channels/${channel}/\\d+-\\d+\\.png$`));
  assert.equal(d.type, 'image/png');
  assert.equal(d.filename, d.url.split('/').at(-1));
  assert.equal(d.originalName, 'photo.png');
  assert.equal(d.size, PNG.length);

  const f = await get(srv, d.url);
  assert.equal(f.status, 200);
  assert.deepEqual(f.body, PNG);
  assert.equal(f.headers.get('content-type'), 'image/png');
  assert.equal(f.headers.get('x-content-type-options'), 'nosniff');
  assert.match(f.headers.get('content-security-policy'), /sandbox/);
  assert.match(f.headers.get('content-disposition'), /^inline/);

  // ElizaOS's twin route under /api/media answers the same shape.
  const twin = await upload(srv, `/api/media/channels/${channel}/upload-media`, { data: PDF, type: 'application/pdf', name: 'doc.pdf' });
  assert.equal(twin.status, 200, twin.text);
  assert.match(twin.json.data.url, /\.pdf$/);
  const pdf = await get(srv, twin.json.data.url);
  assert.deepEqual(pdf.body, PDF);
  // A PDF can run scripts in a viewer: it is a download, never inline.
  assert.match(pdf.headers.get('content-disposition'), /^attachment/);
});

test('agent upload: style A with the media kind as type', async () => {
  const agent = uuid();
  const r = await upload(srv, `/api/media/agents/${agent}/upload-media`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.success, true);
  assert.equal(r.json.data.type, 'image');
  assert.match(r.json.data.url, new RegExp(`^/media/uploads/agents/${agent}/\\d+-\\d+\\.png$`));
  const f = await get(srv, r.json.data.url);
  assert.deepEqual(f.body, PNG);
  const bad = await upload(srv, '/api/media/agents/not-a-uuid/upload-media');
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { success: false, error: { code: 'INVALID_ID', message: 'Invalid agent ID format' } });
  const wrong = await upload(srv, `/api/media/agents/${agent}/upload-media`, { data: Buffer.from('<svg onload=alert(1)>'), type: 'image/svg+xml', name: 'x.svg' });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error.code, 'INVALID_FILE_TYPE');
});

test('uploads refused: type list, content that lies about its type, names, missing file, size', async () => {
  const channel = uuid();
  const path = `/api/messaging/channels/${channel}/upload-media`;
  const cases = [
    [{ data: Buffer.from('<html><script>alert(1)</script>'), type: 'text/html', name: 'a.html' }, /^Invalid file type\. Only audio\/mpeg, .*text\/plain are allowed$/],
    [{ data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), type: 'image/svg+xml', name: 'a.svg' }, /^Invalid file type/],
    [{ data: Buffer.from('<html><script>alert(1)</script>'), type: 'image/png', name: 'a.png' }, /^File content does not match its type \(image\/png\)$/],
    [{ data: PDF, type: 'image/jpeg', name: 'a.jpg' }, /does not match/],
    [{ data: PNG, type: 'text/plain', name: 'a.txt' }, /does not match/],
    [{ data: Buffer.from([0x61, 0, 0x62]), type: 'text/plain', name: 'a.txt' }, /does not match/],
    [{ data: PNG, name: '../../etc/passwd' }, /^Invalid filename detected$/],
    [{ data: null }, /^No media file provided$/],
  ];
  for (const [opts, re] of cases) {
    const r = await upload(srv, path, opts);
    assert.equal(r.status, 400, `${JSON.stringify(opts.name)}: ${r.text}`);
    assert.equal(r.json.success, false);
    assert.match(r.json.error, re);
  }
  const notUuid = await upload(srv, '/api/messaging/channels/nope/upload-media');
  assert.equal(notUuid.status, 400);
  assert.deepEqual(notUuid.json, { success: false, error: 'Invalid channelId format' });
  const notMultipart = await srv.http('POST', path, { file: 'x' });
  assert.equal(notMultipart.status, 400);
  assert.deepEqual(notMultipart.json, { success: false, error: 'No media file provided' });
  // 50 MB is the limit: one byte more is 413, and nothing was stored for any refusal.
  const big = Buffer.alloc(50 * 1024 * 1024 + 1, 0x61);
  const tooBig = await upload(srv, path, { data: big, type: 'text/plain', name: 'big.txt' });
  assert.equal(tooBig.status, 413, tooBig.text);
  assert.equal(tooBig.json.success, false);
  // Text that looks like HTML is stored as text and served as text, never as a page.
  const text = await upload(srv, path, { data: Buffer.from('<script>alert(1)</script>\n'), type: 'text/plain', name: 'notes.txt' });
  assert.equal(text.status, 200, text.text);
  const served = await get(srv, text.json.data.url);
  assert.equal(served.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(served.headers.get('x-content-type-options'), 'nosniff');
});

test('serving: 400 for a non-UUID id, JSON 404 for a missing file, nothing escapes the media root', async () => {
  const channel = uuid();
  for (const [path, error] of [
    ['/media/uploads/channels/nope/a.png', 'Invalid channel ID format'],
    ['/media/uploads/agents/nope/a.png', 'Invalid agent ID format'],
    ['/media/generated/nope/a.png', 'Invalid agent ID format'],
  ]) {
    const r = await get(srv, path);
    assert.equal(r.status, 400, path);
    assert.deepEqual(r.json, { error });
  }
  const missing = await get(srv, `/media/uploads/channels/${channel}/1-1.png`);
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { error: 'File not found' });
  assert.match(missing.headers.get('content-type'), /application\/json/);
  // Encoded separators and dot segments reach the route as one name, which is refused.
  for (const name of ['..%2F..%2F..%2Fconfab.db', '..%5C..%5Cconfab.db', '.hidden', '%2Fetc%2Fpasswd', 'a%00.png']) {
    const r = await get(srv, `/media/uploads/channels/${channel}/${name}`);
    assert.equal(r.status, 404, name);
    assert.deepEqual(r.json, { error: 'File not found' }, name);
  }
  for (const path of [`/media/uploads/channels/${channel}/%2e%2e/%2e%2e/confab.db`, '/media/uploads/channels/..%2F..%2Fconfab.db/x']) {
    const r = await get(srv, path);
    assert.notEqual(r.status, 200, path);
    assert.ok(!r.body.includes(Buffer.from('SQLite format')), path);
  }
});

test('generated files that a browser could run are downloads in a sandbox', { skip: PG && 'files on disk only' }, async () => {
  const agent = uuid();
  const dir = join(srv.dir, 'media', 'generated', agent);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'page.html'), '<html><script>document.title="pwned"</script></html>');
  writeFileSync(join(dir, 'image.svg'), '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
  writeFileSync(join(dir, 'pic.png'), PNG);
  for (const name of ['page.html', 'image.svg']) {
    const r = await get(srv, `/media/generated/${agent}/${name}`);
    assert.equal(r.status, 200, name);
    assert.match(r.headers.get('content-disposition'), /^attachment/, name);
    assert.match(r.headers.get('content-security-policy'), /sandbox/, name);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  }
  const png = await get(srv, `/media/generated/${agent}/pic.png`);
  assert.match(png.headers.get('content-disposition'), /^inline/);
});

test('attachments: checked, rewritten to /media URLs, broadcast, in history, over socket and REST', async () => {
  const [a, b] = [uuid(), uuid()];
  const channelId = uuid();
  const up = await upload(srv, `/api/messaging/channels/${channelId}/upload-media`);
  const url = up.json.data.url;
  const file = url.split('/').at(-1);
  const alice = await srv.connected({ auth: { entityId: a } });
  const bob = await srv.connected({ auth: { entityId: b } });
  await joinChannel(alice, { channelId, entityId: a, messageServerId: DEFAULT_SERVER });
  await joinChannel(bob, { channelId, entityId: b, messageServerId: DEFAULT_SERVER });
  const attachments = [
    { id: 'a1', url, title: 'photo.png', source: 'upload', contentType: 'image' },
    // ElizaOS's agents hand over absolute paths: rewritten as ElizaOS does.
    { url: `/home/eliza/.eliza/data/uploads/channels/${channelId}/${file}`, title: 'by path' },
    'https://example.com/cat.jpg',
  ];
  const expected = [attachments[0], { url, title: 'by path' }, 'https://example.com/cat.jpg'];
  const got = waitFor(bob, 'messageBroadcast', (m) => m.text === 'look');
  const ack = await send(alice, { channelId, senderId: a, senderName: 'Al', message: 'look', messageServerId: DEFAULT_SERVER, attachments });
  assert.equal(ack.success ?? true, true);
  const m = await got;
  assert.deepEqual(m.attachments, expected);

  // Refused: a script URL, a path outside the media directories, a bad item; nothing stored.
  for (const bad of [['javascript:alert(1)'], ['/etc/passwd'], [{ title: 'no url' }], 5]) {
    const error = waitFor(alice, 'messageError', (e) => /Invalid attachments/.test(e.error));
    alice.emit('message', { type: 2, payload: { channelId, senderId: a, message: 'bad', messageServerId: DEFAULT_SERVER, attachments: bad } });
    await error;
  }

  // REST: metadata.attachments, checked and rewritten the same way.
  const post = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: b, content: 'by rest', message_server_id: DEFAULT_SERVER,
    metadata: { user_display_name: 'Bo', attachments: [{ url: `C:\\eliza\\data\\uploads\\channels\\${channelId}\\${file}` }] },
  });
  assert.equal(post.status, 201, post.text);
  const badPost = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: b, content: 'bad', message_server_id: DEFAULT_SERVER, metadata: { attachments: ['file:///etc/passwd'] },
  });
  assert.equal(badPost.status, 400);
  assert.match(badPost.json.error, /^Invalid attachments/);

  const hist = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`);
  const msgs = hist.json.data.messages;
  assert.deepEqual(msgs.find((x) => x.content === 'look').metadata.attachments, expected);
  assert.deepEqual(msgs.find((x) => x.content === 'by rest').metadata.attachments, [{ url }]);
  assert.ok(!msgs.some((x) => x.content === 'bad'));
});

test("a private channel's files: members only, upload and download", async () => {
  const [a, c] = [uuid(), uuid()];
  const created = await srv.http('POST', '/api/messaging/channels', { name: 'private media', message_server_id: DEFAULT_SERVER, participantCentralUserIds: [a], private: true });
  assert.equal(created.status, 201, created.text);
  const channelId = created.json.data.id;
  const path = `/api/messaging/channels/${channelId}/upload-media`;
  const outsider = await upload(srv, path, { headers: { 'x-entity-id': c } });
  assert.equal(outsider.status, 403);
  const member = await upload(srv, path, { headers: { 'x-entity-id': a } });
  assert.equal(member.status, 200, member.text);
  const url = member.json.data.url;
  assert.equal((await get(srv, url, { 'x-entity-id': a })).status, 200);
  for (const headers of [{}, { 'x-entity-id': c }]) {
    const r = await get(srv, url, headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.deepEqual(r.json, { error: DENIED_READ });
    assert.ok(!r.body.includes(PNG.subarray(0, 8)));
  }
});

test('deleting a message removes its files; deleting a channel removes the rest', async () => {
  const a = uuid();
  const channelId = uuid();
  const s = await srv.connected({ auth: { entityId: a } });
  await joinChannel(s, { channelId, entityId: a, messageServerId: DEFAULT_SERVER });
  const path = `/api/messaging/channels/${channelId}/upload-media`;
  const [one, two] = [(await upload(srv, path)).json.data.url, (await upload(srv, path)).json.data.url];
  const other = uuid();
  const elsewhere = (await upload(srv, `/api/messaging/channels/${other}/upload-media`)).json.data.url;
  // The message also names another channel's file: deleting it must not remove that one.
  const ack = await send(s, { channelId, senderId: a, message: 'with file', messageServerId: DEFAULT_SERVER, attachments: [{ url: one }, { url: elsewhere }] });
  const hist = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`);
  const id = hist.json.data.messages.find((m) => m.content === 'with file').id;
  assert.ok(ack);
  const del = await srv.http('DELETE', `/api/messaging/channels/${channelId}/messages/${id}`);
  assert.equal(del.status, 204);
  await gone(srv, one);
  assert.equal((await get(srv, two)).status, 200, 'a file no message carried stays');
  assert.equal((await get(srv, elsewhere)).status, 200, "another channel's file stays");
  const drop = await srv.http('DELETE', `/api/messaging/channels/${channelId}`);
  assert.equal(drop.status, 204);
  await gone(srv, two);
  assert.equal((await get(srv, elsewhere)).status, 200);
  if (!PG) assert.ok(!existsSync(join(srv.dir, 'media', 'uploads', 'channels', channelId)));
});

test("ElizaOS's upload limits: 50 per 15 minutes per address, then 429 with Retry-After", async () => {
  const own = await startServer();
  try {
    const path = `/api/messaging/channels/${uuid()}/upload-media`;
    for (let i = 0; i < 50; i++) {
      const r = await upload(own, path, { data: Buffer.from(`note ${i}\n`), type: 'text/plain', name: 'n.txt' });
      assert.equal(r.status, 200, `upload ${i}: ${r.text}`);
    }
    const r = await upload(own, path);
    assert.equal(r.status, 429);
    assert.deepEqual(r.json, { success: false, error: { code: 'UPLOAD_RATE_LIMIT_EXCEEDED', message: 'Too many upload attempts. Please try again later.' } });
    assert.ok(Number(r.headers.get('retry-after')) > 0);
  } finally {
    await own.stop();
  }
  const ops = await startServer({ env: { RATE_LIMIT_UPLOADS: '0', RATE_LIMIT_FILE_OPS: '2' } });
  try {
    const path = `/api/media/agents/${uuid()}/upload-media`;
    assert.equal((await upload(ops, path)).status, 200);
    assert.equal((await upload(ops, path)).status, 200);
    const r = await upload(ops, path);
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, 'FILE_RATE_LIMIT_EXCEEDED');
  } finally {
    await ops.stop();
  }
});

/** A chat-completions endpoint that records requests and answers one streamed token. */
function mockModel() {
  const state = { requests: [] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      state.requests.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'Nice picture.' } }] })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    state.url = `http://127.0.0.1:${server.address().port}/v1`;
    state.close = () => { server.closeAllConnections(); server.close(); };
    resolve(state);
  }));
}

for (const [model, vision] of [['gpt-4o-mini', true], ['text-only-model', false]]) {
  test(`an attached image and the model ${model}: ${vision ? 'image parts' : 'named in the text'}`, async () => {
    const llm = await mockModel();
    const own = await startServer({ env: { OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: 'sk-test', OPENAI_MODEL: model, CONFAB_MODEL_RETRIES: '0' } });
    try {
      const user = uuid();
      const channelId = uuid();
      const url = (await upload(own, `/api/messaging/channels/${channelId}/upload-media`)).json.data.url;
      const s = await own.connected({ auth: { entityId: user } });
      await joinChannel(s, { channelId, entityId: user, messageServerId: DEFAULT_SERVER });
      const reply = waitFor(s, 'messageBroadcast', (m) => m.senderId === ELIZA, 8000);
      await send(s, {
        channelId, senderId: user, senderName: 'Pat', message: 'What is this?', messageServerId: DEFAULT_SERVER,
        metadata: { channelType: 'DM', targetUserId: ELIZA },
        attachments: [{ url, title: 'photo.png', contentType: 'image' }, { url: 'https://example.com/cat.jpg', contentType: 'image' }],
      });
      assert.equal((await reply).text, 'Nice picture.');
      const last = llm.requests.at(-1).messages.at(-1);
      assert.equal(last.role, 'user');
      if (vision) {
        assert.ok(Array.isArray(last.content), JSON.stringify(last.content));
        assert.equal(last.content[0].type, 'text');
        assert.match(last.content[0].text, /^Pat: What is this\?/);
        assert.deepEqual(last.content.slice(1), [
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
        ]);
      } else {
        assert.equal(typeof last.content, 'string');
        assert.match(last.content, /^Pat: What is this\?\n\[attached image: photo\.png\]\n\[attached image: cat\.jpg\]$/);
      }
    } finally {
      await own.stop();
      llm.close();
    }
  });
}

test('two nodes on one PostgreSQL serve each other\'s files', { skip: !PG && 'needs CONFAB_TEST_DATABASE_URL' }, async () => {
  const schema = `e2e_media_${uuid().replace(/-/g, '').slice(0, 12)}`;
  const env = { CONFAB_PG_SCHEMA: schema };
  const one = await startServer({ env });
  const two = await startServer({ env });
  try {
    const channelId = uuid();
    const up = await upload(one, `/api/messaging/channels/${channelId}/upload-media`);
    assert.equal(up.status, 200, up.text);
    const r = await get(two, up.json.data.url);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, PNG);
    assert.equal((await two.http('DELETE', `/api/messaging/channels/${channelId}`)).status, 204);
    await gone(one, up.json.data.url);
  } finally {
    await Promise.all([one.stop(), two.stop()]);
  }
});

// Limits (issue 5): the /api rate limit per IP (ElizaOS's 429, Retry-After, RateLimit-*), socket
// messages per minute per entity, joins per minute and channels per connection, connections per
// IP and per entity, message text and metadata sizes. Over a limit: messageError {error,
// retryAfterMs} or a refused connection — and the server goes on serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, uuid } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';
import { expectRefused, refusal } from './security-util.mjs';

const RATE_LIMIT_BODY = { success: false, error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please try again later.' } };

test('HTTP: RATE_LIMIT_MAX requests per window per IP on /api, then 429 with Retry-After and RateLimit-*', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '600000' } });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await srv.http('GET', '/api/messaging/message-servers');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('ratelimit-limit'), '5');
      assert.equal(r.headers.get('ratelimit-remaining'), String(4 - i));
      assert.ok(Number(r.headers.get('ratelimit-reset')) > 0);
    }
    const over = await srv.http('GET', '/api/messaging/message-servers');
    assert.equal(over.status, 429);
    assert.deepEqual(over.json, RATE_LIMIT_BODY);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assert.equal(over.headers.get('ratelimit-remaining'), '0');
    // Any /api path counts, health does not, and sockets still work.
    assert.equal((await srv.http('POST', '/api/messaging/channels', {})).status, 429);
    assert.equal((await srv.http('GET', '/healthz')).status, 200);
    const s = await srv.connected();
    await joinChannel(s, { channelId: uuid() });
    const metrics = await srv.http('GET', '/metrics');
    assert.match(metrics.text, /confab_rate_limited_total\{scope="http"\} 2/);
  } finally {
    await srv.stop();
  }
});

test('socket messages per minute per entity: past it, messageError {error, retryAfterMs}; other entities unaffected', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_SOCKET_MESSAGES: '5' } });
  try {
    const entityId = uuid();
    const a = await srv.connected({ auth: { entityId } });
    const channelId = uuid();
    await joinChannel(a, { channelId });
    for (let i = 0; i < 5; i++) assert.equal((await send(a, { channelId, message: `m${i}` })).success, true);
    const cmid = uuid();
    const { reply, error } = await expectRefused(a, 'message', { type: 2, payload: { channelId, message: 'too many', messageId: cmid } });
    assert.equal(reply.success, false);
    assert.match(reply.error, /^Rate limit exceeded: at most 5 messages per minute/);
    assert.ok(reply.retryAfterMs > 0 && reply.retryAfterMs <= 12000, JSON.stringify(reply));
    assert.equal(error.error, reply.error);
    assert.ok(error.retryAfterMs > 0);
    assert.equal(error.clientMessageId, cmid);
    // The same entity on a second connection shares the budget.
    const a2 = await srv.connected({ auth: { entityId } });
    assert.equal((await send(a2, { channelId, message: 'second connection' })).success, false);
    // Another entity is not affected, and nothing over the limit was stored.
    const b = await srv.connected({ auth: { entityId: uuid() } });
    assert.equal((await send(b, { channelId, message: 'someone else' })).success, true);
    const page = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`);
    assert.equal(page.json.data.messages.length, 6);
  } finally {
    await srv.stop();
  }
});

test('joins per minute and channels per connection', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_SOCKET_JOINS: '3', CONFAB_MAX_CHANNELS_PER_CONNECTION: '2' } });
  try {
    const s = await srv.connected();
    const [c1, c2, c3] = [uuid(), uuid(), uuid()];
    await joinChannel(s, { channelId: c1 });
    await joinChannel(s, { channelId: c2 });
    const full = await expectRefused(s, 'message', { type: 1, payload: { channelId: c3 } });
    assert.match(full.error.error, /^Too many channels: a connection may be in at most 2 channels/);
    assert.equal(full.error.retryAfterMs, undefined);
    // Leaving makes room, but the join rate (3 per minute) is spent after one more.
    const left = await s.timeout(5000).emitWithAck('leave_channel', { channelId: c1 });
    assert.equal(left.success, true);
    await joinChannel(s, { channelId: c3 });
    assert.equal((await s.timeout(5000).emitWithAck('leave_channel', { channelId: c2 })).success, true);
    const fast = await expectRefused(s, 'message', { type: 1, payload: { channelId: c1 } });
    assert.match(fast.error.error, /^Rate limit exceeded: at most 3 joins per minute/);
    assert.ok(fast.error.retryAfterMs > 0);
    // Another connection has its own budget.
    const t = await srv.connected();
    await joinChannel(t, { channelId: c1 });
  } finally {
    await srv.stop();
  }
});

test('connections per IP and per entity: the handshake is refused with a clear message', async () => {
  const srv = await startServer({ env: { CONFAB_MAX_CONNECTIONS_PER_IP: '4', CONFAB_MAX_CONNECTIONS_PER_ENTITY: '2' } });
  try {
    const entityId = uuid();
    const e1 = await srv.connected({ auth: { entityId } });
    await srv.connected({ auth: { entityId } });
    assert.equal((await refusal(srv.connect({ auth: { entityId } }))).message, 'Too many connections for this entity');
    await srv.connected();
    const fourth = await srv.connected();
    assert.equal((await refusal(srv.connect())).message, 'Too many connections from this address');
    // Closing one gives its slot back.
    const gone = waitFor(fourth, 'disconnect');
    fourth.disconnect();
    await gone;
    let again;
    for (let i = 0; i < 50 && !again; i++) {
      const s = srv.connect();
      again = await new Promise((resolve) => {
        s.once('connect', () => resolve(s));
        s.once('connect_error', () => resolve(null));
      });
    }
    assert.ok(again, 'a slot came free');
    e1.disconnect();
  } finally {
    await srv.stop();
  }
});

test('sizes: message text and metadata over their limits are refused; nothing is stored', async () => {
  const srv = await startServer({ env: { CONFAB_MAX_MESSAGE_LENGTH: '10', CONFAB_MAX_METADATA_BYTES: '100' } });
  try {
    const s = await srv.connected();
    const channelId = uuid();
    await joinChannel(s, { channelId });
    assert.equal((await send(s, { channelId, message: 'ten chars!' })).success, true);
    assert.equal((await send(s, { channelId, message: 'ééééééééé€' })).success, true, 'characters, not bytes');
    const long = await expectRefused(s, 'message', { type: 2, payload: { channelId, message: 'eleven chars' } });
    assert.equal(long.error.error, 'Message too long: at most 10 characters');
    const meta = await expectRefused(s, 'message', { type: 2, payload: { channelId, message: 'hi', metadata: { blob: 'x'.repeat(200) } } });
    assert.equal(meta.error.error, 'Metadata too large: at most 100 bytes');
    const att = await expectRefused(s, 'message', { type: 2, payload: { channelId, message: 'hi', attachments: [{ url: `https://example.com/${'x'.repeat(200)}` }] } });
    assert.equal(att.error.error, 'Metadata too large: at most 100 bytes');
    const page = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`);
    assert.equal(page.json.data.messages.length, 2);
  } finally {
    await srv.stop();
  }
});

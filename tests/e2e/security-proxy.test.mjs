// Behind a proxy (issue 13): X-Forwarded-For / Forwarded are believed only from a trusted peer
// (TRUST_PROXY, --trusted-proxies); the /api rate limit and the per-IP connection limit key on
// the client address they give. Typing indicators are rate-limited. Every refusal is counted
// in /metrics by kind, "too many events waiting" included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, until, uuid } from './harness.mjs';
import { joinChannel } from './socket-util.mjs';
import { expectRefused, refusal } from './security-util.mjs';

const get = (srv, headers) => srv.http('GET', '/api/messaging/message-servers', undefined, headers);
const metric = (text, re) => Number((text.match(re) || [])[1] ?? 0);

for (const [label, opts] of [
  ['--trusted-proxies 127.0.0.1', { args: ['--trusted-proxies', '127.0.0.1/32,::1'] }],
  ['TRUST_PROXY=true', { env: { TRUST_PROXY: 'true' } }],
]) {
  test(`${label}: the /api rate limit counts each forwarded client apart`, async () => {
    const srv = await startServer({ ...opts, env: { ...opts.env, RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' } });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await get(srv, { 'x-forwarded-for': '203.0.113.7' })).status, 200);
      assert.equal((await get(srv, { 'x-forwarded-for': '203.0.113.7' })).status, 429);
      // Another client behind the same proxy has its own quota; so does the RFC 7239 form.
      assert.equal((await get(srv, { 'x-forwarded-for': '198.51.100.9' })).status, 200);
      assert.equal((await get(srv, { forwarded: 'for="[2001:db8::5]:4711";proto=https' })).status, 200);
      // A client cannot escape by prepending an address of its choice: the rightmost
      // untrusted hop is the client.
      assert.equal((await get(srv, { 'x-forwarded-for': '1.1.1.1, 203.0.113.7' })).status, 429);
    } finally {
      await srv.stop();
    }
  });
}

test('without trusted proxies, X-Forwarded-For is ignored: every request counts against the peer', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' } });
  try {
    assert.equal((await get(srv, { 'x-forwarded-for': '203.0.113.1' })).status, 200);
    assert.equal((await get(srv, { 'x-forwarded-for': '203.0.113.2' })).status, 200);
    assert.equal((await get(srv, { 'x-forwarded-for': '203.0.113.3' })).status, 429);
  } finally {
    await srv.stop();
  }
});

test('a trusted proxy: the per-IP connection limit applies to the forwarded client address', async () => {
  const srv = await startServer({ args: ['--trusted-proxies', '127.0.0.0/8'], env: { CONFAB_MAX_CONNECTIONS_PER_IP: '1' } });
  try {
    const from = (ip) => srv.connect({ extraHeaders: { 'x-forwarded-for': ip } });
    const first = from('203.0.113.20');
    await waitFor(first, 'connect');
    const err = await refusal(from('203.0.113.20'));
    assert.equal(err.message, 'Too many connections from this address');
    const other = from('203.0.113.21');
    await waitFor(other, 'connect');
    const m = await srv.http('GET', '/metrics');
    assert.ok(metric(m.text, /^confab_refusals_total\{kind="connection_limit"\} (\d+)/m) >= 1, m.text);
  } finally {
    await srv.stop();
  }
});

test('an untrusted --trusted-proxies value is refused at startup', async () => {
  await assert.rejects(startServer({ args: ['--trusted-proxies', 'not-a-cidr'] }), /not an address or a CIDR/);
});

test('typing indicators are rate-limited per entity: past RATE_LIMIT_SOCKET_TYPING, messageError with retryAfterMs', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_SOCKET_TYPING: '3' } });
  try {
    const s = await srv.connected({ auth: { entityId: uuid() } });
    const channelId = uuid();
    await joinChannel(s, { channelId });
    for (let i = 0; i < 3; i++) {
      const r = await s.timeout(5000).emitWithAck('typing', { channelId, isTyping: true });
      assert.equal(r.success, true);
    }
    const { reply, error } = await expectRefused(s, 'typing', { channelId, isTyping: true });
    assert.equal(reply.success, false);
    assert.match(error.error, /at most 3 typing indicators per minute/);
    assert.ok(error.retryAfterMs > 0 && reply.retryAfterMs > 0);
    const m = await srv.http('GET', '/metrics');
    assert.equal(metric(m.text, /^confab_rate_limited_total\{scope="socket_typing"\} (\d+)/m), 1);
    assert.ok(metric(m.text, /^confab_refusals_total\{kind="rate_limit"\} (\d+)/m) >= 1);
  } finally {
    await srv.stop();
  }
});

test('"too many events waiting" is refused, told, and counted as queue_full', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_SOCKET_MESSAGES: '0' } });
  try {
    const s = await srv.connected({ auth: { entityId: uuid() } });
    const channelId = uuid();
    await joinChannel(s, { channelId });
    const told = waitFor(s, 'messageError', (e) => /Too many events waiting/.test(e.error), 30000);
    // One burst, well past the per-connection queue (256), each message to a channel that does
    // not exist yet: the worker creates (and durably stores) a channel per message, so it drains
    // far slower than the burst arrives. (Small enough that the replies stay under the
    // outgoing buffer.)
    let answered = 0;
    s.on('messageAck', () => { answered += 1; });
    s.on('messageError', () => { answered += 1; });
    for (let i = 0; i < 500; i++) s.emit('message', { type: 2, payload: { channelId: uuid(), message: `flood ${i}` } });
    await told;
    // Every flooded message is answered: stored (messageAck) or refused (messageError).
    await until(s, () => answered >= 500, 60000);
    const m = await srv.http('GET', '/metrics');
    assert.ok(metric(m.text, /^confab_refusals_total\{kind="queue_full"\} (\d+)/m) >= 1, m.text);
    // The connection keeps working.
    const ok = await s.timeout(30000).emitWithAck('message', { type: 2, payload: { channelId, message: 'after the flood' } });
    assert.equal(ok.success, true);
  } finally {
    await srv.stop();
  }
});

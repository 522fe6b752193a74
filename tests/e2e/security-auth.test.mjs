// Authentication (issue 5): API keys on /api and on the socket handshake (auth.apiKey, x-api-key
// header, ?apiKey=), JSON Web Tokens (HS256 secret; RS256, ES256, EdDSA public keys; JWKS),
// `sub` as the entity, `exp` enforced at the handshake and afterwards, the `channels` claim, no
// impersonation, and operator-only log streaming.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, uuid, DEFAULT_SERVER } from './harness.mjs';
import { joinChannel, send, disconnected } from './socket-util.mjs';
import { signJwt, keyPair, refusal, expectRefused, nowSecs } from './security-util.mjs';

const KEY = 'test-key-8f2a';
const SECRET = 'jwt-secret-for-tests';
const API_KEY_BODY = { error: 'API key required', message: 'Missing or invalid X-API-KEY header' };
const INVALID_KEY = 'Invalid or missing API Key';
const IMPERSONATION = 'senderId does not match the authenticated entity';

const keyed = await startServer({ env: { ELIZA_SERVER_AUTH_TOKEN: KEY } });
const socketKeyed = await startServer({ env: { SERVER_API_KEY: KEY } });
const jwt = await startServer({ env: { JWT_SECRET: SECRET, JWT_LEEWAY_SECS: '0' } });
after(() => Promise.all([keyed.stop(), socketKeyed.stop(), jwt.stop()]));

const token = (claims, opts = {}) => signJwt({ exp: nowSecs() + 600, ...claims }, { secret: SECRET, ...opts });

for (const [name, srv] of [['ELIZA_SERVER_AUTH_TOKEN', keyed], ['SERVER_API_KEY', socketKeyed]]) {
  test(`${name}: /api needs X-API-KEY (401 with ElizaOS's body otherwise); health stays open`, async () => {
    for (const headers of [{}, { 'x-api-key': 'wrong' }, { 'x-api-key': `${KEY}x` }, { authorization: 'Bearer nope' }]) {
      const r = await srv.http('GET', '/api/messaging/message-servers', undefined, headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.deepEqual(r.json, API_KEY_BODY);
    }
    const ok = await srv.http('GET', '/api/messaging/message-servers', undefined, { 'x-api-key': KEY });
    assert.equal(ok.status, 200);
    const bearer = await srv.http('GET', '/api/messaging/message-servers', undefined, { authorization: `Bearer ${KEY}` });
    assert.equal(bearer.status, 200);
    // Unknown /api paths are behind the key too; health is not.
    assert.equal((await srv.http('GET', '/api/nothing-here')).status, 401);
    assert.equal((await srv.http('GET', '/healthz')).status, 200);
    // Preflight requests are never refused.
    assert.notEqual((await srv.http('OPTIONS', '/api/messaging/message-servers', undefined, { origin: 'http://x', 'access-control-request-method': 'GET' })).status, 401);
  });

  test(`${name}: a socket without the key is refused with "${INVALID_KEY}"; every way of giving it works`, async () => {
    for (const [label, opts] of [
      ['no auth', {}],
      ['wrong auth.apiKey', { auth: { apiKey: 'wrong' } }],
      ['wrong header', { extraHeaders: { 'x-api-key': 'wrong' } }],
      ['wrong query', { query: { apiKey: 'wrong' } }],
      ['polling, no key', { transports: ['polling'] }],
    ]) {
      const s = srv.connect(opts);
      const err = await refusal(s);
      assert.equal(err.message, INVALID_KEY, label);
      assert.equal(s.connected, false, label);
    }
    for (const [label, opts] of [
      ['auth.apiKey', { auth: { apiKey: KEY, entityId: uuid() } }],
      ['x-api-key header', { extraHeaders: { 'x-api-key': KEY } }],
      ['?apiKey= (browsers)', { query: { apiKey: KEY } }],
      ['?apiKey= over polling', { query: { apiKey: KEY }, transports: ['polling'] }],
    ]) {
      const s = srv.connect(opts);
      await waitFor(s, 'authenticated');
      const channelId = uuid();
      await joinChannel(s, { channelId });
      const r = await send(s, { channelId, message: `hello via ${label}` });
      assert.equal(r.success, true, label);
      s.close();
    }
  });
}

test('API key: a refused socket reaches nothing (no event handled, no message stored)', async () => {
  const channelId = uuid();
  const s = keyed.connect({ auth: { entityId: uuid() } });
  const events = [];
  s.onAny((e) => events.push(e));
  await refusal(s);
  s.emit('message', { type: 2, payload: { channelId, message: 'sneaky', senderId: uuid() } });
  // The channel never came to exist.
  const r = await keyed.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined, { 'x-api-key': KEY });
  assert.ok(r.status === 200 ? r.json.data.messages.length === 0 : true);
  assert.deepEqual(events, []);
});

test('no impersonation: with auth on, senderId must be the authenticated entity', async () => {
  const me = uuid();
  const s = await keyed.connected({ auth: { apiKey: KEY, entityId: me } });
  const channelId = uuid();
  await joinChannel(s, { channelId });
  const cmid = uuid();
  const { reply, error } = await expectRefused(s, 'message',
    { type: 2, payload: { channelId, senderId: uuid(), message: 'as someone else', messageId: cmid } });
  assert.equal(reply.success, false);
  assert.equal(reply.error, IMPERSONATION);
  assert.equal(error.error, IMPERSONATION);
  assert.equal(error.clientMessageId, cmid);
  const mine = await send(s, { channelId, senderId: me, message: 'as myself' });
  assert.equal(mine.success, true);
  const noSender = await send(s, { channelId, message: 'no senderId' });
  assert.equal(noSender.success, true);
  const page = await keyed.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined, { 'x-api-key': KEY });
  const texts = page.json.data.messages.map((m) => m.content);
  assert.ok(!texts.includes('as someone else'), 'the impersonating message was not stored');
  assert.ok(texts.includes('as myself'));
});

test('JWT (HS256): sub is the entity, whatever entityId the client claims; bad tokens are refused', async () => {
  const sub = uuid();
  const s = jwt.connect({ auth: { token: token({ sub }), entityId: uuid() } });
  const auth = await waitFor(s, 'authenticated');
  assert.equal(auth.entityId, sub);
  const channelId = uuid();
  await joinChannel(s, { channelId });
  const own = waitFor(s, 'messageBroadcast', (m) => m.text === 'jwt hello');
  await send(s, { channelId, message: 'jwt hello' });
  assert.equal((await own).senderId, sub);
  // A non-UUID sub maps like ElizaOS's stringToUuid, as entityIds do.
  const named = jwt.connect({ auth: { token: token({ sub: 'user-123' }) } });
  assert.equal((await waitFor(named, 'authenticated')).entityId, 'd5ecfb11-836d-0806-918f-2fd4c815d970');

  const cases = [
    ['no token', {}, 'Authentication required'],
    ['garbage', { auth: { token: 'not-a-jwt' } }, 'Invalid token'],
    ['wrong secret', { auth: { token: token({ sub }, { secret: 'other' }) } }, 'Invalid token: bad signature'],
    ['expired', { auth: { token: token({ sub, exp: nowSecs() - 60 }) } }, 'Token expired'],
    ['no exp', { auth: { token: signJwt({ sub }, { secret: SECRET }) } }, 'Invalid token: missing exp or sub claim'],
    ['no sub', { auth: { token: token({}) } }, 'Invalid token: missing exp or sub claim'],
    ['alg none', { auth: { token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub, exp: nowSecs() + 60 })).toString('base64url')}.` } }, 'Invalid token'],
  ];
  for (const [label, opts, text] of cases) {
    const err = await refusal(jwt.connect(opts));
    assert.ok(err.message.startsWith(text), `${label}: ${err.message}`);
  }
});

test('JWT: ?token= and Authorization: Bearer work on the socket; Bearer works on REST', async () => {
  const sub = uuid();
  const q = jwt.connect({ query: { token: token({ sub }) } });
  assert.equal((await waitFor(q, 'authenticated')).entityId, sub);
  const h = jwt.connect({ extraHeaders: { authorization: `Bearer ${token({ sub })}` } });
  assert.equal((await waitFor(h, 'authenticated')).entityId, sub);
  const r = await jwt.http('GET', '/api/messaging/message-servers', undefined, { authorization: `Bearer ${token({ sub })}` });
  assert.equal(r.status, 200);
  const none = await jwt.http('GET', '/api/messaging/message-servers');
  assert.equal(none.status, 401);
  assert.equal(none.json.error, 'Authentication required');
  const expired = await jwt.http('GET', '/api/messaging/message-servers', undefined, { authorization: `Bearer ${token({ sub, exp: nowSecs() - 5 })}` });
  assert.equal(expired.status, 401);
  assert.equal(expired.json.message, 'Token expired');
});

test('JWT: the socket is disconnected with a reason when its token expires', async () => {
  const s = jwt.connect({ auth: { token: token({ sub: uuid(), exp: nowSecs() + 2 }) } });
  await waitFor(s, 'authenticated');
  const told = waitFor(s, 'unauthorized', () => true, 10000);
  const gone = waitFor(s, 'disconnect', () => true, 10000);
  assert.deepEqual(await told, { message: 'Token expired', reason: 'token_expired' });
  assert.equal(await gone, 'io server disconnect');
});

test('JWT: the channels claim limits what the connection may join and post to', async () => {
  const allowed = uuid();
  const s = await jwt.connected({ auth: { token: token({ sub: uuid(), channels: [allowed, 'lobby'] }) } });
  await joinChannel(s, { channelId: allowed });
  await joinChannel(s, { channelId: 'lobby' });
  const other = uuid();
  const denied = "Access denied: You don't have permission to join this channel";
  const { reply, error } = await expectRefused(s, 'message', { type: 1, payload: { channelId: other } });
  assert.equal(reply.success, false);
  assert.equal(error.error, denied);
  const post = await expectRefused(s, 'message', { type: 2, payload: { channelId: other, message: 'nope' } });
  assert.equal(post.error.error, "Access denied: You don't have permission to send to this channel");
  assert.equal((await send(s, { channelId: allowed, message: 'fine' })).success, true);
});

test('JWT: impersonation is refused over REST too (author_id must be the token subject)', async () => {
  const sub = uuid();
  const headers = { authorization: `Bearer ${token({ sub })}` };
  const channelId = uuid();
  const as = (author) => jwt.http('POST', `/api/messaging/channels/${channelId}/messages`,
    { author_id: author, content: `from ${author}`, message_server_id: DEFAULT_SERVER, metadata: { targetAgentId: uuid() } }, headers);
  const bad = await as(uuid());
  assert.equal(bad.status, 403);
  assert.equal(bad.json.error, IMPERSONATION);
  const good = await as(sub);
  assert.ok(good.status === 201 || good.status === 200, `${good.status} ${good.text}`);
});

test('log streaming and server logs are for operators when auth is on', async () => {
  const user = await jwt.connected({ auth: { token: token({ sub: uuid() }) } });
  const { reply, error } = await expectRefused(user, 'subscribe_logs', undefined);
  assert.equal(reply.success, false);
  assert.match(error.error, /Not authorised to stream logs/);
  const filter = await expectRefused(user, 'set_log_filter', { level: 'info' });
  assert.equal(filter.reply.success, false);
  const admin = await jwt.connected({ auth: { token: token({ sub: uuid(), admin: true }) } });
  const confirmed = waitFor(admin, 'log_subscription_confirmed');
  admin.emit('subscribe_logs');
  assert.equal((await confirmed).subscribed, true);
  const userLogs = await jwt.http('GET', '/api/server/logs', undefined, { authorization: `Bearer ${token({ sub: uuid() })}` });
  assert.equal(userLogs.status, 403);
  const adminLogs = await jwt.http('GET', '/api/server/logs', undefined, { authorization: `Bearer ${token({ sub: uuid(), role: 'admin' })}` });
  assert.equal(adminLogs.status, 200);
  // The API key holder is not an operator: front ends carry that key.
  const keyHolder = await keyed.connected({ auth: { apiKey: KEY } });
  const keyOnly = await expectRefused(keyHolder, 'subscribe_logs', undefined);
  assert.match(keyOnly.error.error, /Not authorised to stream logs/);
  assert.equal((await keyed.http('GET', '/api/server/logs', undefined, { 'x-api-key': KEY })).status, 403);
});

for (const [type, alg] of [['rsa', 'RS256'], ['ec', 'ES256'], ['ed25519', 'EdDSA']]) {
  test(`JWT ${alg}: a PEM public key file and a JWKS file verify tokens; another key's tokens are refused`, async () => {
    const keys = keyPair(type);
    const stranger = keyPair(type, keys.kid);
    for (const env of [{ JWT_PUBLIC_KEY_FILE: keys.pemFile }, { JWT_JWKS_FILE: keys.jwksFile }]) {
      const srv = await startServer({ env });
      try {
        const sub = uuid();
        const good = signJwt({ sub, exp: nowSecs() + 60 }, { alg, privateKey: keys.privateKey, kid: keys.kid });
        const s = srv.connect({ auth: { token: good } });
        assert.equal((await waitFor(s, 'authenticated')).entityId, sub, JSON.stringify(env));
        const r = await srv.http('GET', '/api/messaging/message-servers', undefined, { authorization: `Bearer ${good}` });
        assert.equal(r.status, 200);
        const forged = signJwt({ sub, exp: nowSecs() + 60 }, { alg, privateKey: stranger.privateKey, kid: keys.kid });
        const err = await refusal(srv.connect({ auth: { token: forged } }));
        assert.match(err.message, /^Invalid token/);
        // An HS256 token "signed" with the public key is not accepted (algorithm confusion).
        const confused = signJwt({ sub, exp: nowSecs() + 60 }, { secret: keys.publicKey.export({ type: 'spki', format: 'pem' }) });
        assert.match((await refusal(srv.connect({ auth: { token: confused } }))).message, /^Invalid token/);
      } finally {
        await srv.stop();
      }
    }
  });
}

test('a socket whose token expires while it is in a channel stops receiving it', async () => {
  const channelId = uuid();
  const member = await jwt.connected({ auth: { token: token({ sub: uuid() }) } });
  await joinChannel(member, { channelId });
  const shortLived = jwt.connect({ auth: { token: token({ sub: uuid(), exp: nowSecs() + 2 }) } });
  await waitFor(shortLived, 'authenticated');
  await joinChannel(shortLived, { channelId });
  await disconnected(shortLived, 10000);
  const got = [];
  shortLived.on('messageBroadcast', (m) => got.push(m));
  const seen = waitFor(member, 'messageBroadcast', (m) => m.text === 'after expiry');
  await send(member, { channelId, message: 'after expiry' });
  await seen;
  assert.deepEqual(got, []);
});

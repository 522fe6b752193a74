// The access matrix of docs/security.md, cell by cell (issue 13): every REST route and socket
// event that reveals or changes a channel, a DM, a session, a job or the server, against
// anonymous, key only, member token, non-member token and operator (admin token, and the
// operator key). The deployment is the README's multi-user one: an API key every front end
// carries, JWTs that say who is who, every channel private (ENABLE_DATA_ISOLATION=true).
// Tokens are signed here: valid, forged, expired, wrong audience / issuer, not yet valid,
// alg none, HS/RS confusion. Runs on SQLite and, with CONFAB_TEST_DATABASE_URL, PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, uuid, DEFAULT_SERVER, emitAck } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';
import { ELIZA } from './agent-util.mjs';
import { signJwt, keyPair, refusal, expectRefused, nowSecs } from './security-util.mjs';

const KEY = 'front-end-key-1f3c';
const OPS = 'operator-key-9d2e';
const SECRET = 'matrix-jwt-secret';
const AUD = 'confab-tests';
const ISS = 'https://issuer.test';
const INVALID_KEY = 'Invalid or missing API Key';
const DENIED_JOIN = "Access denied: You don't have permission to join this channel";
const DENIED_SEND = "Access denied: You don't have permission to send to this channel";

const srv = await startServer({
  env: {
    ELIZA_SERVER_AUTH_TOKEN: KEY, CONFAB_ADMIN_KEY: OPS, JWT_SECRET: SECRET, JWT_AUDIENCE: AUD,
    JWT_ISSUER: ISS, JWT_LEEWAY_SECS: '0', ENABLE_DATA_ISOLATION: 'true',
    RATE_LIMIT_SOCKET_MESSAGES: '0', RATE_LIMIT_MAX: '0',
  },
});
after(() => srv.stop());

const claims = (sub, extra = {}) => ({ sub, aud: AUD, iss: ISS, exp: nowSecs() + 600, ...extra });
const token = (sub, extra = {}, opts = {}) => signJwt(claims(sub, extra), { secret: SECRET, ...opts });

// A is the member, C a verified outsider, O an operator.
const A = uuid();
const C = uuid();
const O = uuid();
const who = {
  anonymous: { headers: {}, entity: A, auth: { entityId: A } },
  // Claims to be the member, with the key only: unverified.
  keyOnly: { headers: { 'x-api-key': KEY, 'x-entity-id': A }, entity: A, auth: { apiKey: KEY, entityId: A } },
  member: { headers: { 'x-api-key': KEY, authorization: `Bearer ${token(A)}` }, entity: A, auth: { apiKey: KEY, token: token(A) } },
  nonMember: { headers: { 'x-api-key': KEY, authorization: `Bearer ${token(C)}` }, entity: C, auth: { apiKey: KEY, token: token(C) } },
  operator: { headers: { 'x-api-key': KEY, authorization: `Bearer ${token(O, { admin: true })}` }, entity: O, auth: { apiKey: KEY, token: token(O, { admin: true }) } },
  operatorKey: { headers: { 'x-api-key': OPS }, entity: O, auth: { apiKey: OPS, entityId: O } },
};
const COLUMNS = Object.keys(who);
const as = (col, method, path, body) => srv.http(method, path, body, who[col].headers);
const OP = who.operatorKey.headers;

/** A private channel whose participants are A and the ELIZA agent, with one message of A's. */
async function fixture() {
  const ch = await srv.http('POST', '/api/messaging/channels',
    { name: `private ${uuid().slice(0, 6)}`, message_server_id: DEFAULT_SERVER, participantCentralUserIds: [A, ELIZA], private: true }, OP);
  assert.equal(ch.status, 201, ch.text);
  const channelId = ch.json.data.id;
  const m = await srv.http('POST', '/api/messaging/submit',
    { channel_id: channelId, message_server_id: DEFAULT_SERVER, author_id: A, content: 'a secret', source_type: 'test', raw_message: { text: 'a secret' } }, OP);
  assert.equal(m.status, 201, m.text);
  return { channelId, messageId: m.json.data.id };
}

async function session() {
  const r = await srv.http('POST', '/api/messaging/sessions', { agentId: ELIZA, userId: A }, OP);
  assert.equal(r.status, 201, r.text);
  return r.json.sessionId;
}

async function job() {
  const r = await srv.http('POST', '/api/messaging/jobs', { agentId: ELIZA, userId: A, content: 'hello' }, OP);
  assert.equal(r.status, 201, r.text);
  return r.json.jobId;
}

const ADMIN = [401, 403, 403, 403];
const MEMBERS = (ok) => [401, 403, ok, 403];
const ADMITTED = [401, 200, 200, 200];
// [anonymous, key only, member token, non-member token], then operator and operator key.
const REST = [
  ['GET channel details', MEMBERS(200).map((s) => (s === 403 ? 404 : s)), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'GET', `/api/messaging/channels/${channelId}/details`);
  }],
  ['GET channel messages (history)', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    const r = await as(col, 'GET', `/api/messaging/channels/${channelId}/messages`);
    if (r.status === 200) assert.deepEqual(r.json.data.messages.map((m) => m.content), ['a secret']);
    return r;
  }],
  ['GET channel messages, deprecated path', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'GET', `/api/messaging/central-channels/${channelId}/messages`);
  }],
  ['POST channel message (as oneself)', MEMBERS(201), 201, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'POST', `/api/messaging/channels/${channelId}/messages`,
      { author_id: who[col].entity, content: 'posted', message_server_id: DEFAULT_SERVER });
  }],
  ['GET /messages/:id (api-client getMessage)', MEMBERS(200).map((s) => (s === 403 ? 404 : s)), 200, async (col) => {
    const { messageId } = await fixture();
    const r = await as(col, 'GET', `/api/messaging/messages/${messageId}`);
    if (r.status === 200) assert.equal(r.json.data.content, 'a secret');
    return r;
  }],
  ['PATCH /messages/:id (api-client updateMessage)', MEMBERS(200).map((s) => (s === 403 ? 404 : s)), 200, async (col) => {
    const { messageId } = await fixture();
    const r = await as(col, 'PATCH', `/api/messaging/messages/${messageId}`, { content: 'edited' });
    const stored = await srv.http('GET', `/api/messaging/messages/${messageId}`, undefined, OP);
    assert.equal(stored.json.data.content, r.status === 200 ? 'edited' : 'a secret');
    return r;
  }],
  ['POST /messages/search in the channel (api-client searchMessages)', MEMBERS(200), 200, async (col) => {
    const { channelId, messageId } = await fixture();
    const r = await as(col, 'POST', '/api/messaging/messages/search', { query: 'secret', channelId });
    if (r.status === 200) assert.deepEqual(r.json.data.messages.map((m) => m.id), [messageId]);
    return r;
  }],
  ['POST /messages/search everywhere: the private channel\'s messages only for those who may read it', [401, 200, 200, 200], 200, async (col) => {
    const { messageId } = await fixture();
    const r = await as(col, 'POST', '/api/messaging/messages/search', { query: 'secret', limit: 100 });
    if (r.status === 200) {
      const found = r.json.data.messages.some((m) => m.id === messageId);
      assert.equal(found, ['member', 'operator', 'operatorKey'].includes(col), `${col} found=${found}`);
    }
    return r;
  }],
  ['PATCH /action/:id (edit a message)', MEMBERS(200), 200, async (col) => {
    const { messageId } = await fixture();
    return as(col, 'PATCH', `/api/messaging/action/${messageId}`, { content: 'edited' });
  }],
  ['DELETE channel message', MEMBERS(204), 204, async (col) => {
    const { channelId, messageId } = await fixture();
    return as(col, 'DELETE', `/api/messaging/channels/${channelId}/messages/${messageId}`);
  }],
  ['DELETE channel messages (clear)', MEMBERS(204), 204, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'DELETE', `/api/messaging/channels/${channelId}/messages`);
  }],
  ['POST /submit into the channel', MEMBERS(201), 201, async (col) => {
    const { channelId } = await fixture();
    const e = who[col].entity;
    return as(col, 'POST', '/api/messaging/submit',
      { channel_id: channelId, message_server_id: DEFAULT_SERVER, author_id: e, content: 'agent says', source_type: 'test', raw_message: { x: 1 } });
  }],
  ['POST /action into the channel', MEMBERS(201), 201, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'POST', '/api/messaging/action',
      { channel_id: channelId, message_server_id: DEFAULT_SERVER, author_id: who[col].entity, content: 'acts', source_type: 'agent_action', raw_message: { x: 1 } });
  }],
  ['POST /ingest-external into the channel', MEMBERS(202), 202, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'POST', '/api/messaging/ingest-external',
      { channel_id: channelId, message_server_id: DEFAULT_SERVER, author_id: who[col].entity, content: 'bridged' });
  }],
  ['GET channel participants', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'GET', `/api/messaging/channels/${channelId}/participants`);
  }],
  ['GET channel agents', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'GET', `/api/messaging/channels/${channelId}/agents`);
  }],
  ['GET channel presence', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'GET', `/api/messaging/channels/${channelId}/presence`);
  }],
  ['POST channel agent', MEMBERS(201), 201, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'POST', `/api/messaging/channels/${channelId}/agents`, { agentId: uuid() });
  }],
  ['DELETE channel agent', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'DELETE', `/api/messaging/channels/${channelId}/agents/${ELIZA}`);
  }],
  ['PATCH channel', MEMBERS(200), 200, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'PATCH', `/api/messaging/channels/${channelId}`, { name: 'renamed' });
  }],
  ['DELETE channel', MEMBERS(204), 204, async (col) => {
    const { channelId } = await fixture();
    return as(col, 'DELETE', `/api/messaging/channels/${channelId}`);
  }],
  ['GET dm-channel for A', MEMBERS(200), 200, async (col) => as(col, 'GET', `/api/messaging/dm-channel?currentUserId=${A}&targetUserId=${uuid()}`)],
  ['POST session for A', MEMBERS(201), 201, async (col) => as(col, 'POST', '/api/messaging/sessions', { agentId: ELIZA, userId: A })],
  ["GET A's session", MEMBERS(200), 200, async (col) => as(col, 'GET', `/api/messaging/sessions/${await session()}`)],
  ["GET A's session messages", MEMBERS(200), 200, async (col) => as(col, 'GET', `/api/messaging/sessions/${await session()}/messages`)],
  ["POST to A's session", MEMBERS(201), 201, async (col) => as(col, 'POST', `/api/messaging/sessions/${await session()}/messages`, { content: 'hi' })],
  ["POST A's session heartbeat", MEMBERS(200), 200, async (col) => as(col, 'POST', `/api/messaging/sessions/${await session()}/heartbeat`)],
  ["POST A's session renew", MEMBERS(200), 200, async (col) => as(col, 'POST', `/api/messaging/sessions/${await session()}/renew`)],
  ["PATCH A's session timeout", MEMBERS(200), 200, async (col) => as(col, 'PATCH', `/api/messaging/sessions/${await session()}/timeout`, { timeoutMinutes: 30 })],
  ["DELETE A's session", MEMBERS(200), 200, async (col) => as(col, 'DELETE', `/api/messaging/sessions/${await session()}`)],
  ['POST job for A', MEMBERS(201), 201, async (col) => as(col, 'POST', '/api/messaging/jobs', { agentId: ELIZA, userId: A, content: 'hi' })],
  ["GET A's job", MEMBERS(200), 200, async (col) => as(col, 'GET', `/api/messaging/jobs/${await job()}`)],
  ['POST agent (create)', ADMIN, 201, async (col) => as(col, 'POST', '/api/agents', { characterJson: { name: `Agent ${uuid().slice(0, 8)}` } })],
  ['POST agent stop', ADMIN, 200, async (col) => {
    const made = await srv.http('POST', '/api/agents', { characterJson: { name: `Stop ${uuid().slice(0, 8)}` } }, OP);
    assert.equal(made.status, 201, made.text);
    return as(col, 'POST', `/api/agents/${made.json.data.id}/stop`);
  }],
  ['POST agent start', ADMIN, 200, async (col) => {
    const made = await srv.http('POST', '/api/agents', { characterJson: { name: `Start ${uuid().slice(0, 8)}` } }, OP);
    await srv.http('POST', `/api/agents/${made.json.data.id}/stop`, undefined, OP);
    return as(col, 'POST', `/api/agents/${made.json.data.id}/start`);
  }],
  ['PATCH agent', ADMIN, 200, async (col) => {
    const made = await srv.http('POST', '/api/agents', { characterJson: { name: `Patch ${uuid().slice(0, 8)}` } }, OP);
    return as(col, 'PATCH', `/api/agents/${made.json.data.id}`, { bio: ['patched'] });
  }],
  ['DELETE agent', ADMIN, 204, async (col) => {
    const made = await srv.http('POST', '/api/agents', { characterJson: { name: `Del ${uuid().slice(0, 8)}` } }, OP);
    return as(col, 'DELETE', `/api/agents/${made.json.data.id}`);
  }],
  ['POST message server', ADMIN, 201, async (col) => as(col, 'POST', '/api/messaging/message-servers', { name: 'srv', sourceType: 'test' })],
  ['POST message server agent', ADMIN, 201, async (col) => as(col, 'POST', `/api/messaging/message-servers/${DEFAULT_SERVER}/agents`, { agentId: uuid() })],
  ['DELETE message server agent', ADMIN, 200, async (col) => {
    const agent = uuid();
    await srv.http('POST', `/api/messaging/message-servers/${DEFAULT_SERVER}/agents`, { agentId: agent }, OP);
    return as(col, 'DELETE', `/api/messaging/message-servers/${DEFAULT_SERVER}/agents/${agent}`);
  }],
  ['DELETE message server', ADMIN, 204, async (col) => {
    const made = await srv.http('POST', '/api/messaging/message-servers', { name: 'doomed', sourceType: 'test' }, OP);
    return as(col, 'DELETE', `/api/messaging/message-servers/${made.json.data.server.id}`);
  }],
  ['GET /api/server/logs', ADMIN, 200, async (col) => as(col, 'GET', '/api/server/logs')],
  ['DELETE /api/server/logs', ADMIN, 200, async (col) => as(col, 'DELETE', '/api/server/logs')],
  ['GET /metrics', ADMIN, 200, async (col) => as(col, 'GET', '/metrics')],
  ['GET /api/agents (list)', ADMITTED, 200, async (col) => as(col, 'GET', '/api/agents')],
  ['GET message servers', ADMITTED, 200, async (col) => as(col, 'GET', '/api/messaging/message-servers')],
  ['GET an unknown /api path', [401, 404, 404, 404], 404, async (col) => as(col, 'GET', '/api/no-such-thing')],
];

for (const [name, users, operator, call] of REST) {
  test(`REST ${name}: ${COLUMNS.map((c, i) => `${c} ${i < 4 ? users[i] : operator}`).join(', ')}`, async () => {
    for (const [i, col] of COLUMNS.entries()) {
      const expected = i < 4 ? users[i] : operator;
      const r = await call(col);
      assert.equal(r.status, expected, `${col}: ${r.status} ${r.text}`);
    }
  });
}

test('REST lists: channels, sessions and jobs show a caller only what it may reach', async () => {
  const { channelId } = await fixture();
  const sessionId = await session();
  const jobId = await job();
  const listed = {
    channels: async (col) => (await as(col, 'GET', `/api/messaging/message-servers/${DEFAULT_SERVER}/channels`)).json.data.channels.some((c) => c.id === channelId),
    sessions: async (col) => (await as(col, 'GET', '/api/messaging/sessions')).json.sessions.some((s) => s.sessionId === sessionId),
    jobs: async (col) => (await as(col, 'GET', '/api/messaging/jobs')).json.jobs.some((j) => j.jobId === jobId),
  };
  for (const [list, seen] of Object.entries(listed)) {
    assert.equal((await as('anonymous', 'GET', '/api/messaging/sessions')).status, 401);
    const got = {};
    for (const col of COLUMNS.slice(1)) got[col] = await seen(col);
    assert.deepEqual(got, { keyOnly: false, member: true, nonMember: false, operator: true, operatorKey: true }, list);
  }
});

test('REST: a token decides the entity; X-Entity-Id never wins over it', async () => {
  const { channelId } = await fixture();
  const headers = { ...who.nonMember.headers, 'x-entity-id': A };
  assert.equal((await srv.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined, headers)).status, 403);
  const member = { ...who.member.headers, 'x-entity-id': C };
  assert.equal((await srv.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined, member)).status, 200);
  const impersonate = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`,
    { author_id: C, content: 'as C', message_server_id: DEFAULT_SERVER }, member);
  assert.equal(impersonate.status, 403);
  assert.equal(impersonate.json.error, 'senderId does not match the authenticated entity');
});

// Tokens that must never pass, not even next to the valid key.
const rsa = keyPair('rsa');
const BAD_TOKENS = [
  ['forged (another secret)', () => token(A, {}, { secret: 'not-the-secret' }), 'Invalid token: bad signature'],
  ['expired', () => token(A, { exp: nowSecs() - 3600 }), 'Token expired'],
  ['wrong audience', () => token(A, { aud: 'someone-else' }), 'Invalid token: wrong audience'],
  ['wrong issuer', () => token(A, { iss: 'https://evil.test' }), 'Invalid token: wrong issuer'],
  ['not yet valid (nbf)', () => token(A, { nbf: nowSecs() + 3600 }), 'Token not yet valid'],
  ['alg none', () => `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims(A, { admin: true }))).toString('base64url')}.`, 'Invalid token'],
  ['RS256 where HS256 is configured', () => signJwt(claims(A), { alg: 'RS256', privateKey: rsa.privateKey }), 'Invalid token: algorithm not accepted'],
  ['garbage', () => 'eyJ.garbage.here', 'Invalid token'],
];

for (const [label, make, reason] of BAD_TOKENS) {
  test(`a ${label} token is refused with a valid key: socket connect_error, REST 401`, async () => {
    const t = make();
    for (const auth of [{ apiKey: KEY, token: t, entityId: A }, { apiKey: KEY, entityId: A }]) {
      const opts = auth.token ? { auth } : { auth, query: { token: t } };
      const err = await refusal(srv.connect(opts));
      assert.ok(err.message.startsWith(reason), `${label}: ${err.message}`);
    }
    const { channelId } = await fixture();
    const r = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined,
      { 'x-api-key': KEY, authorization: `Bearer ${t}` });
    assert.equal(r.status, 401);
    assert.ok(r.json.message.startsWith(reason), r.text);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
  });
}

test('HS/RS confusion: with an RSA public key configured, an HS256 token keyed with that public key is refused', async () => {
  const rs = await startServer({ env: { ELIZA_SERVER_AUTH_TOKEN: KEY, JWT_PUBLIC_KEY_FILE: rsa.pemFile } });
  try {
    const good = signJwt({ sub: A, exp: nowSecs() + 60 }, { alg: 'RS256', privateKey: rsa.privateKey });
    const s = rs.connect({ auth: { apiKey: KEY, token: good } });
    assert.equal((await waitFor(s, 'authenticated')).entityId, A);
    const confused = signJwt({ sub: A, exp: nowSecs() + 60, admin: true }, { secret: rsa.publicKey.export({ type: 'spki', format: 'pem' }) });
    assert.equal((await refusal(rs.connect({ auth: { apiKey: KEY, token: confused } }))).message, 'Invalid token: algorithm not accepted');
    const r = await rs.http('GET', '/api/server/logs', undefined, { 'x-api-key': KEY, authorization: `Bearer ${confused}` });
    assert.equal(r.status, 401);
  } finally {
    await rs.stop();
  }
});

// Socket events × principals.
async function connectAs(col) {
  if (col === 'anonymous') {
    const err = await refusal(srv.connect({ auth: who.anonymous.auth }));
    assert.equal(err.message, INVALID_KEY);
    return null;
  }
  const s = srv.connect({ auth: who[col].auth });
  const hello = await waitFor(s, 'authenticated');
  assert.equal(hello.entityId, who[col].entity, `${col} authenticated as`);
  return s;
}

const SOCKET = [
  ['join the private channel', [false, true, false, true, true], async (s, channelId) => {
    const reply = await emitAck(s, 'message', { type: 1, payload: { channelId } });
    if (!reply.success) assert.equal(reply.error, DENIED_JOIN);
    return reply.success;
  }],
  ['send to the private channel', [false, true, false, true, true], async (s, channelId) => {
    const reply = await send(s, { channelId, message: 'over the socket' });
    if (!reply.success) assert.equal(reply.error, DENIED_SEND);
    return reply.success;
  }],
  ['type in the private channel', [false, true, false, true, true], async (s, channelId) => {
    const reply = await emitAck(s, 'typing', { channelId, isTyping: true });
    if (!reply.success) assert.equal(reply.error, DENIED_SEND);
    return reply.success;
  }],
  ['subscribe_logs', [false, false, false, true, true], async (s) => {
    const reply = await emitAck(s, 'subscribe_logs', undefined);
    return reply.success !== false && reply.subscribed === true;
  }],
  ['set_log_filter', [false, false, false, true, true], async (s) => (await emitAck(s, 'set_log_filter', { level: 'info' })).success],
];

for (const [name, allowed, act] of SOCKET) {
  test(`socket ${name}: anonymous refused at connect, ${COLUMNS.slice(1).map((c, i) => `${c} ${allowed[i] ? 'allowed' : 'refused'}`).join(', ')}`, async () => {
    const { channelId } = await fixture();
    assert.equal(await connectAs('anonymous'), null);
    for (const [i, col] of COLUMNS.slice(1).entries()) {
      const s = await connectAs(col);
      assert.equal(await act(s, channelId), allowed[i], col);
      s.close();
    }
  });
}

test('socket: a refused outsider receives nothing of the private channel; the member token wins over entityId', async () => {
  const { channelId } = await fixture();
  // The non-member claims to be A in auth.entityId: the token decides.
  const outsider = srv.connect({ auth: { ...who.nonMember.auth, entityId: A } });
  assert.equal((await waitFor(outsider, 'authenticated')).entityId, C);
  const unverified = await connectAs('keyOnly');
  const seen = [];
  for (const s of [outsider, unverified]) {
    s.onAny((event, data) => { if (JSON.stringify(data ?? '').includes(channelId)) seen.push(event); });
    const r = await expectRefused(s, 'message', { type: 1, payload: { channelId } });
    assert.equal(r.error.error, DENIED_JOIN);
  }
  const member = await connectAs('member');
  await joinChannel(member, { channelId });
  const own = waitFor(member, 'messageBroadcast', (m) => m.text === 'members only');
  await send(member, { channelId, message: 'members only' });
  await own;
  // Barrier: each outsider's own round trip after the broadcast.
  for (const s of [outsider, unverified]) await send(s, { channelId: uuid(), message: 'barrier' }).catch(() => {});
  assert.deepEqual(seen.filter((e) => e !== 'messageError'), []);
  // Posting as the member with the key only is refused as impersonation? No: the key-only
  // client said it was A, so it speaks as A, but A's private channel stays closed to it.
  const post = await expectRefused(unverified, 'message', { type: 2, payload: { channelId, senderId: A, message: 'as A' } });
  assert.equal(post.error.error, DENIED_SEND);
});

test('fuzzed credentials: random keys, tokens and headers are refused without a panic; the server keeps serving', async () => {
  const junk = ['', ' ', 'Bearer', 'Bearer  ', 'bearer x.y', 'Basic Zm9vOmJhcg==', 'Bearer ' + 'a'.repeat(8000),
    'Bearer ..', 'Bearer a.b.c.d', `Bearer ${KEY} ${KEY}`, 'Bearer \u00ff\u00fe', `Bearer ${token(A)}x`,
    `Bearer ${token(A).split('.').reverse().join('.')}`];
  for (let i = 0; i < 40; i++) junk.push(`Bearer ${Buffer.from(crypto.getRandomValues(new Uint8Array(40 + i))).toString('base64url')}`);
  for (const authorization of junk) {
    let r;
    try {
      r = await srv.http('GET', '/api/messaging/message-servers', undefined, { 'x-api-key': KEY, authorization });
    } catch { continue; } // fetch refuses some header values itself
    // Only an Authorization that carries no bearer value at all (empty, "Bearer", Basic) is
    // left aside; every bearer value is verified and these all fail.
    const noBearer = !/^bearer\s+\S/i.test(authorization.trim()) && /^[\x20-\x7e]*$/.test(authorization);
    assert.equal(r.status, noBearer ? 200 : 401, `${JSON.stringify(authorization.slice(0, 40))} → ${r.status}`);
  }
  for (const t of [0, [], {}, true, 'x', '.', 'a.b', null, '', 'e30.e30.', 'a'.repeat(20000)]) {
    const s = srv.connect({ auth: { apiKey: KEY, token: t } });
    const outcome = await Promise.race([
      waitFor(s, 'connect').then(() => 'connected'),
      waitFor(s, 'connect_error').then((e) => e.message),
    ]);
    // Anything but "no token" (null, empty) is verified, and none of these is a token.
    if (t !== null && t !== '') assert.notEqual(outcome, 'connected', JSON.stringify(t).slice(0, 30));
    else assert.equal(outcome, 'connected');
    s.close();
  }
  for (const entity of ['not-a-uuid', '"; DROP TABLE', '\u0000', 'x'.repeat(500)]) {
    const r = await srv.http('GET', '/api/messaging/message-servers', undefined, { 'x-api-key': KEY, 'x-entity-id': encodeURIComponent(entity) });
    assert.equal(r.status, 200);
  }
  assert.equal((await srv.http('GET', '/healthz')).status, 200);
});

test('every refusal above is counted in /metrics by kind', async () => {
  const s = await connectAs('member');
  await expectRefused(s, 'no_such_event', {});
  const r = await srv.http('GET', '/metrics', undefined, OP);
  assert.equal(r.status, 200);
  for (const kind of ['unauthenticated', 'bad_token', 'forbidden', 'operator_only', 'impersonation', 'invalid']) {
    const n = Number((r.text.match(new RegExp(`^confab_refusals_total\\{kind="${kind}"\\} (\\d+)`, 'm')) || [])[1] ?? 0);
    assert.ok(n >= 1, `${kind}: ${n}`);
  }
  assert.match(r.text, /^confab_connections_refused_total\{reason="bad_token"\} [1-9]/m);
});

// Private channels (issue 5): only participants may join, send, read history, list participants
// or see presence — over the socket and over REST. A refused join gets ElizaOS's "Access denied"
// error and receives nothing from that channel afterwards; REST answers 403. With
// ENABLE_DATA_ISOLATION=true every channel is private.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, until, uuid, DEFAULT_SERVER } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';
import { expectRefused, recordAll } from './security-util.mjs';

const DENIED_JOIN = "Access denied: You don't have permission to join this channel";
const DENIED_SEND = "Access denied: You don't have permission to send to this channel";
const DENIED_READ = "Access denied: You don't have permission to access this channel";

const srv = await startServer();
const isolated = await startServer({ env: { ENABLE_DATA_ISOLATION: 'true' } });
after(() => Promise.all([srv.stop(), isolated.stop()]));

async function privateChannel(server, participants, how = 'flag') {
  const body = { name: `private ${uuid().slice(0, 6)}`, message_server_id: DEFAULT_SERVER, participantCentralUserIds: participants };
  if (how === 'flag') body.private = true;
  else body.metadata = { private: true };
  const r = await server.http('POST', '/api/messaging/channels', body);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.data.metadata.private, true);
  return r.json.data.id;
}

test('a private channel: members join and talk; an outsider is refused and sees nothing of it', async () => {
  const [a, b, c] = [uuid(), uuid(), uuid()];
  const channelId = await privateChannel(srv, [a, b]);
  const alice = await srv.connected({ auth: { entityId: a } });
  const bob = await srv.connected({ auth: { entityId: b } });
  const carol = await srv.connected({ auth: { entityId: c } });
  const carolSaw = recordAll(carol);
  await joinChannel(alice, { channelId });

  // Refused join: ElizaOS's text, failed ack, no channel_joined.
  const { reply, error } = await expectRefused(carol, 'message', { type: 1, payload: { channelId } });
  assert.equal(reply.success, false);
  assert.equal(reply.error, DENIED_JOIN);
  assert.equal(error.error, DENIED_JOIN);
  // Other join dialects are refused the same way.
  for (const [event, payload] of [['join_channel', { channelId }], ['room_joining', { roomId: channelId }], ['1', { channelId }]]) {
    const r = await expectRefused(carol, event, payload);
    assert.equal(r.error.error, DENIED_JOIN, event);
  }

  // Bob joins (alice sees userJoined); carol sees no presence.
  const joined = waitFor(alice, 'userJoined', (d) => d.entityId === b);
  await joinChannel(bob, { channelId });
  await joined;

  // Carol cannot post or type into it; nothing is stored.
  const post = await expectRefused(carol, 'message', { type: 2, payload: { channelId, message: 'let me in' } });
  assert.equal(post.error.error, DENIED_SEND);
  const typing = await expectRefused(carol, 'typing', { channelId, isTyping: true });
  assert.equal(typing.error.error, DENIED_SEND);

  // Members talk and type; carol receives none of it.
  const bobGets = waitFor(bob, 'messageBroadcast', (m) => m.text === 'secret');
  await send(alice, { channelId, message: 'secret' });
  await bobGets;
  const bobTyping = waitFor(bob, 'userTyping', (d) => d.entityId === a);
  alice.emit('typing', { channelId, isTyping: true });
  await bobTyping;
  // Barrier on carol's own connection: anything leaked before it would already have arrived.
  await send(carol, { channelId: uuid(), message: 'barrier' });
  const leaks = carolSaw.filter(({ data }) => JSON.stringify(data ?? '').includes(channelId) && !JSON.stringify(data).includes('Access denied'));
  assert.deepEqual(leaks, [], 'no broadcast, presence or typing from the private channel reached the outsider');
  assert.ok(!carolSaw.some(({ data }) => data?.text === 'secret'));

  // History, participants, presence, details over REST: members only.
  const get = (path, entity) => srv.http('GET', `/api/messaging/channels/${channelId}${path}`, undefined, entity ? { 'x-entity-id': entity } : {});
  for (const path of ['/messages', '/participants', '/presence']) {
    for (const who of [c, undefined]) {
      const r = await get(path, who);
      assert.equal(r.status, 403, `${path} as ${who}`);
      assert.deepEqual(r.json, { success: false, error: DENIED_READ });
    }
    assert.equal((await get(path, a)).status, 200, `${path} as a member`);
  }
  // Details: a non-member gets a missing channel's answer, not the channel.
  for (const who of [c, undefined]) {
    const r = await get('/details', who);
    assert.equal(r.status, 404, `details as ${who}`);
    assert.deepEqual(r.json, (await srv.http('GET', `/api/messaging/channels/${uuid()}/details`)).json);
  }
  assert.equal((await get('/details', a)).status, 200);
  const history = await get('/messages', b);
  assert.deepEqual(history.json.data.messages.map((m) => m.content), ['secret']);
  // The deprecated alias and a REST post are guarded the same way.
  assert.equal((await srv.http('GET', `/api/messaging/central-channels/${channelId}/messages`, undefined, { 'x-entity-id': c })).status, 403);
  const restPost = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`,
    { author_id: c, content: 'rest intrusion', message_server_id: DEFAULT_SERVER }, { 'x-entity-id': c });
  assert.equal(restPost.status, 403);
  const after = await get('/messages', a);
  assert.deepEqual(after.json.data.messages.map((m) => m.content), ['secret']);
});

test('metadata.private works too; the privacy survives a restart', async () => {
  const [a, c] = [uuid(), uuid()];
  const server = await startServer();
  try {
    const channelId = await privateChannel(server, [a], 'metadata');
    await server.stop({ keepData: true });
    const again = await startServer({ dataDir: server.dir });
    try {
      const carol = await again.connected({ auth: { entityId: c } });
      const r = await expectRefused(carol, 'message', { type: 1, payload: { channelId } });
      assert.equal(r.error.error, DENIED_JOIN);
      const alice = await again.connected({ auth: { entityId: a } });
      await joinChannel(alice, { channelId });
    } finally {
      await again.stop();
    }
  } finally {
    await server.stop();
  }
});

test('a member removed from a private channel is taken out of its room at once', async () => {
  const [a, b] = [uuid(), uuid()];
  const channelId = await privateChannel(srv, [a, b]);
  const alice = await srv.connected({ auth: { entityId: a } });
  const bob = await srv.connected({ auth: { entityId: b } });
  await joinChannel(alice, { channelId });
  await joinChannel(bob, { channelId });
  const r = await srv.http('PATCH', `/api/messaging/channels/${channelId}`, { participantCentralUserIds: [a] }, { 'x-entity-id': a });
  assert.equal(r.status, 200, r.text);
  const bobGot = [];
  bob.on('messageBroadcast', (m) => bobGot.push(m));
  const own = waitFor(alice, 'messageBroadcast', (m) => m.text === 'bob is gone');
  await send(alice, { channelId, message: 'bob is gone' });
  await own;
  await send(bob, { channelId: uuid(), message: 'barrier' });
  assert.deepEqual(bobGot.filter((m) => m.channelId === channelId), []);
  const rejoin = await expectRefused(bob, 'message', { type: 1, payload: { channelId } });
  assert.equal(rejoin.error.error, DENIED_JOIN);
});

test('public channels stay open to everyone (the default)', async () => {
  const channelId = uuid();
  const x = await srv.connected({ auth: { entityId: uuid() } });
  const y = await srv.connected();
  await joinChannel(x, { channelId });
  await joinChannel(y, { channelId });
  const got = waitFor(y, 'messageBroadcast', (m) => m.text === 'open');
  await send(x, { channelId, message: 'open' });
  await got;
  assert.equal((await srv.http('GET', `/api/messaging/channels/${channelId}/messages`)).status, 200);
});

test('ENABLE_DATA_ISOLATION: every channel is participants-only; a message creates one for its sender', async () => {
  const [a, b] = [uuid(), uuid()];
  const alice = await isolated.connected({ auth: { entityId: a } });
  const bob = await isolated.connected({ auth: { entityId: b } });
  const channelId = uuid();
  // Nothing to join before the channel exists.
  assert.equal((await expectRefused(bob, 'message', { type: 1, payload: { channelId } })).error.error, DENIED_JOIN);
  // Alice's first message creates it, with her as its participant.
  assert.equal((await send(alice, { channelId, message: 'mine' })).success, true);
  await joinChannel(alice, { channelId });
  assert.equal((await expectRefused(bob, 'message', { type: 1, payload: { channelId } })).error.error, DENIED_JOIN);
  assert.equal((await expectRefused(bob, 'message', { type: 2, payload: { channelId, message: 'hi' } })).error.error, DENIED_SEND);
  assert.equal((await isolated.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined, { 'x-entity-id': b })).status, 403);
  assert.equal((await isolated.http('GET', `/api/messaging/channels/${channelId}/messages`, undefined, { 'x-entity-id': a })).status, 200);
  // Adding bob as a participant lets him in.
  const add = await isolated.http('PATCH', `/api/messaging/channels/${channelId}`, { participantCentralUserIds: [a, b] }, { 'x-entity-id': a });
  assert.equal(add.status, 200, add.text);
  await joinChannel(bob, { channelId });
  const got = waitFor(bob, 'messageBroadcast', (m) => m.text === 'welcome');
  await send(alice, { channelId, message: 'welcome' });
  await got;
});

test('with an API key: the key holder reaches no private channel; the operator key reaches every one', async () => {
  const KEY = 'k-access';
  const server = await startServer({ env: { ELIZA_SERVER_AUTH_TOKEN: KEY, CONFAB_ADMIN_KEY: 'ops-access' } });
  try {
    const a = uuid();
    const r = await server.http('POST', '/api/messaging/channels',
      { name: 'ops', message_server_id: DEFAULT_SERVER, participantCentralUserIds: [a], private: true }, { 'x-api-key': KEY });
    assert.equal(r.status, 201);
    const channelId = r.json.data.id;
    const messages = `/api/messaging/channels/${channelId}/messages`;
    assert.equal((await server.http('GET', messages, undefined, { 'x-api-key': KEY })).status, 403);
    assert.equal((await server.http('GET', messages, undefined, { 'x-api-key': 'ops-access' })).status, 200);
    // Key-only: entities are self-asserted, as in ElizaOS.
    assert.equal((await server.http('GET', messages, undefined, { 'x-api-key': KEY, 'x-entity-id': a })).status, 200);
    const outsider = await server.connected({ auth: { apiKey: KEY, entityId: uuid() } });
    assert.equal((await expectRefused(outsider, 'message', { type: 1, payload: { channelId } })).error.error, DENIED_JOIN);
    const member = await server.connected({ auth: { apiKey: KEY, entityId: a } });
    await joinChannel(member, { channelId });
    await until(member, () => true);
  } finally {
    await server.stop();
  }
});

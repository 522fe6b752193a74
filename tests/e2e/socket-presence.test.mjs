// Presence: userJoined / userLeft to the other members on join, leave and disconnect (per entity,
// not per tab), userTyping for `typing`, and the REST presence route.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, record, emitAck, uuid } from './harness.mjs';
import { assertScope, joinChannel, send, stringToUuid, disconnected } from './socket-util.mjs';

const srv = await startServer();
after(() => srv.stop());
// GET /api/messaging/channels/:id/presence belongs to the REST work; todo until it is served.
const presenceRoute = (await srv.http('GET', `/api/messaging/channels/${uuid()}/presence`)).status !== 404;

/** A connected socket with a known entity. */
async function member(entityId = uuid()) {
  const s = await srv.connected({ auth: { entityId } });
  return { s, entityId };
}

test('join: the others get userJoined {userId, entityId, username?, scope, timestamp}; the joiner does not', async () => {
  const channelId = uuid();
  const watcher = await member();
  await joinChannel(watcher.s, { channelId });
  const joiner = await member();
  const ownPresence = record(joiner.s, 'userJoined');
  const seen = waitFor(watcher.s, 'userJoined', (d) => d.entityId === joiner.entityId);
  await joinChannel(joiner.s, { channelId, displayName: 'Joy' }); // channel_joined is sent after userJoined
  const p = await seen;
  assert.equal(p.userId, joiner.entityId);
  assert.equal(p.entityId, joiner.entityId);
  assert.equal(p.username, 'Joy');
  assert.ok(Number.isInteger(p.timestamp));
  assertScope(p, { channelId }, 'userJoined');
  assert.deepEqual(ownPresence, [], 'no userJoined about oneself');
});

for (const stored of [false, true]) {
  test(`a channel named by a string (${stored ? 'stored' : 'not stored yet'}): every presence event carries the UUID and the name`, async () => {
    const name = `presence-${uuid().slice(0, 8)}`;
    const scope = { channelId: stringToUuid(name), roomId: name };
    const watcher = await member();
    await joinChannel(watcher.s, { roomId: name });
    if (stored) await send(watcher.s, { roomId: name, message: 'creates the channel with its name' });
    const [joiner, other] = [await member(), await member()];
    const joined = waitFor(watcher.s, 'userJoined', (d) => d.entityId === joiner.entityId);
    await joinChannel(joiner.s, { roomId: name });
    assertScope(await joined, scope, 'userJoined');
    const typing = waitFor(watcher.s, 'userTyping', (d) => d.entityId === joiner.entityId);
    joiner.s.emit('typing', { roomId: name, isTyping: true });
    assertScope(await typing, scope, 'userTyping');
    const left = waitFor(watcher.s, 'userLeft', (d) => d.entityId === joiner.entityId);
    await emitAck(joiner.s, 'leave_channel', { roomId: name });
    assertScope(await left, scope, 'userLeft (leave)');
    await joinChannel(other.s, { roomId: name });
    const gone = waitFor(watcher.s, 'userLeft', (d) => d.entityId === other.entityId);
    other.s.disconnect();
    assertScope(await gone, scope, 'userLeft (disconnect)');
  });
}

test('leave_channel: the others get userLeft; the leaver gets an ack', async () => {
  const channelId = uuid();
  const [watcher, leaver] = [await member(), await member()];
  await joinChannel(watcher.s, { channelId });
  await joinChannel(leaver.s, { channelId });
  const left = waitFor(watcher.s, 'userLeft', (d) => d.entityId === leaver.entityId);
  const reply = await emitAck(leaver.s, 'leave_channel', { channelId });
  assert.equal(reply.success, true);
  const p = await left;
  assert.equal(p.userId, leaver.entityId);
  assertScope(p, { channelId }, 'userLeft');
});

test('disconnect: the others get userLeft for every channel the entity was in', async () => {
  const [c1, c2] = [uuid(), uuid()];
  const [watcher, goner] = [await member(), await member()];
  for (const channelId of [c1, c2]) {
    await joinChannel(watcher.s, { channelId });
    await joinChannel(goner.s, { channelId });
  }
  const lefts = [];
  watcher.s.on('userLeft', (d) => { if (d.entityId === goner.entityId) lefts.push(d.channelId); });
  const both = Promise.all([c1, c2].map((channelId) => waitFor(watcher.s, 'userLeft', (d) => d.entityId === goner.entityId && d.channelId === channelId)));
  goner.s.disconnect();
  const events = await both;
  for (const [i, channelId] of [c1, c2].entries()) assertScope(events[i], { channelId }, 'userLeft');
  assert.deepEqual(lefts.sort(), [c1, c2].sort());
});

test('presence is per entity: a second tab neither joins nor leaves; the last one does', async () => {
  const channelId = uuid();
  const watcher = await member();
  await joinChannel(watcher.s, { channelId });
  const entityId = uuid();
  const tab1 = (await member(entityId)).s;
  const tab2 = (await member(entityId)).s;
  const joins = record(watcher.s, 'userJoined');
  const lefts = record(watcher.s, 'userLeft');
  const first = waitFor(watcher.s, 'userJoined', (d) => d.entityId === entityId);
  await joinChannel(tab1, { channelId });
  await first;
  await joinChannel(tab2, { channelId });
  // Barrier: tab2's message reaches the watcher after anything its join caused.
  let barrier = waitFor(watcher.s, 'messageBroadcast', (d) => d.text === 'tab2 here');
  await send(tab2, { channelId, message: 'tab2 here' });
  await barrier;
  assert.equal(joins.length, 1, 'one userJoined for two tabs');
  // tab1 leaves: the entity is still present through tab2.
  assert.equal((await emitAck(tab1, 'leave_channel', { channelId })).success, true);
  barrier = waitFor(watcher.s, 'messageBroadcast', (d) => d.text === 'still here');
  await send(tab2, { channelId, message: 'still here' });
  await barrier;
  assert.deepEqual(lefts, [], 'no userLeft while another tab is in');
  // The last tab goes: now the entity leaves.
  const gone = waitFor(watcher.s, 'userLeft', (d) => d.entityId === entityId);
  tab2.disconnect();
  assert.equal((await gone).userId, entityId);
  assert.equal(lefts.length, 1);
});

test('typing: the others get userTyping {userId, entityId, isTyping, scope}; the typist does not', async () => {
  const channelId = uuid();
  const [watcher, typist] = [await member(), await member()];
  await joinChannel(watcher.s, { channelId });
  await joinChannel(typist.s, { channelId });
  const own = record(typist.s, 'userTyping');
  const typings = record(watcher.s, 'userTyping');
  for (const [payload, expected] of [
    [{ channelId, isTyping: true }, true],
    [{ channelId, isTyping: false }, false],
    [{ channelId }, true], // isTyping defaults to true
  ]) {
    const n = typings.length;
    const reply = await emitAck(typist.s, 'typing', payload); // answered after the broadcast
    assert.equal(reply.success, true);
    const p = await (typings.length > n ? typings[n] : waitFor(watcher.s, 'userTyping'));
    assert.equal(p.userId, typist.entityId);
    assert.equal(p.entityId, typist.entityId);
    assert.equal(p.isTyping, expected, JSON.stringify(payload));
    assertScope(p, { channelId }, 'userTyping');
  }
  assert.deepEqual(own, [], 'no userTyping echo to the typist');
});

test("typing in seed 003's form {roomId, userId, isTyping}: string ids are mapped", async () => {
  const roomId = `typing-${uuid().slice(0, 8)}`;
  const [watcher, typist] = [await member(), await member()];
  await joinChannel(watcher.s, { roomId });
  await joinChannel(typist.s, { roomId });
  const seen = waitFor(watcher.s, 'userTyping');
  typist.s.emit('typing', { roomId, userId: 'user-123', isTyping: true });
  const p = await seen;
  assert.equal(p.userId, 'd5ecfb11-836d-0806-918f-2fd4c815d970');
  assert.equal(p.channelId, stringToUuid(roomId));
  // The seed's own filter: data.roomId === roomId
  assert.ok(p.roomId === roomId || p.channelId === roomId, 'seed filter matches');
});

test('GET /api/messaging/channels/:id/presence lists who is connected', { todo: !presenceRoute && 'the REST presence route is not served yet' }, async () => {
  const channelId = uuid();
  const [a, b] = [await member(), await member()];
  await joinChannel(a.s, { channelId });
  await joinChannel(b.s, { channelId });
  const res = await srv.http('GET', `/api/messaging/channels/${channelId}/presence`);
  assert.equal(res.status, 200);
  const body = JSON.stringify(res.json);
  assert.ok(body.includes(a.entityId) && body.includes(b.entityId), body);
  const left = waitFor(a.s, 'userLeft', (d) => d.entityId === b.entityId);
  b.s.disconnect();
  await disconnected(b.s);
  await left; // the server has processed the disconnect
  const after = await srv.http('GET', `/api/messaging/channels/${channelId}/presence`);
  assert.equal(after.status, 200);
  const body2 = JSON.stringify(after.json);
  assert.ok(body2.includes(a.entityId), body2);
  assert.ok(!body2.includes(b.entityId), `${b.entityId} should be gone: ${body2}`);
});

// Every server → client event on the socket path and its payload: the connect greeting, join
// replies, the message broadcast / own copy / messageAck triple, acknowledgement callbacks, and
// the auto-creation rules for unknown channels (compat spec §1.5, §1.6, §1.8).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, record, emitAck, uuid, DEFAULT_SERVER } from './harness.mjs';
import {
  stringToUuid, assertScope, expectJoined, joinChannel, send, UUID_RE, ACK_STATUS, CONNECTED_TEXT, JOIN_REQUIRED,
  SEND_REQUIRED,
} from './socket-util.mjs';

const srv = await startServer();
after(() => srv.stop());
// Some checks read back over REST (another engineer's work): todo until those routes are served.
const restChannels = await (async () => {
  const s = await srv.connected();
  const channelId = uuid();
  await s.timeout(5000).emitWithAck('message', { type: 2, payload: { channelId, message: 'probe' } });
  s.disconnect();
  return (await srv.http('GET', `/api/messaging/channels/${channelId}/details`)).status === 200;
})();
const restServers = (await srv.http('GET', '/api/messaging/message-servers')).status === 200;

/** Records every event from the moment the socket is created. */
function connectRecording(opts) {
  const s = srv.connect(opts);
  const events = [];
  s.onAny((event, ...args) => events.push([event, args[0]]));
  return { s, events };
}

test('on connect without auth: authenticated {entityId, timestamp} then connection_established', async () => {
  const { s, events } = connectRecording();
  const established = await waitFor(s, 'connection_established');
  assert.deepEqual(events.map(([e]) => e), ['authenticated', 'connection_established'], 'in this order, nothing else');
  const auth = events[0][1];
  assert.match(auth.entityId, UUID_RE, 'an entity is assigned');
  assert.ok(Number.isInteger(auth.timestamp) && auth.timestamp > 0, 'timestamp in epoch ms');
  assert.equal(established.message, CONNECTED_TEXT);
  assert.equal(established.socketId, s.id);
  // Each anonymous connection is its own entity.
  const other = srv.connect();
  const auth2 = await waitFor(other, 'authenticated');
  assert.notEqual(auth2.entityId, auth.entityId);
});

test('on connect with auth.entityId: the same id comes back; a non-UUID one is mapped with stringToUuid', async () => {
  const entityId = uuid();
  const { s, events } = connectRecording({ auth: { entityId } });
  const established = await waitFor(s, 'connection_established');
  assert.deepEqual(events.map(([e]) => e), ['authenticated', 'connection_established']);
  assert.equal(events[0][1].entityId, entityId);
  assert.equal(established.socketId, s.id);
  assert.equal(established.message, CONNECTED_TEXT);
  const mapped = srv.connect({ auth: { entityId: 'user-123' } });
  assert.equal((await waitFor(mapped, 'authenticated')).entityId, 'd5ecfb11-836d-0806-918f-2fd4c815d970');
});

test('what a client emits from its connect handler is never lost (every seed joins there)', async () => {
  // The server must listen before the CONNECT packet goes out. Under the old race about one
  // connection in a hundred lost its first event on an idle server, so many one-at-a-time
  // connections make a regression show.
  const N = 300;
  for (let i = 0; i < N; i++) {
    const s = srv.connect({ transports: i % 10 === 0 ? ['polling'] : ['websocket'] });
    const channelId = uuid();
    const reply = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ lost: true }), 3000);
      s.on('connect', () => s.emit('message', { type: 1, payload: { channelId } }, (r) => { clearTimeout(timer); resolve(r); }));
    });
    s.disconnect();
    assert.ok(!reply.lost, `connection ${i}: the join emitted on connect got no reply`);
    assert.deepEqual(reply, { success: true, channelId, roomId: channelId });
  }
});

test('an event without any argument is handled (subscribe_logs / unsubscribe_logs)', async () => {
  const s = await srv.connected();
  const confirmed = waitFor(s, 'log_subscription_confirmed');
  s.emit('subscribe_logs');
  assert.deepEqual(await confirmed, { subscribed: true, message: 'Successfully subscribed to log stream' });
  const reply = await s.timeout(5000).emitWithAck('unsubscribe_logs');
  assert.deepEqual(reply, { subscribed: false, message: 'Successfully unsubscribed from log stream' });
});

test('channel_joined and room_joined go to the joiner only, with the full scope and agentId', async () => {
  const channelId = uuid();
  const agentId = uuid();
  const member = await srv.connected();
  await joinChannel(member, { channelId });
  const memberJoins = [...['channel_joined', 'room_joined'].map((e) => [e, record(member, e)])];
  const joiner = await srv.connected({ auth: { entityId: uuid() } });
  const j = await expectJoined(joiner, () => joiner.emit('message', { type: 1, payload: { channelId, agentId } }));
  assert.equal(j.message, `Socket ${joiner.id} successfully joined channel ${channelId}.`);
  assert.equal(j.agentId, agentId);
  assertScope(j, { channelId }, 'channel_joined');
  // Barrier: the joiner's next message reaches the member after anything emitted for the join.
  const barrier = waitFor(member, 'messageBroadcast', (d) => d.text === 'joined');
  await send(joiner, { channelId, message: 'joined' });
  await barrier;
  for (const [event, seen] of memberJoins) assert.deepEqual(seen, [], `${event} is not sent to other members`);
  // Without agentId the key is absent.
  const plain = await srv.connected();
  const p = await joinChannel(plain, { channelId });
  assert.ok(!('agentId' in p));
});

test('joining the same channel twice (two dialects): both replies, but one copy of each message and one userJoined', async () => {
  const channelId = uuid();
  const watcher = await srv.connected();
  await joinChannel(watcher, { channelId });
  const joins = record(watcher, 'userJoined');
  const twice = await srv.connected();
  await joinChannel(twice, { channelId });
  await expectJoined(twice, () => twice.emit('room_joining', { roomId: channelId }));
  const copies = record(twice, 'messageBroadcast');
  const legacy = record(twice, 'message');
  const barrier = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'twice-2');
  await send(watcher, { channelId, message: 'twice-1' });
  const ack = await send(twice, { channelId, message: 'twice-2' });
  await barrier;
  assert.equal(joins.length, 1, 'one userJoined');
  assert.deepEqual(copies.map((m) => m.text), ['twice-1', 'twice-2'], 'one copy of each');
  assert.equal(copies[1].id, ack.messageId);
  assert.deepEqual(legacy.map((m) => m.text), ['twice-1'], 'seed 000 `message` for the other member only');
});

test('messageBroadcast: others get it without clientMessageId; the sender gets one copy with it, then messageAck', async () => {
  const channelId = uuid();
  const [sender, other] = [await srv.connected(), await srv.connected()];
  await joinChannel(other, { channelId });
  await joinChannel(sender, { channelId }); // last, so no userJoined is on its way to the sender
  const senderEvents = [];
  sender.onAny((e, d) => senderEvents.push([e, d]));
  const got = waitFor(other, 'messageBroadcast', (d) => d.text === 'hello');
  const messageId = `cm-${uuid()}`;
  const reply = await send(sender, {
    channelId, message: 'hello', senderName: 'Sam', messageId, source: 'unit', attachments: [{ url: 'u', type: 't' }],
  });
  const m = await got;
  // The callback is answered after the broadcast and messageAck were emitted.
  const kinds = senderEvents.map(([e]) => e);
  assert.deepEqual(kinds, ['messageBroadcast', 'messageAck'], 'sender: exactly its own copy, then messageAck');
  const [[, own], [, ack]] = senderEvents;
  assert.equal(own.clientMessageId, messageId);
  assert.ok(!('clientMessageId' in m));
  assert.deepEqual({ ...own, clientMessageId: undefined }, { ...m, clientMessageId: undefined });
  assert.match(m.id, UUID_RE);
  assert.equal(m.text, 'hello');
  assert.equal(m.senderName, 'Sam');
  assert.equal(m.source, 'unit');
  assert.deepEqual(m.attachments, [{ url: 'u', type: 't' }]);
  assert.equal(typeof m.createdAt, 'number');
  assertScope(m, { channelId }, 'messageBroadcast');
  assert.deepEqual(ack, {
    clientMessageId: messageId, messageId: m.id, status: ACK_STATUS, channelId, roomId: channelId,
    messageServerId: DEFAULT_SERVER, serverId: DEFAULT_SERVER, createdAt: m.createdAt,
  });
  assert.deepEqual(reply, {
    success: true, messageId: m.id, clientMessageId: messageId, channelId, roomId: channelId, createdAt: m.createdAt,
  });
});

test('without a client messageId: no clientMessageId key anywhere; source defaults to socketio_client', async () => {
  const channelId = uuid();
  const sender = await srv.connected();
  await joinChannel(sender, { channelId });
  const own = waitFor(sender, 'messageBroadcast', (d) => d.text === 'anonymous');
  const ack = waitFor(sender, 'messageAck');
  sender.emit('message', { type: 2, payload: { channelId, message: 'anonymous' } });
  const [o, a] = await Promise.all([own, ack]);
  assert.ok(!('clientMessageId' in o));
  assert.ok(!('clientMessageId' in a));
  assert.equal(a.messageId, o.id);
  assert.equal(o.source, 'socketio_client');
  assert.equal(o.senderName, 'User');
  assert.deepEqual(o.attachments, []);
});

test('a numeric messageId is echoed as a string clientMessageId', async () => {
  const channelId = uuid();
  const sender = await srv.connected();
  const own = waitFor(sender, 'messageBroadcast', (d) => d.text === 'numbered');
  const r = await send(sender, { channelId, message: 'numbered', messageId: 42 });
  assert.equal(r.clientMessageId, '42');
  assert.equal((await own).clientMessageId, '42');
});

test('a non-member may send (as in ElizaOS): members receive it, the sender gets its copy and ack', async () => {
  const channelId = uuid();
  const [member, outsider] = [await srv.connected(), await srv.connected()];
  await joinChannel(member, { channelId });
  const got = waitFor(member, 'messageBroadcast', (d) => d.text === 'from outside');
  const own = waitFor(outsider, 'messageBroadcast', (d) => d.clientMessageId === 'out');
  const r = await send(outsider, { channelId, message: 'from outside', messageId: 'out' });
  const [m, o] = await Promise.all([got, own]);
  assert.equal(r.messageId, m.id);
  assert.equal(o.id, m.id);
});

test('acknowledgement callbacks: join, send, leave, typing succeed; refusals carry the ElizaOS texts', async () => {
  const channelId = uuid();
  const s = await srv.connected();
  const errors = record(s, 'messageError');
  assert.deepEqual(await emitAck(s, 'message', { type: 1, payload: { channelId } }), {
    success: true, channelId, roomId: channelId,
  });
  const sent = await emitAck(s, 'message', { type: 2, payload: { channelId, message: 'acked' } });
  assert.equal(sent.success, true);
  assert.match(sent.messageId, UUID_RE);
  assert.equal(sent.channelId, channelId);
  const typing = await emitAck(s, 'typing', { channelId, isTyping: true });
  assert.equal(typing.success, true);
  assert.equal(typing.channelId, channelId);
  assert.deepEqual(await emitAck(s, 'leave_channel', { channelId }), { success: true, channelId, roomId: channelId });
  assert.deepEqual(errors, [], 'no messageError for successful requests');

  assert.deepEqual(await emitAck(s, 'message', { type: 1, payload: { entityId: uuid() } }), {
    success: false, error: JOIN_REQUIRED,
  });
  assert.deepEqual(await emitAck(s, 'message', { type: 2, payload: { channelId, message: '' } }), {
    success: false, error: SEND_REQUIRED,
  });
  assert.deepEqual(await emitAck(s, 'message', { type: 2, payload: { message: 'where to?' } }), {
    success: false, error: SEND_REQUIRED,
  });
  assert.deepEqual(errors.map((e) => e.error), [JOIN_REQUIRED, SEND_REQUIRED, SEND_REQUIRED],
    'each refusal also emits messageError');
});

test('messageError carries the clientMessageId of the refused send', async () => {
  const s = await srv.connected();
  const err = waitFor(s, 'messageError', (d) => d.clientMessageId === 'bad-1');
  s.emit('message', { type: 2, payload: { channelId: uuid(), message: '', messageId: 'bad-1' } });
  assert.deepEqual(await err, { error: SEND_REQUIRED, clientMessageId: 'bad-1' });
});

test('auto-create: an unknown messageServerId is refused with "Server <id> does not exist" (event and callback)', async () => {
  const channelId = uuid();
  const bogus = uuid();
  const [s, member] = [await srv.connected(), await srv.connected()];
  await joinChannel(member, { channelId });
  const seen = record(member, 'messageBroadcast');
  const err = waitFor(s, 'messageError');
  const reply = await send(s, { channelId, messageServerId: bogus, message: 'nowhere', messageId: 'nw' });
  assert.deepEqual(reply, { success: false, error: `Server ${bogus} does not exist` });
  assert.deepEqual(await err, { error: `Server ${bogus} does not exist`, clientMessageId: 'nw' });
  // Nothing was created or delivered: the next send creates the channel in the default server.
  const got = waitFor(member, 'messageBroadcast', (d) => d.text === 'somewhere');
  const ok = await send(s, { channelId, message: 'somewhere' });
  assert.equal(ok.success, true);
  assertScope(await got, { channelId, serverId: DEFAULT_SERVER });
  assert.deepEqual(seen.map((m) => m.text), ['somewhere']);
  // Once the channel exists, the server id of later sends does not matter (ElizaOS checks it only
  // when creating).
  const later = await send(s, { channelId, messageServerId: uuid(), message: 'exists now' });
  assert.equal(later.success, true);
});

test('auto-create: the first send names the channel; the explicit default server is accepted', async () => {
  const channelId = uuid();
  const [s, member] = [await srv.connected(), await srv.connected()];
  await joinChannel(member, { channelId });
  const got = waitFor(member, 'messageBroadcast', (d) => d.text === 'first');
  const r = await send(s, { channelId, messageServerId: DEFAULT_SERVER, message: 'first' });
  assert.equal(r.success, true);
  assertScope(await got, { channelId });
});

test('auto-create in an existing message server (created over REST): payloads name that server', { todo: !restServers && 'needs POST /api/messaging/message-servers' }, async () => {
  const created = await srv.http('POST', '/api/messaging/message-servers', { name: 'socket tests', sourceType: 'test' });
  assert.equal(created.status, 201);
  const serverId = created.json.data.server.id;
  const channelId = uuid();
  const [s, member] = [await srv.connected(), await srv.connected()];
  await joinChannel(member, { channelId });
  const got = waitFor(member, 'messageBroadcast', (d) => d.text === 'in my server');
  const ack = waitFor(s, 'messageAck');
  const r = await send(s, { channelId, messageServerId: serverId, message: 'in my server' });
  assert.equal(r.success, true);
  assertScope(await got, { channelId, serverId }, 'messageBroadcast');
  assertScope(await ack, { channelId, serverId }, 'messageAck');
  // A later join reports the channel's server too.
  const late = await srv.connected();
  assertScope(await joinChannel(late, { channelId }), { channelId, serverId }, 'channel_joined');
});

for (const [label, metadata] of [['metadata.isDm', { isDm: true }], ['metadata.channelType "DM"', { channelType: 'DM' }]]) {
  test(`auto-create: ${label} makes a DM channel with the target as participant`, { todo: !restChannels && 'needs the REST channel routes' }, async () => {
    const channelId = uuid();
    const target = uuid();
    const author = uuid();
    const s = await srv.connected({ auth: { entityId: author } });
    const r = await send(s, { channelId, message: 'dm', metadata: { ...metadata, targetUserId: target } });
    assert.equal(r.success, true);
    const details = await srv.http('GET', `/api/messaging/channels/${channelId}/details`);
    assert.equal(details.status, 200);
    const channel = details.json.data;
    assert.equal(channel.type, 'DM');
    assert.equal(channel.messageServerId ?? channel.message_server_id, DEFAULT_SERVER);
    const parts = await srv.http('GET', `/api/messaging/channels/${channelId}/participants`);
    assert.equal(parts.status, 200);
    assert.deepEqual([...parts.json.data].sort(), [author, target].sort());
    // A GROUP channel for contrast.
    const group = uuid();
    await send(s, { channelId: group, message: 'group' });
    const g = await srv.http('GET', `/api/messaging/channels/${group}/details`);
    assert.equal(g.json.data.type, 'GROUP');
  });
}

test('a send to a channel named by a string echoes the spelling in ack, messageAck and broadcast', async () => {
  const name = `named-${uuid().slice(0, 8)}`;
  const s = await srv.connected();
  await joinChannel(s, { channelId: name });
  const ack = waitFor(s, 'messageAck');
  const own = waitFor(s, 'messageBroadcast');
  const r = await send(s, { channelId: name, message: 'spelled' });
  assert.equal(r.roomId, name);
  assert.equal(r.channelId, stringToUuid(name));
  assertScope(await ack, { channelId: stringToUuid(name), roomId: name }, 'messageAck');
  assertScope(await own, { channelId: stringToUuid(name), roomId: name }, 'messageBroadcast');
});

// Every client dialect of the seeds, with each seed's client code as written: the ElizaOS
// `message` envelope (1 = join, 2 = send), seed 002's numbering (0 = join, 1 = send), the direct
// events, seed 000's room_joining/send_message, seed 004's join_channel/send_message, the field
// aliases, the defaults for missing ids, and stringToUuid for non-UUID ids.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, record, emitAck, uuid, DEFAULT_SERVER } from './harness.mjs';
import {
  stringToUuid, assertScope, expectJoined, joinChannel, send, UUID_RE, ACK_STATUS, SEND_REQUIRED,
} from './socket-util.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv?.stop());

test('stringToUuid here agrees with the values printed by @elizaos/core', () => {
  assert.equal(stringToUuid('user-123'), 'd5ecfb11-836d-0806-918f-2fd4c815d970');
  assert.equal(stringToUuid('your-room-id'), 'cd5a7580-8471-004c-b110-c02b0173db8e');
  assert.equal(stringToUuid('ünïcødé/?&'), 'f7fd60f5-6e4b-0655-80b3-e41c39b228dc');
  assert.equal(stringToUuid('ABCDEF00-0000-0000-0000-0000000000AA'), 'abcdef00-0000-0000-0000-0000000000aa');
});

test('seed 003 minimal client as written: string room and entity ids, envelope 1/2, roomId filter', async () => {
  const roomId = 'your-room-id';
  const channelId = 'cd5a7580-8471-004c-b110-c02b0173db8e'; // stringToUuid('your-room-id') from @elizaos/core
  const opts = { 'force new connection': true, reconnection: false, timeout: 20000, transports: ['polling', 'websocket'] };
  // Two extension clients; each joins on connect exactly like the seed.
  const clients = ['your-entity-id', 'user-123'].map((entityId) => {
    const socket = srv.connect(opts);
    const joined = expectJoined(socket, () => {
      socket.on('connect', () => socket.emit('message', { type: 1, payload: { roomId, entityId } }));
    });
    return { socket, entityId, joined };
  });
  for (const c of clients) {
    const j = await c.joined;
    assert.equal(j.channelId, channelId);
    assert.equal(j.roomId, roomId, 'roomId echoes the name as spelled');
    assert.equal(j.message, `Socket ${c.socket.id} successfully joined channel ${roomId}.`);
    assertScope(j, { channelId, roomId }, 'channel_joined');
  }
  const [sender, receiver] = clients;
  const ours = []; // what the receiver's seed filter accepts
  receiver.socket.on('messageBroadcast', (data) => {
    if (data.roomId === roomId || data.channelId === roomId) ours.push(data);
  });
  const messageId = uuid();
  const got = waitFor(receiver.socket, 'messageBroadcast', (d) => d.text === 'hello from the extension');
  const own = waitFor(sender.socket, 'messageBroadcast', (d) => d.clientMessageId === messageId);
  const ack = waitFor(sender.socket, 'messageAck', (d) => d.clientMessageId === messageId);
  sender.socket.emit('message', {
    type: 2,
    payload: {
      senderId: sender.entityId, senderName: 'Extension User', message: 'hello from the extension',
      roomId, messageId, source: 'extension', attachments: [], metadata: {},
    },
  });
  const [m, o, a] = await Promise.all([got, own, ack]);
  assert.equal(ours.length, 1, "the seed's filter data.roomId === roomId matches");
  assertScope(m, { channelId, roomId }, 'messageBroadcast');
  assert.equal(m.senderId, stringToUuid('your-entity-id'));
  assert.equal(m.senderName, 'Extension User');
  assert.equal(m.source, 'extension');
  assert.deepEqual(m.attachments, []);
  assert.ok(!('clientMessageId' in m), 'others get no clientMessageId');
  assert.match(m.id, UUID_RE);
  assert.notEqual(m.id, messageId, 'the server assigns the id');
  assert.equal(typeof m.createdAt, 'number');
  assert.deepEqual({ ...o, clientMessageId: undefined }, { ...m, clientMessageId: undefined }, 'own copy = room copy');
  assert.equal(a.messageId, m.id);
  assert.equal(a.status, ACK_STATUS);
  assertScope(a, { channelId, roomId }, 'messageAck');
});

test('seed 001 hook as written: sessionId as roomId and channelId, source socket_chat', async () => {
  const sessionId = uuid();
  const opts = { transports: ['polling', 'websocket'], reconnection: false, timeout: 20000 };
  const users = [uuid(), uuid()];
  const sockets = [];
  for (const userId of users) {
    const socket = srv.connect(opts);
    const joined = expectJoined(socket, () => socket.on('connect', () => socket.emit('message', {
      type: 1, payload: { roomId: sessionId, entityId: userId, channelId: sessionId },
    })));
    const j = await joined;
    assertScope(j, { channelId: sessionId }, 'channel_joined');
    sockets.push(socket);
  }
  const [a, b] = sockets;
  const messages = [];
  b.on('messageBroadcast', (data) => {
    const isForOurRoom = data.roomId === sessionId || data.channelId === sessionId;
    if (isForOurRoom) messages.push(data);
  });
  const got = waitFor(b, 'messageBroadcast', (d) => d.text === 'from the hook');
  const messageId = uuid();
  a.emit('message', {
    type: 2,
    payload: {
      senderId: users[0], senderName: 'User', message: 'from the hook', roomId: sessionId, channelId: sessionId,
      messageId, source: 'socket_chat', attachments: [],
      metadata: { userTimezone: 'UTC', timestamp: new Date(0).toISOString() },
    },
  });
  const m = await got;
  assert.equal(messages.length, 1);
  assert.equal(m.senderId, users[0]);
  assert.equal(m.senderName, 'User');
  assert.equal(m.source, 'socket_chat');
  assertScope(m, { channelId: sessionId }, 'messageBroadcast');
});

test("seed 002 numbering as written: type 0 joins, type 1 with message sends; user id 'user-uuid'", async () => {
  const channelId = uuid();
  const userId = 'user-uuid'; // the seed's ChatClient literally uses this string
  const a = srv.connect({ transports: ['polling', 'websocket'], reconnection: false });
  const b = await srv.connected();
  const ja = expectJoined(a, () => a.on('connect', () => a.emit('message', {
    type: 0, payload: { channelId, entityId: userId, serverId: DEFAULT_SERVER, metadata: { isDm: false, channelType: 'group' } },
  })));
  assertScope(await ja, { channelId }, 'channel_joined (type 0)');
  await joinChannel(b, { channelId });
  const got = waitFor(b, 'messageBroadcast', (d) => d.text === 'Hello, world!');
  const messageId = uuid();
  const ack = waitFor(a, 'messageAck', (d) => d.clientMessageId === messageId);
  a.emit('message', {
    type: 1,
    payload: {
      senderId: userId, senderName: 'User Name', message: 'Hello, world!', channelId, serverId: DEFAULT_SERVER,
      messageId, source: 'web_client', attachments: [], metadata: { isDm: false },
    },
  });
  const [m, k] = await Promise.all([got, ack]);
  assert.equal(m.senderId, stringToUuid('user-uuid'));
  assert.equal(m.senderName, 'User Name');
  assert.equal(m.source, 'web_client');
  assertScope(m, { channelId }, 'messageBroadcast');
  assert.equal(k.messageId, m.id);
});

test('seed 002 server side: direct events "0" and "1" (join, then send when the payload has message)', async () => {
  const channelId = uuid();
  const a = await srv.connected();
  const b = await srv.connected();
  const j = await expectJoined(a, () => a.emit('0', { channelId, entityId: uuid() }));
  assertScope(j, { channelId }, 'channel_joined ("0")');
  const j1 = await expectJoined(b, () => b.emit('1', { channelId }));
  assertScope(j1, { channelId }, 'channel_joined ("1" without message)');
  const got = waitFor(b, 'messageBroadcast', (d) => d.text === 'via "1"');
  const reply = await emitAck(a, '1', { channelId, message: 'via "1"', messageId: 'one' });
  assert.equal(reply.success, true);
  assert.equal(reply.clientMessageId, 'one');
  const m = await got;
  assert.equal(m.id, reply.messageId);
});

test('ElizaOS direct events "1" (join) and "2" (send), compat spec §1.4', async () => {
  const channelId = uuid();
  const [a, b] = [await srv.connected(), await srv.connected()];
  for (const s of [a, b]) assertScope(await expectJoined(s, () => s.emit('1', { channelId, roomId: channelId, entityId: uuid() })), { channelId });
  const got = waitFor(b, 'messageBroadcast', (d) => d.text === 'via "2"');
  const own = waitFor(a, 'messageBroadcast', (d) => d.clientMessageId === 'two');
  const ack = waitFor(a, 'messageAck', (d) => d.clientMessageId === 'two');
  a.emit('2', { channelId, messageServerId: DEFAULT_SERVER, senderId: uuid(), message: 'via "2"', messageId: 'two' });
  const [m, o, k] = await Promise.all([got, own, ack]);
  assert.equal(o.id, m.id);
  assert.equal(k.messageId, m.id);
  assertScope(m, { channelId }, 'messageBroadcast');
});

test('seed 000 SocketIOManager as written: room_joining/send_message, `message` to others and `ack` to the sender', async () => {
  const channelId = uuid();
  const userA = uuid();
  const userB = uuid();
  // `io(url, {autoConnect, reconnection, ...})`: default transports.
  const opts = { autoConnect: true, reconnection: false };
  const a = srv.connect(opts);
  const b = srv.connect(opts);
  await Promise.all([waitFor(a, 'connect'), waitFor(b, 'connect')]);
  const eliza = await srv.connected(); // an ElizaOS-dialect member of the same channel
  for (const s of [a, b]) {
    assertScope(await expectJoined(s, () => s.emit('room_joining', { roomId: channelId })), { channelId });
  }
  await joinChannel(eliza, { channelId });
  const aMessages = record(a, 'message');
  const elizaMessages = record(eliza, 'message');
  const legacy = waitFor(b, 'message', (d) => d.text === 'legacy hello');
  const ack = waitFor(a, 'ack');
  const elizaGot = waitFor(eliza, 'messageBroadcast', (d) => d.text === 'legacy hello');
  a.emit('send_message', { roomId: channelId, text: 'legacy hello', userId: userA, metadata: { k: 1 } });
  const [m, k, e] = await Promise.all([legacy, ack, elizaGot]);
  assert.match(m.id, UUID_RE);
  assert.equal(m.userId, userA);
  assert.equal(m.text, 'legacy hello');
  assert.equal(typeof m.timestamp, 'number');
  assertScope(m, { channelId }, 'message');
  assert.deepEqual(k, { success: true, messageId: m.id });
  assert.equal(e.id, m.id, 'ElizaOS clients get the same message as messageBroadcast');
  assert.equal(e.senderId, userA);
  // Barriers: the sender's `ack` and the ElizaOS member's broadcast come after any `message` event.
  assert.deepEqual(aMessages, [], "socket.to(room): the sender gets no `message` for its own send");
  assert.deepEqual(elizaMessages, [], 'ElizaOS-dialect members get no `message` event');

  // And the other way round: b answers, a receives it as `message`.
  const back = waitFor(a, 'message', (d) => d.text === 'legacy reply');
  b.emit('send_message', { roomId: channelId, text: 'legacy reply', userId: userB });
  assert.equal((await back).userId, userB);

  // A failed send is answered with `ack {success:false, error}` (seed 000's catch branch).
  const failed = waitFor(a, 'ack', (d) => d.success === false);
  a.emit('send_message', { roomId: channelId, text: '', userId: userA });
  assert.deepEqual(await failed, { success: false, error: SEND_REQUIRED });
});

test('seed 004 as written: join_channel with agentId/entityId, send_message with entityName and messageId', async () => {
  const channelId = '123e4567-e89b-12d3-a456-426614174000';
  const agentId = '987fcdeb-51a2-43f1-b012-123456789abc';
  const a = srv.connect({ transports: ['websocket'], reconnection: false });
  const joined = expectJoined(a, () => a.on('connection_established', () => a.emit('join_channel', {
    channelId, agentId, entityId: 'user-123', metadata: { isDm: true },
  })));
  const b = await srv.connected();
  const j = await joined;
  assert.equal(j.agentId, agentId, 'agentId is echoed when given');
  assert.equal(j.message, `Socket ${a.id} successfully joined channel ${channelId}.`);
  assertScope(j, { channelId }, 'channel_joined');
  await joinChannel(b, { channelId });
  const got = waitFor(b, 'messageBroadcast', (d) => d.text === 'Hello, how can I help you?');
  const own = waitFor(a, 'messageBroadcast', (d) => d.clientMessageId === 'client-msg-456');
  const ack = waitFor(a, 'messageAck', (d) => d.clientMessageId === 'client-msg-456');
  a.emit('send_message', {
    channelId, serverId: DEFAULT_SERVER, text: 'Hello, how can I help you?', entityId: 'user-123',
    entityName: 'John Doe', messageId: 'client-msg-456',
  });
  const [m, o, k] = await Promise.all([got, own, ack]);
  assert.equal(m.senderId, 'd5ecfb11-836d-0806-918f-2fd4c815d970', "stringToUuid('user-123')");
  assert.equal(m.senderName, 'John Doe');
  assert.ok(!('clientMessageId' in m));
  assert.equal(o.id, m.id);
  assert.equal(k.messageId, m.id);
  assert.equal(k.status, ACK_STATUS);
});

test("seed 004 message-flow example as written: placeholder 'server-uuid' is refused with messageError", async () => {
  const s = srv.connect({ reconnection: false });
  const errors = record(s, 'messageError');
  const joined = expectJoined(s, () => s.on('connection_established', () => s.emit('join_channel', {
    channelId: 'channel-uuid', agentId: 'agent-uuid', entityId: 'user-123',
  })));
  const err = waitFor(s, 'messageError');
  s.on('channel_joined', (data) => s.emit('send_message', {
    channelId: data.channelId, serverId: 'server-uuid', text: 'Hello!', entityId: 'user-123', entityName: 'User',
  }));
  const j = await joined;
  assert.equal(j.channelId, stringToUuid('channel-uuid'));
  assert.equal(j.roomId, 'channel-uuid');
  assert.equal(j.agentId, 'agent-uuid');
  assert.equal((await err).error, `Server ${stringToUuid('server-uuid')} does not exist`);
  assert.equal(errors.length, 1);
});

test('leave_channel: acknowledged, and the connection gets nothing more from that channel', async () => {
  const left = uuid();
  const kept = uuid();
  const [a, b] = [await srv.connected(), await srv.connected()];
  for (const channelId of [left, kept]) {
    await joinChannel(a, { channelId });
    await joinChannel(b, { channelId });
  }
  const seen = record(b, 'messageBroadcast');
  const reply = await emitAck(b, 'leave_channel', { channelId: left });
  assert.equal(reply.success, true);
  assert.equal(reply.channelId, left);
  await send(a, { channelId: left, message: 'after leave' });
  const barrier = waitFor(b, 'messageBroadcast', (d) => d.text === 'barrier');
  await send(a, { channelId: kept, message: 'barrier' });
  await barrier; // sent after 'after leave' by the same client, so delivered after it
  assert.deepEqual(seen.map((m) => m.text), ['barrier']);
  // leave_room (alias) with roomId, and leaving twice is refused.
  const again = await emitAck(b, 'leave_room', { roomId: left });
  assert.equal(again.success, false);
  assert.match(again.error, /Not a member/);
});

test('alias channelId/roomId: a send naming only roomId reaches channelId joiners', async () => {
  const channelId = uuid();
  const [a, b] = [await srv.connected(), await srv.connected()];
  await joinChannel(a, { roomId: channelId });
  await joinChannel(b, { channelId });
  const got = waitFor(b, 'messageBroadcast', (d) => d.text === 'by roomId');
  const r = await send(a, { roomId: channelId, message: 'by roomId' });
  assert.equal(r.channelId, channelId);
  assertScope(await got, { channelId });
});

test('alias messageServerId/serverId: both are read (an unknown one is refused by name)', async () => {
  const a = await srv.connected();
  for (const key of ['messageServerId', 'serverId']) {
    const bogus = uuid();
    const r = await send(a, { channelId: uuid(), message: 'x', [key]: bogus });
    assert.deepEqual(r, { success: false, error: `Server ${bogus} does not exist` }, key);
    const ok = await send(a, { channelId: uuid(), message: 'x', [key]: DEFAULT_SERVER });
    assert.equal(ok.success, true, `${key} = default server`);
  }
});

test('alias senderId/entityId/userId: each names the author, UUID or mapped string', async () => {
  const channelId = uuid();
  const [a, b] = [await srv.connected(), await srv.connected()];
  await joinChannel(a, { channelId });
  await joinChannel(b, { channelId });
  const cases = [['senderId', uuid()], ['entityId', uuid()], ['userId', uuid()], ['userId', 'user-123'], ['entityId', 'Some Person']];
  for (const [key, id] of cases) {
    const text = `author via ${key} ${id}`;
    const got = waitFor(b, 'messageBroadcast', (d) => d.text === text);
    await send(a, { channelId, message: text, [key]: id });
    assert.equal((await got).senderId, stringToUuid(id), `${key}=${id}`);
  }
});

test('alias message/text and senderName/entityName', async () => {
  const channelId = uuid();
  const [a, b] = [await srv.connected(), await srv.connected()];
  await joinChannel(a, { channelId });
  await joinChannel(b, { channelId });
  const cases = [
    [{ message: 'm-field', senderName: 'Ann' }, 'm-field', 'Ann'],
    [{ text: 't-field', entityName: 'Bob' }, 't-field', 'Bob'],
    [{ text: 'no-name' }, 'no-name', 'User'],
  ];
  for (const [fields, text, name] of cases) {
    const got = waitFor(b, 'messageBroadcast', (d) => d.text === text);
    const r = await send(a, { channelId, ...fields });
    assert.equal(r.success, true);
    const m = await got;
    assert.equal(m.senderName, name, JSON.stringify(fields));
    assert.equal(m.id, r.messageId);
  }
});

test('missing server id → the default server; missing sender → the connection entity', async () => {
  const named = uuid();
  const a = srv.connect({ auth: { entityId: named } });
  const auth = await waitFor(a, 'authenticated');
  assert.equal(auth.entityId, named);
  const anon = srv.connect();
  const anonAuth = await waitFor(anon, 'authenticated');
  assert.match(anonAuth.entityId, UUID_RE);
  const channelId = uuid();
  const b = await srv.connected();
  await joinChannel(b, { channelId });
  for (const [s, entity] of [[a, named], [anon, anonAuth.entityId]]) {
    const text = `no sender from ${entity}`;
    const got = waitFor(b, 'messageBroadcast', (d) => d.text === text);
    const r = await send(s, { channelId, message: text });
    assert.equal(r.success, true);
    const m = await got;
    assert.equal(m.senderId, entity, 'author = authenticated.entityId');
    assertScope(m, { channelId, serverId: DEFAULT_SERVER }, 'messageBroadcast');
  }
});

test("a channel named by a string: joiners by name and by UUID both receive; roomId is the spelled name", async () => {
  const name = `room-${uuid().slice(0, 8)}`;
  const id = stringToUuid(name);
  const [byName, byId, sender] = [await srv.connected(), await srv.connected(), await srv.connected()];
  const j = await joinChannel(byName, { roomId: name });
  assert.equal(j.channelId, id);
  assert.equal(j.roomId, name);
  await joinChannel(byId, { channelId: id });
  const nameGot = waitFor(byName, 'messageBroadcast', (d) => d.roomId === name || d.channelId === name);
  const idGot = waitFor(byId, 'messageBroadcast', (d) => d.roomId === id || d.channelId === id);
  const r = await send(sender, { channelId: name, message: 'named', senderId: 'user-123' });
  assert.equal(r.channelId, id);
  assert.equal(r.roomId, name);
  const [m1, m2] = await Promise.all([nameGot, idGot]);
  for (const m of [m1, m2]) {
    assert.equal(m.channelId, id);
    assert.equal(m.roomId, name);
    assert.equal(m.senderId, 'd5ecfb11-836d-0806-918f-2fd4c815d970');
  }
  // Later sends naming the channel by UUID still carry the spelled name.
  const again = waitFor(byName, 'messageBroadcast', (d) => d.text === 'by uuid');
  await send(sender, { channelId: id, message: 'by uuid' });
  assert.equal((await again).roomId, name);
});

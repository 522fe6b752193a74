// Transports: long-polling only, websocket only, the default polling → websocket upgrade, and an
// Engine.IO v3 client (socket.io-client v2), all in the same channels.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import ioV2 from 'socket.io-client-v2';
import { startServer, waitFor, emitAck, uuid, DEFAULT_SERVER } from './harness.mjs';
import { assertScope, joinChannel, send, CONNECTED_TEXT, UUID_RE } from './socket-util.mjs';

const srv = await startServer();
after(() => srv.stop());

/** A v2 client (Engine.IO v3), closed at the end of the file. */
const v2Sockets = [];
after(() => { for (const s of v2Sockets) s.close(); });
function connectV2(opts = {}) {
  const s = ioV2(srv.url, { forceNew: true, reconnection: false, ...opts });
  v2Sockets.push(s);
  return s;
}
const emitAckV2 = (socket, event, payload, ms = 5000) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no acknowledgement for '${event}' within ${ms} ms`)), ms);
  socket.emit(event, payload, (reply) => { clearTimeout(timer); resolve(reply); });
});

/** Two-way exchange between `a` and `b` in a fresh channel, checking payloads on both sides. */
async function exchange(a, b, label) {
  const channelId = uuid();
  await joinChannel(a, { channelId });
  await joinChannel(b, { channelId });
  for (const [from, to, text] of [[a, b, `${label} a→b`], [b, a, `${label} b→a`]]) {
    const got = waitFor(to, 'messageBroadcast', (d) => d.text === text);
    const r = await send(from, { channelId, message: text, messageId: text });
    assert.equal(r.success, true);
    const m = await got;
    assert.equal(m.id, r.messageId);
    assert.ok(!('clientMessageId' in m));
    assertScope(m, { channelId }, `${label} broadcast`);
  }
}

test('polling only: connects, stays on polling, exchanges messages with a websocket client', async () => {
  const p = await srv.connected({ transports: ['polling'] });
  assert.equal(p.io.engine.transport.name, 'polling');
  const w = await srv.connected({ transports: ['websocket'] });
  await exchange(p, w, 'polling/ws');
  // A burst of replies on polling arrives complete and in order.
  const channelId = uuid();
  await joinChannel(p, { channelId });
  const texts = Array.from({ length: 30 }, (_, i) => `burst ${i}`);
  const seen = [];
  p.on('messageBroadcast', (m) => { if (m.channelId === channelId && !m.clientMessageId) seen.push(m.text); });
  const last = waitFor(p, 'messageBroadcast', (d) => d.text === texts.at(-1));
  for (const text of texts) w.emit('2', { channelId, message: text });
  await last;
  assert.deepEqual(seen, texts);
  assert.equal(p.io.engine.transport.name, 'polling', 'never upgraded');
});

test('websocket only: connects without polling, exchanges messages', async () => {
  const a = await srv.connected({ transports: ['websocket'] });
  const b = await srv.connected({ transports: ['websocket'] });
  assert.equal(a.io.engine.transport.name, 'websocket');
  await exchange(a, b, 'ws/ws');
});

test('default transports: starts on polling, upgrades to websocket, works before and after', async () => {
  const s = srv.connect({ transports: ['polling', 'websocket'] });
  const upgraded = waitFor(s.io.engine, 'upgrade', () => true, 10000);
  await waitFor(s, 'connect');
  const other = await srv.connected();
  const channelId = uuid();
  // Joined right away, most likely still on polling.
  await joinChannel(s, { channelId });
  await joinChannel(other, { channelId });
  const transport = await upgraded;
  assert.equal(transport.name, 'websocket');
  assert.equal(s.io.engine.transport.name, 'websocket');
  const got = waitFor(s, 'messageBroadcast', (d) => d.text === 'after upgrade');
  await send(other, { channelId, message: 'after upgrade' });
  assert.equal((await got).channelId, channelId);
  const back = waitFor(other, 'messageBroadcast', (d) => d.text === 'from upgraded');
  await send(s, { channelId, message: 'from upgraded' });
  await back;
});

test('socket.io-client v2 (Engine.IO v3): greeting, join with callback, receives and sends broadcasts', async () => {
  const old = connectV2();
  const established = waitFor(old, 'connection_established');
  const auth = waitFor(old, 'authenticated');
  const [e, a] = await Promise.all([established, auth]);
  assert.equal(e.message, CONNECTED_TEXT);
  assert.equal(e.socketId, old.id);
  assert.match(a.entityId, UUID_RE);
  const channelId = uuid();
  const joined = waitFor(old, 'channel_joined');
  const reply = await emitAckV2(old, 'message', { type: 1, payload: { channelId, entityId: a.entityId } });
  assert.deepEqual(reply, { success: true, channelId, roomId: channelId });
  assertScope(await joined, { channelId }, 'channel_joined (v2)');
  const modern = await srv.connected();
  await joinChannel(modern, { channelId });
  const got = waitFor(old, 'messageBroadcast', (d) => d.text === 'to the v2 client');
  const sent = await send(modern, { channelId, message: 'to the v2 client' });
  const m = await got;
  assert.equal(m.id, sent.messageId);
  assertScope(m, { channelId, serverId: DEFAULT_SERVER }, 'broadcast to v2');
  // And back: the v2 client sends, with its own copy, messageAck and the callback.
  const back = waitFor(modern, 'messageBroadcast', (d) => d.text === 'from the v2 client');
  const own = waitFor(old, 'messageBroadcast', (d) => d.clientMessageId === 'v2-1');
  const ack = waitFor(old, 'messageAck', (d) => d.clientMessageId === 'v2-1');
  const r = await emitAckV2(old, 'message', { type: 2, payload: { channelId, message: 'from the v2 client', messageId: 'v2-1' } });
  assert.equal(r.success, true);
  const [b, o, k] = await Promise.all([back, own, ack]);
  assert.equal(b.senderId, a.entityId);
  assert.equal(o.id, b.id);
  assert.equal(k.messageId, b.id);
});

for (const transports of [['polling'], ['websocket']]) {
  test(`socket.io-client v2 with transports ${JSON.stringify(transports)}`, async () => {
    const old = connectV2({ transports });
    await waitFor(old, 'connect');
    assert.equal(old.io.engine.transport.name, transports[0]);
    const channelId = uuid();
    const r = await emitAckV2(old, '1', { channelId });
    assert.equal(r.success, true);
    const modern = await srv.connected({ transports: ['polling'] });
    await joinChannel(modern, { channelId });
    const got = waitFor(old, 'messageBroadcast', (d) => d.text === `v2 ${transports[0]}`);
    await send(modern, { channelId, message: `v2 ${transports[0]}` });
    assert.equal((await got).channelId, channelId);
    // A refusal reaches a v2 client too.
    const err = waitFor(old, 'messageError');
    const bad = await emitAckV2(old, 'message', { type: 99, payload: {} });
    assert.equal(bad.success, false);
    assert.equal((await err).error, bad.error);
  });
}

test('one channel, every kind of client: each one receives every message once', async () => {
  const channelId = uuid();
  const clients = [
    await srv.connected({ transports: ['polling'] }),
    await srv.connected({ transports: ['websocket'] }),
    await srv.connected({ transports: ['polling', 'websocket'] }),
  ];
  const old = connectV2({ transports: ['polling'] });
  await waitFor(old, 'connect');
  for (const c of clients) await joinChannel(c, { channelId });
  await emitAckV2(old, 'message', { type: 1, payload: { channelId } });
  const all = [...clients, old];
  const seen = all.map((c) => {
    const texts = [];
    c.on('messageBroadcast', (m) => { if (m.channelId === channelId) texts.push(m.text); });
    return texts;
  });
  const expected = [];
  for (const [i, c] of all.entries()) {
    const text = `from client ${i}`;
    expected.push(text);
    const done = all.map((r) => waitFor(r, 'messageBroadcast', (d) => d.text === text));
    if (c === old) await emitAckV2(old, '2', { channelId, message: text });
    else await send(c, { channelId, message: text });
    await Promise.all(done);
  }
  for (const [i, texts] of seen.entries()) assert.deepEqual(texts, expected, `client ${i}`);
});

test('emitAck works for a v4 client on polling (callbacks over long-polling)', async () => {
  const p = await srv.connected({ transports: ['polling'] });
  const channelId = uuid();
  const r = await emitAck(p, 'message', { type: 1, payload: { channelId } });
  assert.deepEqual(r, { success: true, channelId, roomId: channelId });
});

test('stopping the server with members connected on every transport: clean exit, no panic', async () => {
  const own = await startServer();
  const channelId = uuid();
  for (const transports of [['websocket'], ['polling'], ['polling', 'websocket'], ['websocket'], ['polling']]) {
    const s = await own.connected({ transports });
    await joinChannel(s, { channelId });
  }
  await own.stop();
  const { code, signal } = await own.exited;
  assert.equal(signal, null, 'exited by itself on SIGTERM, not killed');
  assert.equal(code, 0);
  assert.doesNotMatch(own.stderr(), /panicked/);
});

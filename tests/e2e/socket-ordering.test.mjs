// Ordering: with several senders at once, every member of a channel sees the same sequence; each
// client's own messages keep their emit order, whatever dialect and transport it uses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, until, uuid } from './harness.mjs';
import { joinChannel } from './socket-util.mjs';

const srv = await startServer();
after(() => srv.stop());

/** `promise`, or a rejection after `ms`. */
function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Records this channel's broadcasts on a socket, in arrival order. */
function recordChannel(socket, channelId) {
  const seen = [];
  socket.on('messageBroadcast', (m) => { if (m.channelId === channelId) seen.push(m); });
  return seen;
}

test('several senders at once: every member sees the same order, and each sender its own emit order', async () => {
  const channelId = uuid();
  const PER_SENDER = 40;
  const transports = [['websocket'], ['websocket'], ['polling'], ['polling', 'websocket']];
  const senders = [];
  for (const [i, t] of transports.entries()) {
    senders.push({ name: `s${i}`, s: await srv.connected({ transports: t, auth: { entityId: uuid() } }) });
  }
  const listener = await srv.connected({ transports: ['polling'] });
  const members = [...senders.map((x) => x.s), listener];
  for (const s of members) await joinChannel(s, { channelId });
  const views = members.map((s) => recordChannel(s, channelId));
  const acks = senders.map(() => []);
  const total = PER_SENDER * senders.length;
  let allAcked;
  const acked = new Promise((resolve) => { allAcked = resolve; });
  // All senders emit their whole sequence without waiting (pipelined), interleaving on the server.
  for (let i = 0; i < PER_SENDER; i++) {
    for (const [k, { name, s }] of senders.entries()) {
      s.emit('message', { type: 2, payload: { channelId, message: `${name}:${i}`, messageId: `${name}:${i}` } },
        (reply) => {
          acks[k].push(reply);
          if (acks.every((a) => a.length === PER_SENDER)) allAcked();
        });
    }
  }
  await until(members, () => views.every((v) => v.length >= total), 20000);
  await bounded(acked, 5000, 'every acknowledgement callback');
  const ids = views.map((v) => v.map((m) => m.id));
  for (const [i, v] of ids.entries()) {
    assert.equal(v.length, total, `member ${i} got every message once`);
    assert.equal(new Set(v).size, total, `member ${i} got no duplicate`);
    assert.deepEqual(v, ids[0], `member ${i} sees the same order as member 0`);
  }
  // Stored order = delivered order: creation times never go backwards along it.
  const created = views[0].map((m) => m.createdAt);
  assert.ok(created.every((t, i) => i === 0 || created[i - 1] <= t), 'createdAt is non-decreasing');
  for (const [k, { name }] of senders.entries()) {
    const expected = Array.from({ length: PER_SENDER }, (_, i) => `${name}:${i}`);
    for (const [i, view] of views.entries()) {
      const mine = view.filter((m) => m.text.startsWith(`${name}:`)).map((m) => m.text);
      assert.deepEqual(mine, expected, `${name}'s messages in emit order as seen by member ${i}`);
    }
    // Its own copies carry its client ids, in order; callbacks are answered in the same order.
    const own = views[k].filter((m) => m.clientMessageId !== undefined).map((m) => m.clientMessageId);
    assert.deepEqual(own, expected, `${name}'s own copies`);
    assert.ok(acks[k].every((a) => a.success === true));
    assert.deepEqual(acks[k].map((a) => a.clientMessageId), expected, `${name}'s callbacks in emit order`);
    const ownIds = views[k].filter((m) => m.clientMessageId !== undefined).map((m) => m.id);
    assert.deepEqual(acks[k].map((a) => a.messageId), ownIds, `${name}'s callback ids match its copies`);
  }
});

test("one client's messages keep emit order across dialects (envelope 2, envelope 1+message, \"2\", \"1\", send_message)", async () => {
  const channelId = uuid();
  const sender = await srv.connected();
  const listener = await srv.connected({ transports: ['polling'] });
  await joinChannel(sender, { channelId });
  await joinChannel(listener, { channelId });
  const seen = recordChannel(listener, channelId);
  const forms = [
    (text) => sender.emit('message', { type: 2, payload: { channelId, message: text } }),
    (text) => sender.emit('message', { type: 1, payload: { channelId, message: text } }),
    (text) => sender.emit('2', { channelId, message: text }),
    (text) => sender.emit('1', { channelId, text }),
    (text) => sender.emit('send_message', { roomId: channelId, text }),
  ];
  const expected = [];
  for (let i = 0; i < 60; i++) {
    const text = `mixed ${i}`;
    expected.push(text);
    forms[i % forms.length](text);
  }
  await until(listener, () => seen.length >= expected.length, 10000);
  assert.deepEqual(seen.map((m) => m.text), expected);
});

test('messages to different channels from one client keep their relative order for a member of both', async () => {
  const [c1, c2] = [uuid(), uuid()];
  const sender = await srv.connected();
  const listener = await srv.connected();
  for (const c of [c1, c2]) {
    await joinChannel(sender, { channelId: c });
    await joinChannel(listener, { channelId: c });
  }
  const seen = [];
  listener.on('messageBroadcast', (m) => seen.push(m.text));
  const expected = [];
  for (let i = 0; i < 50; i++) {
    const channelId = i % 3 === 0 ? c2 : c1;
    const text = `${channelId === c1 ? 'one' : 'two'} ${i}`;
    expected.push(text);
    sender.emit('2', { channelId, message: text });
  }
  await until(listener, () => seen.length >= expected.length, 10000);
  assert.deepEqual(seen, expected);
});

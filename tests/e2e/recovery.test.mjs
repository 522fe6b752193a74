// Durability (ack after commit survives kill -9) and recovery (resume points, automatic rejoin).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer as start, waitFor, record, until, uuid, emitAck } from './harness.mjs';

// These tests send hundreds of messages from one entity: lift the per-entity message rate limit
// (security-limits.test.mjs tests it).
const startServer = (opts = {}) => start({ ...opts, env: { RATE_LIMIT_SOCKET_MESSAGES: '0', ...opts.env } });

const joinChannel = async (socket, payload) => {
  const joined = waitFor(socket, 'channel_joined', (d) => d.channelId === (payload.channelId ?? d.channelId));
  socket.emit('message', { type: 1, payload });
  return joined;
};

const send = (socket, channelId, text) =>
  emitAck(socket, 'message', { type: 2, payload: { channelId, message: text, messageId: uuid() } });

test('every acknowledged message survives kill -9 and a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-durable-'));
  try {
    const first = await startServer({ dataDir: dir });
    const channelId = uuid();
    const sender = await first.connected({ auth: { entityId: uuid() } });
    await joinChannel(sender, { channelId });
    // Pipelined sends; each ack promise resolves only after its commit.
    const acks = await Promise.all(Array.from({ length: 200 }, (_, i) => send(sender, channelId, `durable ${i}`)));
    assert.ok(acks.every((a) => a.success === true), 'all sends acknowledged');
    await first.kill9();
    assert.equal(first.proc.signalCode, 'SIGKILL');

    const second = await startServer({ dataDir: dir });
    try {
      const page = await second.http('GET', `/api/messaging/channels/${channelId}/messages?limit=500`);
      assert.equal(page.status, 200);
      const stored = new Set(page.json.data.messages.map((m) => m.id));
      const missing = acks.filter((a) => !stored.has(a.messageId));
      assert.deepEqual(missing, [], 'acknowledged messages missing after kill -9');
      // The same history replays over the socket.
      const reader = await second.connected();
      const got = record(reader, 'messageBroadcast');
      const joined = await joinChannel(reader, { channelId, since: 0 });
      assert.equal(joined.recovery.complete, true);
      assert.equal(joined.recovery.delivered, 200);
      assert.deepEqual(got.map((m) => m.id), acks.map((a) => a.messageId), 'replayed in stored order');
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a join with lastMessageId replays what was missed, then live, with no gap and no duplicate', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    const sent = [];
    for (let i = 0; i < 20; i++) sent.push((await send(writer, channelId, `before ${i}`)).messageId);

    const reader = await srv.connected();
    const got = record(reader, 'messageBroadcast');
    // Keep sending while the reader resumes from message 9.
    const live = Promise.all(Array.from({ length: 100 }, (_, i) => send(writer, channelId, `during ${i}`)));
    const joined = await joinChannel(reader, { channelId, lastMessageId: sent[9] });
    const liveAcks = await live;
    const expected = [...sent.slice(10), ...liveAcks.map((a) => a.messageId)];
    await until(reader, () => got.length >= expected.length);
    assert.deepEqual(got.map((m) => m.id), expected, 'exactly the messages after the resume point, in order');
    assert.equal(joined.recovery.complete, true);
    assert.ok(joined.recovery.delivered >= 10);
  } finally {
    await srv.stop();
  }
});

test('a join with since (epoch ms) replays messages stored after that time', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    const first = await send(writer, channelId, 'old');
    const later = [];
    for (let i = 0; i < 3; i++) later.push(await send(writer, channelId, `new ${i}`));
    const reader = await srv.connected();
    const got = record(reader, 'messageBroadcast');
    // Everything strictly after the first message's timestamp that is not the first message.
    const joined = await joinChannel(reader, { channelId, since: first.createdAt - 1 });
    assert.equal(joined.recovery.complete, true);
    assert.ok(got.map((m) => m.id).includes(first.messageId));
    assert.deepEqual(got.slice(-3).map((m) => m.id), later.map((a) => a.messageId));
    // ISO dates are accepted too.
    const iso = await srv.connected();
    const isoGot = record(iso, 'messageBroadcast');
    const isoJoined = await joinChannel(iso, { channelId, since: new Date(0).toISOString() });
    assert.equal(isoJoined.recovery.delivered, 4);
    assert.equal(isoGot.length, 4);
  } finally {
    await srv.stop();
  }
});

test('more missed messages than the resume limit: the newest are replayed and recovery says incomplete', async () => {
  const srv = await startServer({ args: ['--resume-limit', '3'] });
  try {
    const channelId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await send(writer, channelId, `m${i}`)).messageId);
    const reader = await srv.connected();
    const got = record(reader, 'messageBroadcast');
    const joined = await joinChannel(reader, { channelId, lastMessageId: ids[0] });
    assert.equal(joined.recovery.complete, false);
    assert.equal(joined.recovery.delivered, 3);
    assert.equal(joined.recovery.reason, 'limit_exceeded');
    assert.deepEqual(joined.recovery.from, { lastMessageId: ids[0] });
    assert.deepEqual(got.map((m) => m.id), ids.slice(3));
  } finally {
    await srv.stop();
  }
});

test('an unknown lastMessageId joins without replay and says recovery is incomplete', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    await send(writer, channelId, 'x');
    const reader = await srv.connected();
    const joined = await joinChannel(reader, { channelId, lastMessageId: uuid() });
    assert.equal(joined.recovery.complete, false);
    assert.equal(joined.recovery.delivered, 0);
    assert.equal(joined.recovery.reason, 'unknown_message');
    // It is a member all the same.
    const next = waitFor(reader, 'messageBroadcast', (m) => m.text === 'after');
    await send(writer, channelId, 'after');
    await next;
  } finally {
    await srv.stop();
  }
});

test('a client reconnecting with the same entityId is put back into its channels with what it missed', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const entityId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    const client = await srv.connected({ auth: { entityId } });
    await joinChannel(client, { channelId });
    const left = waitFor(writer, 'userLeft', (d) => d.entityId === entityId);
    client.disconnect();
    await left;
    const missed = [];
    for (let i = 0; i < 2; i++) missed.push((await send(writer, channelId, `while away ${i}`)).messageId);

    // Like the official web UI: reconnect and never join again.
    const back = srv.connect({ auth: { entityId } });
    const got = record(back, 'messageBroadcast');
    const rejoined = await waitFor(back, 'channel_joined', (d) => d.channelId === channelId);
    assert.equal(rejoined.rejoined, true);
    // The server knows what it handed to the old connection, not what arrived: the replay is
    // what was missed after that, and it does not claim more.
    assert.equal(rejoined.recovery.complete, false);
    assert.equal(rejoined.recovery.reason, 'unconfirmed');
    assert.equal(rejoined.recovery.delivered, 2);
    assert.deepEqual(got.map((m) => m.id), missed);
    const live = waitFor(back, 'messageBroadcast', (m) => m.text === 'welcome back');
    await send(writer, channelId, 'welcome back');
    await live;
  } finally {
    await srv.stop();
  }
});

test('a client without an entityId is not rejoined automatically', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const anon = await srv.connected();
    await joinChannel(anon, { channelId });
    anon.disconnect();
    const again = await srv.connected();
    const joinedEvents = record(again, 'channel_joined');
    // The connection's worker rejoins before it handles anything, so once a round trip on this
    // connection completes, a rejoin would already have arrived.
    const reply = await emitAck(again, 'typing', { channelId: uuid(), isTyping: false });
    assert.equal(reply.success, true);
    assert.equal(joinedEvents.length, 0);
  } finally {
    await srv.stop();
  }
});

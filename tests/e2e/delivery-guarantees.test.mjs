// Delivery guarantees under faults (issue 14, parts 1 and 2): a message id is an idempotency
// key (a resend on one connection, after a reconnect, or after kill -9 between commit and ack is
// stored once and acknowledged with the original id), and recovery replays what a connection
// was not sent, once, and says so when it cannot be sure. Runs on SQLite, and on PostgreSQL with
// CONFAB_TEST_DATABASE_URL (scripts/test does both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer as start, waitFor, record, until, uuid, emitAck } from './harness.mjs';
import { joinChannel } from './socket-util.mjs';

// Bursts from one entity: lift the per-entity message rate limit (tested elsewhere).
const startServer = (opts = {}) => start({ ...opts, env: { RATE_LIMIT_SOCKET_MESSAGES: '0', ...opts.env } });

const send = (socket, channelId, text, messageId, extra = {}) =>
  emitAck(socket, 'message', { type: 2, payload: { channelId, message: text, messageId, ...extra } }, 15000);

/** Every stored message of the channel, oldest first. */
async function history(srv, channelId) {
  const page = await srv.http('GET', `/api/messaging/channels/${channelId}/messages?limit=1000`);
  assert.equal(page.status, 200);
  return page.json.data.messages.slice().reverse();
}

test('the same messageId twice on one connection: stored and broadcast once, acknowledged twice with the same id, the second as a repeat', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const entityId = uuid();
    const sender = await srv.connected({ auth: { entityId } });
    const reader = await srv.connected();
    await joinChannel(sender, { channelId });
    await joinChannel(reader, { channelId });
    const seen = record(reader, 'messageBroadcast');
    const acks = record(sender, 'messageAck');

    const id = uuid();
    const first = await send(sender, channelId, 'once', id);
    const again = await send(sender, channelId, 'once', id);
    assert.equal(first.success, true);
    assert.equal(first.repeat, undefined, 'the first send is not a repeat');
    assert.equal(again.success, true);
    assert.equal(again.repeat, true);
    assert.equal(again.messageId, first.messageId);
    assert.equal(again.clientMessageId, id);
    assert.equal(again.createdAt, first.createdAt);

    // Two copies in flight at once (they usually share a group commit), under the other alias.
    const twin = uuid();
    const [a, b] = await Promise.all([
      emitAck(sender, 'message', { type: 2, payload: { channelId, message: 'twin', clientMessageId: twin } }),
      emitAck(sender, 'message', { type: 2, payload: { channelId, message: 'twin', clientMessageId: twin } }),
    ]);
    assert.equal(a.messageId, b.messageId);
    assert.deepEqual([a.repeat, b.repeat].sort(), [true, undefined].sort());

    // Another sender's id of the same spelling is another key.
    const other = await srv.connected({ auth: { entityId: uuid() } });
    const theirs = await send(other, channelId, 'not a repeat', id);
    assert.notEqual(theirs.messageId, first.messageId);
    assert.equal(theirs.repeat, undefined);

    const marker = waitFor(reader, 'messageBroadcast', (m) => m.text === 'end');
    await send(sender, channelId, 'end', uuid());
    await marker;
    assert.deepEqual(seen.map((m) => m.text), ['once', 'twin', 'not a repeat', 'end'], 'each broadcast once');
    await until(sender, () => acks.length >= 5);
    assert.deepEqual(acks.slice(0, 2).map((x) => [x.messageId, x.repeat]), [[first.messageId, undefined], [first.messageId, true]]);
    const stored = await history(srv, channelId);
    assert.deepEqual(stored.map((m) => m.content), ['once', 'twin', 'not a repeat', 'end']);
  } finally {
    await srv.stop();
  }
});

test('a resend after a reconnect, and over REST, is a repeat', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const entityId = uuid();
    const first = await srv.connected({ auth: { entityId } });
    await joinChannel(first, { channelId });
    const id = uuid();
    const original = await send(first, channelId, 'before the drop', id);
    first.disconnect();

    const second = await srv.connected({ auth: { entityId } });
    const resent = await send(second, channelId, 'before the drop', id);
    assert.equal(resent.repeat, true);
    assert.equal(resent.messageId, original.messageId);

    // REST: the body's messageId is the key, scoped to author_id.
    const body = { channel_id: channelId, message_server_id: '00000000-0000-0000-0000-000000000000', author_id: entityId, content: 'over http', messageId: 'rest-1', metadata: { targetAgentId: uuid() } };
    const post = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, body);
    assert.equal(post.status, 201, post.text);
    const repost = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, body);
    assert.equal(repost.status, 201, repost.text);
    assert.equal(repost.json.repeat, true);
    assert.equal(repost.json.userMessage.id, post.json.userMessage.id);
    const bad = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, { ...body, messageId: 'x'.repeat(257) });
    assert.equal(bad.status, 400);

    const stored = await history(srv, channelId);
    assert.deepEqual(stored.map((m) => m.content), ['before the drop', 'over http']);
  } finally {
    await srv.stop();
  }
});

test('kill -9 between commit and ack: resending every unacknowledged message after the restart stores each exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-once-'));
  try {
    const channelId = uuid();
    const entityId = uuid();
    const first = await startServer({ dataDir: dir });
    const sender = await first.connected({ auth: { entityId } });
    await joinChannel(sender, { channelId });
    const outbox = Array.from({ length: 300 }, (_, i) => ({ id: uuid(), text: `m${i}` }));
    const ackedBefore = new Map();
    sender.on('messageAck', (a) => ackedBefore.set(a.clientMessageId, a.messageId));
    const firstAck = waitFor(sender, 'messageAck', () => true, 10000);
    for (const m of outbox) sender.emit('message', { type: 2, payload: { channelId, message: m.text, messageId: m.id } });
    // Killed as soon as the first commit is acknowledged: later batches may be committed
    // (or not) with their acks never sent.
    await firstAck;
    await first.kill9();

    const second = await startServer({ dataDir: dir });
    try {
      const resender = await second.connected({ auth: { entityId } });
      const acks = [];
      for (const m of outbox) acks.push(await send(resender, channelId, m.text, m.id));
      assert.ok(acks.every((a) => a.success), 'every resend acknowledged');
      const stored = await history(second, channelId);
      assert.equal(stored.length, outbox.length, 'each message stored exactly once');
      assert.deepEqual(stored.map((m) => m.content), outbox.map((m) => m.text), 'in the order sent');
      assert.deepEqual(acks.map((a) => a.messageId), stored.map((m) => m.id), 'each ack names the stored message');
      for (const [clientId, messageId] of ackedBefore) {
        const i = outbox.findIndex((m) => m.id === clientId);
        assert.equal(acks[i].messageId, messageId, 'a message acknowledged before the kill keeps its id');
        assert.equal(acks[i].repeat, true);
      }
      const repeats = acks.filter((a) => a.repeat).length;
      assert.ok(repeats >= ackedBefore.size && ackedBefore.size > 0);
      console.log(`acknowledged before kill -9: ${ackedBefore.size}; stored before it: ${repeats}; stored by the resend: ${outbox.length - repeats}`);
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('since replays every message of that millisecond (a group commit shares one createdAt)', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    const acks = await Promise.all(Array.from({ length: 60 }, (_, i) => send(writer, channelId, `b${i}`, uuid())));
    const byTime = new Map();
    for (const a of acks) byTime.set(a.createdAt, (byTime.get(a.createdAt) || 0) + 1);
    const [shared] = [...byTime].find(([, n]) => n > 1) || [];
    assert.ok(shared !== undefined, 'a burst shares a millisecond');
    const expected = acks.filter((a) => a.createdAt >= shared).map((a) => a.messageId);

    const reader = await srv.connected();
    const got = record(reader, 'messageBroadcast');
    const joined = await joinChannel(reader, { channelId, since: shared });
    assert.equal(joined.recovery.complete, true);
    assert.deepEqual(joined.recovery.from, { since: shared });
    assert.equal(joined.recovery.delivered, expected.length);
    assert.deepEqual(got.map((m) => m.id), expected);
  } finally {
    await srv.stop();
  }
});

test('a dropped transport: the automatic rejoin and the client\'s own lastMessageId join give one channel_joined and every missed message once', async () => {
  const srv = await startServer();
  try {
    const channelId = uuid();
    const entityId = uuid();
    const writer = await srv.connected();
    await joinChannel(writer, { channelId });
    // A client like the web page: reconnects by itself and joins with the last id it saw.
    const client = srv.connect({ auth: { entityId }, reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50 });
    await waitFor(client, 'connect');
    const received = [];
    let last;
    client.on('messageBroadcast', (m) => { if (m.channelId === channelId) { received.push(m.id); last = m.id; } });
    const joinedEvents = [];
    client.on('channel_joined', (d) => joinedEvents.push(d));
    let ownJoin;
    client.on('connect', () => {
      ownJoin = emitAck(client, 'message', { type: 1, payload: { channelId, lastMessageId: last } }, 10000);
    });
    await joinChannel(client, { channelId });
    joinedEvents.length = 0;
    const before = [];
    for (let i = 0; i < 5; i++) before.push((await send(writer, channelId, `before ${i}`, uuid())).messageId);
    await until(client, () => received.length === 5);

    // The transport drops (not a clean disconnect); the server notices and remembers where it was.
    const left = waitFor(writer, 'userLeft', (d) => d.entityId === entityId);
    client.io.engine.close();
    await left;
    const missed = [];
    for (let i = 0; i < 10; i++) missed.push((await send(writer, channelId, `away ${i}`, uuid())).messageId);

    await until(client, () => received.length === 15, 10000);
    const reply = await ownJoin;
    const live = waitFor(client, 'messageBroadcast', (m) => m.text === 'live');
    await send(writer, channelId, 'live', uuid());
    await live;
    assert.equal(joinedEvents.length, 1, 'one channel_joined on the new connection');
    assert.equal(joinedEvents[0].rejoined, true);
    assert.deepEqual(received.slice(0, 5), before);
    assert.equal(new Set(received).size, received.length, 'no message twice');
    assert.deepEqual(received.slice(5, 15).sort(), missed.slice().sort(), 'every missed message');
    assert.equal(received.length, 16);
    // The client's own join is answered by its acknowledgement: exact, from its own point.
    assert.equal(reply.success, true);
    assert.equal(reply.recovery.complete, true);
    assert.deepEqual(reply.recovery.from, { lastMessageId: before.at(-1) });
    client.disconnect();
  } finally {
    await srv.stop();
  }
});

test('a stalled client that missed messages: the rejoin replays what it was never handed and says it is not complete; its own resume then fills any gap, once', async () => {
  // A queue of 64 packets, and a replay that fits in it.
  const srv = await startServer({ env: { CONFAB_SOCKET_BUFFER: '64', CONFAB_RESUME_LIMIT: '40' } });
  try {
    const channelId = uuid();
    const entityId = uuid();
    const sender = await srv.connected();
    const stalled = await srv.connected({ auth: { entityId } });
    await joinChannel(sender, { channelId });
    await joinChannel(stalled, { channelId });
    const got = [];
    stalled.on('messageBroadcast', (m) => { if (m.channelId === channelId) got.push(m.id); });
    const gone = waitFor(sender, 'userLeft', (d) => d.entityId === entityId, 30000);
    stalled.io.engine.transport.ws._socket.pause();

    // Send until the server finds its queue full and drops it, then a few more.
    const body = 'x'.repeat(32 * 1024);
    const all = [];
    const burst = async (n) => {
      const acks = await Promise.all(Array.from({ length: n }, (_, j) => send(sender, channelId, `${all.length + j} ${body}`, uuid())));
      all.push(...acks.map((a) => a.messageId));
    };
    const slowConsumers = async () =>
      Number((await srv.http('GET', '/metrics')).text.match(/confab_slow_consumers_total (\d+)/)?.[1] ?? 0);
    while ((await slowConsumers()) === 0) {
      assert.ok(all.length < 2000, 'the stalled client was never found slow');
      await burst(20);
    }
    await burst(10);
    // Reading again, it drains what reached it, until the server has closed it.
    stalled.io.engine.transport?.ws?._socket?.resume();
    await gone;
    stalled.disconnect();
    assert.ok(got.length < all.length, 'it missed messages');
    assert.deepEqual(got, all.slice(0, got.length), 'what it got is a prefix of the channel');

    const back = srv.connect({ auth: { entityId } });
    const replayed = [];
    back.on('messageBroadcast', (m) => { if (m.channelId === channelId) replayed.push(m.id); });
    const joinedEvents = record(back, 'channel_joined');
    const rejoined = await waitFor(back, 'channel_joined', (d) => d.channelId === channelId, 10000);
    assert.equal(rejoined.rejoined, true);
    assert.equal(rejoined.recovery.complete, false, 'never complete after drops');
    assert.equal(rejoined.recovery.reason, 'slow_consumer');
    assert.equal(typeof rejoined.recovery.from.sequence, 'number');
    assert.equal(rejoined.recovery.delivered, replayed.length);
    assert.ok(replayed.length >= 10, 'the messages sent after it was dropped are replayed');
    // The replay is the channel's tail after the point where deliveries to it stopped: nothing
    // missing after it, nothing it had before it.
    assert.deepEqual(replayed, all.slice(all.length - replayed.length));
    assert.ok(replayed.every((id) => !got.includes(id)), 'nothing it had is replayed');

    // The client knows what it got: its own resume fills whatever was lost in between (what
    // was queued for it when its transport closed), and nothing twice.
    const gap = all.length - got.length - replayed.length;
    const reply = await emitAck(back, 'message', { type: 1, payload: { channelId, lastMessageId: got.at(-1) } });
    assert.equal(reply.success, true);
    const lost = all.slice(got.length, got.length + gap);
    if (gap <= 40) {
      assert.equal(reply.recovery.complete, true);
      assert.equal(reply.recovery.delivered, gap);
    } else {
      // More was lost in its closed transport than one join replays: the newest of them.
      assert.equal(reply.recovery.complete, false);
      assert.equal(reply.recovery.reason, 'limit_exceeded');
      assert.equal(reply.recovery.delivered, 40);
      lost.splice(0, gap - 40);
    }
    await until(back, () => replayed.length >= all.length - got.length - gap + lost.length, 10000);
    assert.equal(new Set(replayed).size, replayed.length, 'no message twice');
    assert.deepEqual(replayed.slice(all.length - got.length - gap), lost, 'the lost ones, after the rejoin\'s replay');
    assert.deepEqual(got.concat(replayed).sort(), all.slice(0, got.length).concat(lost, all.slice(got.length + gap)).sort(), 'nothing twice');
    assert.equal(joinedEvents.length, 1, 'one channel_joined');
    console.log(`stalled client: sent ${all.length}, it got ${got.length} before the drop, the rejoin replayed ${rejoined.recovery.delivered}, its own resume ${reply.recovery.delivered} of ${gap} lost in between`);
  } finally {
    await srv.stop();
  }
});

test('a replay larger than the connection\'s queue keeps the newest that fit, says so, and the client stays connected', async () => {
  // A 64 KiB outgoing queue: a replay may carry 32 KiB. Forty 2 KB messages do not fit.
  const srv = await startServer({ env: { CONFAB_SOCKET_BUFFER_BYTES: String(64 * 1024), CONFAB_RESUME_LIMIT: '500' } });
  try {
    const channelId = uuid();
    const writer = await srv.connected({ auth: { entityId: uuid() } });
    await joinChannel(writer, { channelId });
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push((await send(writer, channelId, `${i} ${'x'.repeat(2000)}`, uuid())).messageId);

    const reader = await srv.connected({ auth: { entityId: uuid() } });
    const got = record(reader, 'messageBroadcast');
    const reply = await emitAck(reader, 'message', { type: 1, payload: { channelId, lastMessageId: ids[0] } }, 10000);
    const report = reply.recovery;
    assert.equal(report.complete, false, JSON.stringify(report));
    assert.equal(report.reason, 'limit_exceeded');
    assert.ok(report.delivered > 0 && report.delivered < 39, `delivered ${report.delivered} of 39`);
    await until(reader, () => got.length >= report.delivered, 10000);
    // The newest, in order, without a gap: the older ones are left to history paging.
    assert.deepEqual(got.map((m) => m.id), ids.slice(40 - report.delivered));
    // Not dropped as a slow consumer: the connection still works.
    assert.equal(reader.connected, true);
    const after = await send(writer, channelId, 'live after the replay', uuid());
    await until(reader, () => got.some((m) => m.id === after.messageId), 10000);
  } finally {
    await srv.stop();
  }
});

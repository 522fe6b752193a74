// Slow consumers (issue 5): a client that stops reading cannot stall a channel or grow the
// server's memory: its outgoing queue is bounded (CONFAB_SOCKET_BUFFER packets and
// CONFAB_SOCKET_BUFFER_BYTES bytes), past the bound its transport is closed, and it can
// reconnect and recover what it missed. (slow-consumer.test.mjs holds the bounds themselves.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, waitFor, until, uuid } from './harness.mjs';
import { joinChannel } from './socket-util.mjs';

const N = Number(process.env.SLOW_N || 1000);
const SIZE = Number(process.env.SLOW_KB || 64) * 1024;

// A resuming join's replay is queued at once: the server caps it at CONFAB_RESUME_LIMIT messages
// and at half the queue's byte bound (2 MiB by default), whichever is smaller. 24 x 64 KB is
// more than 1 MiB, so here the byte cap decides.
const RESUME_LIMIT = 24;

const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

test('one stalled client in a busy channel: everyone else gets every message, memory stays bounded, the stalled one is dropped and can resume', async () => {
  const srv = await startServer({
    env: {
      CONFAB_SOCKET_BUFFER: '64',
      CONFAB_PING_INTERVAL_MS: '2000',
      CONFAB_PING_TIMEOUT_MS: '5000',
      RATE_LIMIT_SOCKET_MESSAGES: '0',
      CONFAB_RESUME_LIMIT: String(RESUME_LIMIT),
    },
  });
  try {
    const channelId = uuid();
    const sender = await srv.connected({ auth: { entityId: uuid() } });
    const readers = [await srv.connected(), await srv.connected({ transports: ['polling'] })];
    const stalled = await srv.connected({ auth: { entityId: uuid() } });
    for (const s of [sender, ...readers, stalled]) await joinChannel(s, { channelId });
    const views = readers.map((s) => {
      const ids = [];
      s.on('messageBroadcast', (m) => { if (m.channelId === channelId) ids.push(m.id); });
      return ids;
    });
    const stalledIds = [];
    stalled.on('messageBroadcast', (m) => { if (m.channelId === channelId) stalledIds.push(m.id); });
    const stalledGone = waitFor(stalled, 'disconnect', () => true, 60000);
    const rssBefore = rssKb(srv.proc.pid);

    // Stop reading: the client's TCP socket is paused, so its kernel buffers fill, then the
    // server's queue for it.
    stalled.io.engine.transport.ws._socket.pause();

    const body = 'x'.repeat(SIZE);
    const acks = [];
    for (let i = 0; i < N; i += 20) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + 20); j++) {
        batch.push(sender.timeout(30000).emitWithAck('message', { type: 2, payload: { channelId, message: `${j} ${body}` } }));
      }
      acks.push(...await Promise.all(batch));
    }
    assert.ok(acks.every((a) => a.success), 'every send acknowledged');
    const all = acks.map((a) => a.messageId);
    await until(readers, () => views.every((v) => v.length >= N), 60000);
    for (const v of views) assert.deepEqual(v, all, 'a healthy member got every message, in order');

    const metrics = await srv.http('GET', '/metrics');
    const slow = Number(metrics.text.match(/confab_slow_consumers_total (\d+)/)?.[1] ?? 0);
    assert.equal(slow, 1, 'the stalled connection was dropped as a slow consumer');
    const grownMb = (rssKb(srv.proc.pid) - rssBefore) / 1024;
    const sentMb = (N * SIZE) / (1024 * 1024);
    // An unbounded queue for the stalled member alone would hold everything sent; the bound
    // holds CONFAB_SOCKET_BUFFER packets (64 x 64 KB = 4 MB). The rest is fixed overhead.
    assert.ok(grownMb < sentMb * 0.6, `server memory grew ${grownMb.toFixed(1)} MB for ${sentMb} MB sent`);

    // Reading again, the client drains what reached it and sees its transport closed (or its
    // own ping timer fired first while it was not reading): reasons a client reconnects after.
    stalled.io.engine.transport?.ws?._socket?.resume();
    const reason = await stalledGone;
    assert.ok(['transport close', 'ping timeout', 'transport error'].includes(reason), reason);
    console.log(`stalled client: got ${stalledIds.length} of ${N} before being dropped (${reason})`);
    assert.ok(stalledIds.length < N, 'it did not get everything before being dropped');
    assert.deepEqual(stalledIds, all.slice(0, stalledIds.length), 'what it got is a prefix of the channel');

    // Reconnect and resume from the last message it saw: the replay holds what it missed, up to
    // CONFAB_RESUME_LIMIT newest messages (kept below the queue bound here), and says whether
    // that was everything.
    const back = await srv.connected();
    const replayed = [];
    back.on('messageBroadcast', (m) => { if (m.channelId === channelId) replayed.push(m.id); });
    const last = stalledIds.at(-1);
    const joined = waitFor(back, 'channel_joined', (d) => d.channelId === channelId, 30000);
    back.emit('message', { type: 1, payload: { channelId, ...(last ? { lastMessageId: last } : { since: 0 }) } });
    const { recovery } = await joined;
    const missed = all.slice(stalledIds.length);
    // At most RESUME_LIMIT messages, and at most half the queue's byte bound (2 MiB by
    // default): the newest that fit.
    const fitting = Math.floor((1024 * 1024) / (SIZE + 512));
    const expected = missed.slice(-recovery.delivered);
    assert.ok(recovery.delivered > 0 && recovery.delivered <= Math.min(RESUME_LIMIT, fitting + 1), JSON.stringify(recovery));
    assert.equal(recovery.complete, missed.length === recovery.delivered);
    assert.equal(recovery.delivered, expected.length);
    await until(back, () => replayed.length >= expected.length, 30000);
    assert.deepEqual(replayed, expected, 'the newest missed messages, in order');
    // And it is a full member again.
    const live = waitFor(back, 'messageBroadcast', (m) => m.text === 'live again');
    await sender.timeout(5000).emitWithAck('message', { type: 2, payload: { channelId, message: 'live again' } });
    await live;
  } finally {
    await srv.stop();
  }
});

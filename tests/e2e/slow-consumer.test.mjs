// Slow consumers are closed at the transport, and what one can hold is bounded (issue 14,
// part 3). A client that stops reading fills its kernel buffers, then the server's websocket
// writer, then its outgoing queue; once the queue is full it is evicted: its transport is
// closed within a second whether or not it ever reads again, and a stock socket.io-client
// then reconnects by itself. The bound per stalled connection is documented in README
// ("Slow clients") and docs/deploy.md; these tests hold the server to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import WebSocket from 'ws';
import { startServer, waitFor, uuid } from './harness.mjs';
import { joinChannel } from './socket-util.mjs';

const KIB = 1024;
const MIB = 1024 * KIB;
// The documented bound (README, "Slow clients") for the queue set here.
const QUEUE_BYTES = 1 * MIB; // CONFAB_SOCKET_BUFFER_BYTES
const WS_WRITE_BUFFER = 128 * KIB; // the websocket writer's buffer (tungstenite's default)
const MESSAGE_BYTES = 32 * KIB;

const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const SEND_BUFFER = 64 * KIB; // --socket-send-buffer (Linux doubles it)

/** The socket inodes the server process holds open. */
const socketInodes = (pid) => new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => {
  try { return readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1]; } catch { return undefined; }
}).filter(Boolean));

/**
 * The server's end of the TCP connection from `clientPort` (IPv4 loopback), from the kernel's
 * table: its unsent bytes (`txQueue`) and whether the server process still holds it open.
 */
function serverEnd(pid, serverPort, clientPort) {
  const hexPort = (p) => p.toString(16).toUpperCase().padStart(4, '0');
  const row = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(`:${hexPort(serverPort)}`) && f[2]?.endsWith(`:${hexPort(clientPort)}`));
  if (!row) return { txQueue: 0, open: false };
  return { txQueue: parseInt(row[4].split(':')[0], 16), open: socketInodes(pid).has(row[9]) };
}
const metric = (text, name) => Number(text.match(new RegExp(`^${name} (\\d+)`, 'm'))?.[1] ?? 0);

/** Polls `cond` (async) every 100 ms until it holds; rejects after `ms`. */
async function eventually(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A raw Engine.IO v4 websocket that completes the Socket.IO handshake and joins `channelId`,
 * answering pings until it is told to stall. Resolves once the join is confirmed.
 */
async function rawMember(url, channelId) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const frames = [];
  let wake = () => {};
  ws.on('message', (data) => {
    const f = data.toString();
    if (f === '2') ws.send('3');
    frames.push(f);
    wake();
  });
  const closed = new Promise((resolve) => ws.on('close', resolve));
  ws.on('error', () => {});
  const next = (pred, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`raw websocket: no ${what}`)), 10000);
    const check = () => {
      const i = frames.findIndex(pred);
      if (i >= 0) { clearTimeout(timer); resolve(frames.splice(0, i + 1).at(-1)); } else wake = check;
    };
    check();
  });
  await next((f) => f.startsWith('0{'), 'Engine.IO open packet');
  ws.send(`40${JSON.stringify({ entityId: uuid() })}`);
  await next((f) => f.startsWith('40{'), 'Socket.IO CONNECT');
  ws.send(`42${JSON.stringify(['message', { type: 1, payload: { channelId } }])}`);
  await next((f) => f.startsWith('42["channel_joined"'), 'channel_joined');
  return {
    ws,
    closed,
    /** Stops reading: the TCP socket is paused, so nothing more is taken from the kernel. */
    stall() { ws._socket.pause(); },
  };
}

/** Sends to `channels` round-robin, in acknowledged batches, until `done()` (async) holds. */
async function flood(sender, channels, done, maxPerChannel) {
  const body = 'x'.repeat(MESSAGE_BYTES);
  for (let round = 0; round < maxPerChannel; round += 4) {
    const batch = [];
    for (const channelId of channels) {
      for (let j = 0; j < 4; j++) {
        batch.push(sender.timeout(60000).emitWithAck('message', { type: 2, payload: { channelId, message: `${round + j} ${body}` } }));
      }
    }
    const acks = await Promise.all(batch);
    assert.ok(acks.every((a) => a.success), 'every send acknowledged');
    if (await done()) return round + 4;
  }
  throw new Error(`still not done after ${maxPerChannel} messages per channel`);
}

test('stalled raw websockets are closed at the transport within seconds, and server memory stays within the documented bound', async () => {
  const N = 10;
  const srv = await startServer({
    env: { RATE_LIMIT_SOCKET_MESSAGES: '0', CONFAB_FSYNC: 'false', CONFAB_SOCKET_BUFFER_BYTES: String(QUEUE_BYTES) },
  });
  const pid = srv.proc.pid;
  try {
    const sender = await srv.connected({ auth: { entityId: uuid() } });
    // One channel each: nothing queued for one stalled member is shared with another's queue.
    const channels = Array.from({ length: N }, () => uuid());
    for (const channelId of channels) await joinChannel(sender, { channelId });
    // Warm the server's allocator with a round of the same traffic before the baseline.
    await flood(sender, channels, async () => true, 4);

    const serverPort = Number(new URL(srv.url).port);
    const members = [];
    for (const channelId of channels) members.push(await rawMember(srv.url, channelId));
    const ends = () => members.map((member) => serverEnd(pid, serverPort, member.ws._socket.localPort));
    assert.ok(ends().every((e) => e.open), 'the server holds every member connection');
    let m = (await srv.http('GET', '/metrics')).text;
    const connectionsBefore = metric(m, 'confab_connections');
    const rssBefore = rssKb(pid);

    for (const member of members) member.stall();
    const slow = async () => metric((await srv.http('GET', '/metrics')).text, 'confab_slow_consumers_total');
    const sent = await flood(sender, channels, async () => (await slow()) >= N, 2000);
    const kickedAt = Date.now();
    const rssAfter = rssKb(pid);
    // The kernel's share: what it holds unsent for each, within the send buffer.
    // (Linux doubles SO_SNDBUF, and its last write may add one 64 KiB segment past it.)
    const kernelBound = 2 * SEND_BUFFER + 64 * KIB;
    const kernelMax = Math.max(...ends().map((e) => e.txQueue));
    assert.ok(kernelMax <= kernelBound, `kernel send queue ${kernelMax} B, bound ${kernelBound} B`);

    // Closed at the transport, though none of them reads again: the server process no longer
    // holds their TCP sockets, and its connection count drops (generous bound: the websocket
    // writer's grace is 1 s).
    await eventually(() => ends().every((e) => !e.open), 15000, 'the stalled connections are closed');
    m = (await srv.http('GET', '/metrics')).text;
    assert.equal(metric(m, 'confab_connections'), connectionsBefore - N, 'the server let go of them');
    assert.equal(metric(m, 'confab_slow_consumers_total'), N);
    console.log(`${N} stalled websockets: ${sent} messages of ${MESSAGE_BYTES / KIB} KiB per channel until all were evicted; transports closed ${Date.now() - kickedAt} ms after the last eviction; largest kernel send queue ${kernelMax} B`);

    // What they held: at most the documented bound each (queue, plus one packet, plus the
    // websocket writer's buffer and one frame); the kernel's share is not in the RSS. The slack
    // covers the allocator and SQLite, not one more unbounded queue (32 MB each at 1,024
    // packets of 32 KiB).
    const perConnection = QUEUE_BYTES + WS_WRITE_BUFFER + 2 * (MESSAGE_BYTES + 256);
    const grownMb = (rssAfter - rssBefore) / 1024;
    const boundMb = (N * perConnection) / MIB + 24;
    console.log(`server RSS ${rssBefore} kB -> ${rssAfter} kB (+${grownMb.toFixed(1)} MB; bound ${boundMb.toFixed(1)} MB)`);
    assert.ok(grownMb < boundMb, `server memory grew ${grownMb.toFixed(1)} MB, bound ${boundMb.toFixed(1)} MB`);

    // Reading again, each sees what reached its kernel buffer, then the close.
    for (const member of members) member.ws._socket.resume();
    await Promise.all(members.map((member) => Promise.race([
      member.closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no close seen')), 15000)),
    ])));

    // The channel works for those who read.
    const reader = await srv.connected();
    await joinChannel(reader, { channelId: channels[0] });
    const live = waitFor(reader, 'messageBroadcast', (msg) => msg.text === 'still here');
    await sender.timeout(5000).emitWithAck('message', { type: 2, payload: { channelId: channels[0], message: 'still here' } });
    await live;
  } finally {
    await srv.stop();
  }
});

test('a stock socket.io-client that stalled is evicted, sees a transport close (not "io server disconnect") and reconnects and rejoins by itself', async () => {
  const srv = await startServer({ env: { RATE_LIMIT_SOCKET_MESSAGES: '0', CONFAB_FSYNC: 'false' } });
  try {
    const channelId = uuid();
    const sender = await srv.connected({ auth: { entityId: uuid() } });
    await joinChannel(sender, { channelId });
    // The default transports: long-polling first, then the upgrade to a websocket.
    const entityId = uuid();
    const client = srv.connect({ auth: { entityId }, transports: ['polling', 'websocket'], reconnection: true, reconnectionDelay: 100 });
    const upgraded = new Promise((resolve) => client.io.engine.once('upgrade', resolve));
    await waitFor(client, 'connect', () => true, 10000);
    await joinChannel(client, { channelId });
    await Promise.race([upgraded, new Promise((_, reject) => setTimeout(() => reject(new Error('no upgrade')), 10000))]);
    assert.equal(client.io.engine.transport.name, 'websocket');

    const reasons = [];
    client.on('disconnect', (reason) => reasons.push(reason));
    const gone = waitFor(client, 'disconnect', () => true, 60000);
    client.io.engine.transport.ws._socket.pause();
    const slow = async () => metric((await srv.http('GET', '/metrics')).text, 'confab_slow_consumers_total');
    await flood(sender, [channelId], async () => (await slow()) >= 1, 2000);
    await eventually(async () => metric((await srv.http('GET', '/metrics')).text, 'confab_connections') === 1, 15000, 'the stalled client is gone from the server');

    // It reads again: it takes what reached it, sees its transport close, and reconnects by
    // itself; the server puts it back into its channel.
    const rejoined = waitFor(client, 'channel_joined', (d) => d.channelId === channelId && d.rejoined === true, 30000);
    client.io.engine.transport.ws?._socket?.resume();
    const reason = await gone;
    assert.ok(['transport close', 'transport error'].includes(reason), `reconnecting reason, got ${reason}`);
    await waitFor(client, 'connect', () => true, 30000);
    await rejoined;
    assert.deepEqual(reasons, [reason], 'disconnected once');

    const live = waitFor(client, 'messageBroadcast', (msg) => msg.text === 'welcome back', 10000);
    await sender.timeout(5000).emitWithAck('message', { type: 2, payload: { channelId, message: 'welcome back' } });
    await live;
  } finally {
    await srv.stop();
  }
});

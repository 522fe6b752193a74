// Several confab nodes on one PostgreSQL and one Redis, started by the test on loopback:
// every message reaches every member on every node exactly once and in the same order; a node
// killed with -9 mid-traffic loses nothing acknowledged and its clients recover on another
// node; a Redis restart does not stop delivery; the agent answers once cluster-wide.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { until, uuid, emitAck, DEFAULT_SERVER } from './harness.mjs';
import { send } from './socket-util.mjs';
import { cluster, healthy, member, ids, freePort, waitPort } from './cluster-util.mjs';
import { ELIZA } from './agent-util.mjs';

/** A channel's stored history as a node lists it (REST), oldest first. */
async function history(node, channelId) {
  const res = await node.http('GET', `/api/messaging/central-channels/${channelId}/messages?limit=100`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json.data.messages.reverse();
}

// Each channel has one order (its offsets, assigned at commit): what every member sees live on
// every node, and what history lists on every node; creation times never go backwards along it.
test('three nodes: every member gets every message once, in one order, the order history lists', async () => {
  const c = await cluster(3);
  try {
    const channels = [uuid(), uuid()];
    const members = [];
    for (const ch of channels) {
      for (const node of c.nodes) members.push({ ch, ...(await member(node, ch)) });
    }
    const acked = new Map(channels.map((ch) => [ch, []]));
    let slowest = 0;
    await Promise.all(members.map(async (m, i) => {
      for (let k = 0; k < 15; k++) {
        const t0 = Date.now();
        const ack = await send(m.s, { channelId: m.ch, senderId: m.entity, message: `m${i}-${k}`, messageServerId: DEFAULT_SERVER }, 20000);
        slowest = Math.max(slowest, Date.now() - t0);
        assert.equal(ack.success, true, JSON.stringify(ack));
        acked.get(m.ch).push(ack.messageId);
      }
    }));
    console.log(`three nodes: slowest acknowledgement ${slowest} ms`);
    for (const ch of channels) {
      const inCh = members.filter((m) => m.ch === ch);
      const expected = acked.get(ch).length; // 3 senders × 15
      await until(inCh.map((m) => m.s), () => inCh.every((m) => m.got.length >= expected), 15000);
      const order = ids(inCh[0].got);
      assert.equal(new Set(order).size, expected, 'no duplicates');
      assert.deepEqual([...order].sort(), [...acked.get(ch)].sort(), 'every acknowledged message');
      for (const m of inCh) assert.deepEqual(ids(m.got), order, 'the same order on every node');
      for (const node of c.nodes) {
        const stored = await history(node, ch);
        assert.deepEqual(ids(stored), order, 'history lists the live order');
        const created = stored.map((m) => m.created_at ?? m.createdAt);
        assert.ok(created.every((t, i) => i === 0 || created[i - 1] <= t), `createdAt never goes back: ${created}`);
      }
    }
  } finally {
    await c.stop();
  }
});

test('kill -9 of a node mid-traffic: its client recovers on another node, nothing acked is lost', async () => {
  const c = await cluster(3);
  const [a, b, victim] = c.nodes;
  try {
    const ch = uuid();
    const sa = await member(a, ch);
    const sb = await member(b, ch);
    const watcher = await member(victim, ch);
    const acked = [];
    let stop = false;
    const senders = [sa, sb].map(async (m, i) => {
      for (let k = 0; !stop && k < 400; k++) {
        try {
          const ack = await send(m.s, { channelId: ch, senderId: m.entity, message: `t${i}-${k}`, messageServerId: DEFAULT_SERVER });
          if (ack.success) acked.push(ack.messageId);
        } catch { /* a send without ack is not counted */ }
      }
    });
    await until(watcher.s, () => watcher.got.length >= 40, 10000);
    await victim.kill9();
    const seen = watcher.got.slice();
    // The client reconnects to another node with the same entity and resumes from its last id.
    const again = await a.connected({ auth: { entityId: watcher.entity } });
    const got = [];
    again.on('messageBroadcast', (m) => { if (m.channelId === ch) got.push(m); });
    // The server may put it back by itself first (its departure is known cluster-wide, and
    // announced with its own `channel_joined`); the join's acknowledgement answers the resume.
    const j = await emitAck(again, 'message', { type: 1, payload: { channelId: ch, entityId: watcher.entity, messageServerId: DEFAULT_SERVER, lastMessageId: seen.at(-1).id } });
    assert.equal(j.recovery.complete, true);
    await until(again, () => got.length >= 20, 10000);
    stop = true;
    await Promise.all(senders);
    const all = [...ids(seen), ...ids(got)];
    await until(again, () => acked.every((id) => all.includes(id) || ids(got).includes(id)), 10000);
    const final = [...ids(seen), ...ids(got)];
    assert.equal(new Set(final).size, final.length, 'no duplicate across the failover');
    for (const id of acked) assert.ok(final.includes(id), `acknowledged ${id} reached the client`);
    const history = await a.http('GET', `/api/messaging/channels/${ch}/messages?limit=1000`);
    const stored = new Set(history.json.data.messages.map((m) => m.id));
    for (const id of acked) assert.ok(stored.has(id), 'acknowledged means stored');
  } finally {
    await c.stop();
  }
});

test('Redis restarts: delivery goes on (from storage), then resumes over Redis', async () => {
  const port = await freePort();
  const start = () => spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  let redis = start();
  await waitPort(port);
  const c = await cluster(2, { redis: `redis://127.0.0.1:${port}` });
  const [a, b] = c.nodes;
  try {
    const ch = uuid();
    const ma = await member(a, ch);
    const mb = await member(b, ch);
    const say = async (text) => (await send(ma.s, { channelId: ch, senderId: ma.entity, message: text, messageServerId: DEFAULT_SERVER })).messageId;
    const before = await say('before');
    await until(mb.s, () => ids(mb.got).includes(before), 5000);

    redis.kill('SIGKILL');
    await healthy(b, 'degraded');
    const during = await say('during the outage');
    await until(mb.s, () => ids(mb.got).includes(during), 10000);

    redis = start();
    await waitPort(port);
    await healthy(a);
    await healthy(b);
    const after = await say('after');
    await until(mb.s, () => ids(mb.got).includes(after), 5000);
    assert.deepEqual(ids(mb.got), [before, during, after], 'once each, in order');
  } finally {
    await c.stop();
    redis.kill('SIGKILL');
  }
});

test('the agent answers once, whichever node the message arrived on', async () => {
  const c = await cluster(3);
  try {
    const user = uuid();
    const dm = await c.nodes[0].http('GET', `/api/messaging/dm-channel?currentUserId=${user}&targetUserId=${ELIZA}`);
    const ch = dm.json.data.id;
    const members = [await member(c.nodes[0], ch, user), await member(c.nodes[1], ch), await member(c.nodes[2], ch)];
    const replies = (m) => m.got.filter((x) => x.senderId === ELIZA);
    for (const [i, text] of ['I am unhappy.', 'My mother hates me.'].entries()) {
      const origin = members[i]; // arrives on node 0, then on node 1
      await send(origin.s, { channelId: ch, senderId: user, message: text, messageServerId: DEFAULT_SERVER });
      await until(members.map((m) => m.s), () => members.every((m) => replies(m).length >= i + 1), 10000);
    }
    const history = await c.nodes[2].http('GET', `/api/messaging/channels/${ch}/messages?limit=50`);
    const agentReplies = history.json.data.messages.filter((m) => m.authorId === ELIZA);
    assert.equal(agentReplies.length, 2, 'one reply per message, cluster-wide');
    for (const m of members) assert.deepEqual(ids(replies(m)), ids(replies(members[0])));
  } finally {
    await c.stop();
  }
});

test('sessions and jobs work from any node', async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  try {
    const userId = uuid();
    const session = (await a.http('POST', '/api/messaging/sessions', { agentId: ELIZA, userId })).json;
    const sent = await b.http('POST', `/api/messaging/sessions/${session.sessionId}/messages`, { content: 'I am unhappy.', transport: 'http' });
    assert.equal(sent.status, 201, sent.text);
    assert.match(sent.json.agentResponse.text, /unhappy/);
    const page = await a.http('GET', `/api/messaging/sessions/${session.sessionId}/messages`);
    assert.equal(page.json.messages.length, 2);

    const job = (await a.http('POST', '/api/messaging/jobs', { userId, content: 'I need some help.' })).json;
    let seen;
    for (let i = 0; i < 100; i++) {
      seen = (await b.http('GET', `/api/messaging/jobs/${job.jobId}`)).json;
      if (seen.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen.status, 'completed', JSON.stringify(seen));
    assert.match(seen.result.message.content, /help/i);
  } finally {
    await c.stop();
  }
});

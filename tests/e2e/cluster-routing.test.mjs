// Interest-routed fan-out between nodes: a node receives another node's commits and events
// only for channels it has members in (Redis sharded pub/sub, one channel per confab channel),
// on one Redis and on a Redis Cluster the test starts on loopback ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until, uuid, DEFAULT_SERVER } from './harness.mjs';
import { send } from './socket-util.mjs';
import { REDIS, cluster, link, member, ids, shardSubscribers, redisCli, redisCluster } from './cluster-util.mjs';

test('a channel whose members are all on node A causes no traffic to node B', async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  try {
    const onlyA = uuid();
    const shared = uuid();
    const a1 = await member(a, onlyA);
    const a2 = await member(a, onlyA);
    const sa = await member(a, shared);
    const sb = await member(b, shared);
    assert.equal(shardSubscribers(REDIS, c.prefix, onlyA), 1, 'only node A subscribes to its channel');
    assert.equal(shardSubscribers(REDIS, c.prefix, shared), 2, 'both nodes subscribe to the shared one');

    const before = await link(b);
    const sent = [];
    for (let k = 0; k < 10; k++) {
      sent.push((await send(a1.s, { channelId: onlyA, senderId: a1.entity, message: `a${k}`, messageServerId: DEFAULT_SERVER })).messageId);
    }
    await until(a2.s, () => a2.got.length >= 10, 5000);
    assert.deepEqual(ids(a2.got), sent);
    // A message in the shared channel, after them: once node B has it, it would have had any
    // of the others too.
    const marker = (await send(sa.s, { channelId: shared, senderId: sa.entity, message: 'marker', messageServerId: DEFAULT_SERVER })).messageId;
    await until(sb.s, () => ids(sb.got).includes(marker), 5000);
    const after = await link(b);
    assert.equal(after.receivedCommits - before.receivedCommits, 1, 'node B received only the shared channel\'s commit');
    assert.equal(after.received - before.received, 1, 'and nothing else');

    // A member of that channel joins on node B: from then on node B receives it...
    const b1 = await member(b, onlyA);
    assert.equal(shardSubscribers(REDIS, c.prefix, onlyA), 2);
    const live = (await send(a1.s, { channelId: onlyA, senderId: a1.entity, message: 'now B is in', messageServerId: DEFAULT_SERVER })).messageId;
    await until(b1.s, () => ids(b1.got).includes(live), 5000);
    // ...until its last member there leaves.
    b1.s.disconnect();
    for (let i = 0; i < 200 && shardSubscribers(REDIS, c.prefix, onlyA) !== 1; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(shardSubscribers(REDIS, c.prefix, onlyA), 1, 'node B unsubscribed when its last member left');
  } finally {
    await c.stop();
  }
});

test('on a Redis Cluster: messages cross nodes, channels spread over the shards', async () => {
  const rc = await redisCluster(3);
  let c;
  try {
    c = await cluster(2, { redis: rc.url });
    const [a, b] = c.nodes;
    assert.equal((await link(a)).mode, 'cluster');
    const channels = Array.from({ length: 9 }, () => uuid());
    const pairs = [];
    for (const ch of channels) pairs.push({ ch, ma: await member(a, ch), mb: await member(b, ch) });
    for (const { ch, ma, mb } of pairs) {
      const fromA = (await send(ma.s, { channelId: ch, senderId: ma.entity, message: 'from A', messageServerId: DEFAULT_SERVER })).messageId;
      const fromB = (await send(mb.s, { channelId: ch, senderId: mb.entity, message: 'from B', messageServerId: DEFAULT_SERVER })).messageId;
      await until([ma.s, mb.s], () => ma.got.length >= 2 && mb.got.length >= 2, 5000);
      assert.deepEqual(ids(ma.got), [fromA, fromB]);
      assert.deepEqual(ids(mb.got), [fromA, fromB], 'the same order on both nodes');
    }
    // Each channel's subscriptions live on the shard that owns its slot; nine channels do not
    // all land on one shard (and each is subscribed by both nodes on its own shard).
    const shardsUsed = new Set();
    for (const ch of channels) {
      const owners = rc.ports.filter((p) => shardSubscribers(`redis://127.0.0.1:${p}`, c.prefix, ch) === 2);
      assert.equal(owners.length, 1, `channel ${ch} subscribed on exactly one shard`);
      shardsUsed.add(owners[0]);
    }
    assert.ok(shardsUsed.size > 1, 'channels spread over shards');
    // Presence reads across nodes through the cluster too.
    const present = await a.http('GET', `/api/messaging/channels/${channels[0]}/presence`);
    assert.deepEqual(present.json.data.entities.map((e) => e.entityId).sort(), [pairs[0].ma.entity, pairs[0].mb.entity].sort());
    assert.match(redisCli(`redis://127.0.0.1:${rc.ports[0]}`, 'CLUSTER', 'INFO'), /cluster_state:ok/);
  } finally {
    await c?.stop();
    rc.stop();
  }
});

// Cluster-wide presence: the presence route, userJoined / userLeft and the automatic rejoin see
// members on every node; a node killed with -9 loses its members within the presence TTL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, record, until, uuid, DEFAULT_SERVER } from './harness.mjs';
import { send } from './socket-util.mjs';
import { cluster, member, ids } from './cluster-util.mjs';

const TTL_MS = 1500;

async function present(node, ch) {
  const r = await node.http('GET', `/api/messaging/channels/${ch}/presence`);
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.json.data.entities.map((e) => [e.entityId, e.connections]));
}

/** Polls the presence route until `pred` holds (bounded). */
async function presentUntil(node, ch, pred, ms) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await present(node, ch);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`presence never matched within ${ms} ms: ${JSON.stringify(last)}`);
}

test('presence, userJoined and userLeft across nodes; a killed node\'s members expire', async () => {
  const c = await cluster(3, { env: { CONFAB_PRESENCE_TTL_MS: String(TTL_MS) } });
  const [a, b, victim] = c.nodes;
  try {
    const ch = uuid();
    const watcher = await member(a, ch);
    const joined = record(watcher.s, 'userJoined');
    const left = record(watcher.s, 'userLeft');
    const other = await member(b, ch);
    await until(watcher.s, () => joined.some((d) => d.entityId === other.entity), 5000);
    for (const node of [a, b]) {
      assert.deepEqual(await present(node, ch), { [watcher.entity]: 1, [other.entity]: 1 }, 'every node sees every member');
    }

    // One entity on two nodes: joined once, left once, cluster-wide.
    const twice = uuid();
    const onA = await member(a, ch, twice);
    await until(watcher.s, () => joined.some((d) => d.entityId === twice), 5000);
    const onB = await member(b, ch, twice);
    assert.deepEqual(await present(b, ch), { [watcher.entity]: 1, [other.entity]: 1, [twice]: 2 });
    onB.s.disconnect();
    await presentUntil(a, ch, (p) => p[twice] === 1, 5000);
    onA.s.disconnect();
    await until(watcher.s, () => left.some((d) => d.entityId === twice), 5000);
    // A message after both, on the watcher's own node: everything before it has arrived.
    await send(watcher.s, { channelId: ch, senderId: watcher.entity, message: 'sync', messageServerId: DEFAULT_SERVER });
    await presentUntil(b, ch, (p) => !(twice in p), 5000);
    assert.equal(joined.filter((d) => d.entityId === twice).length, 1, 'userJoined once cluster-wide');
    assert.equal(left.filter((d) => d.entityId === twice).length, 1, 'userLeft once cluster-wide');

    // A node killed outright: its members leave presence within the TTL (never refreshed again).
    const doomed = await member(victim, ch);
    await presentUntil(a, ch, (p) => p[doomed.entity] === 1, 5000);
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const t0 = Date.now();
    const after = await presentUntil(a, ch, (p) => !(doomed.entity in p), TTL_MS * 3);
    console.log(`killed node's member gone from presence after ${Date.now() - t0} ms (TTL ${TTL_MS} ms)`);
    assert.deepEqual(after, { [watcher.entity]: 1, [other.entity]: 1 });
  } finally {
    await c.stop();
  }
});

test('a client that reconnects to another node is put back into its channels', async () => {
  const c = await cluster(2, { env: { CONFAB_PRESENCE_TTL_MS: String(TTL_MS) } });
  const [a, b] = c.nodes;
  try {
    const ch = uuid();
    const stay = await member(a, ch);
    const mover = uuid();
    const first = await member(b, ch, mover);
    const left = record(stay.s, 'userLeft');
    const before = (await send(stay.s, { channelId: ch, senderId: stay.entity, message: 'before', messageServerId: DEFAULT_SERVER })).messageId;
    await until(first.s, () => ids(first.got).includes(before), 5000);
    first.s.disconnect();
    await until(stay.s, () => left.some((d) => d.entityId === mover), 5000);
    const missed = (await send(stay.s, { channelId: ch, senderId: stay.entity, message: 'while away', messageServerId: DEFAULT_SERVER })).messageId;

    // Back, on node A this time.
    const again = a.connect({ auth: { entityId: mover } });
    const got = [];
    again.on('messageBroadcast', (m) => { if (m.channelId === ch) got.push(m.id); });
    const rejoined = await waitFor(again, 'channel_joined', (d) => d.channelId === ch);
    assert.equal(rejoined.rejoined, true, 'put back by the server');
    assert.equal(rejoined.recovery.delivered, 1);
    assert.deepEqual(got, [missed], 'what it missed, replayed');
    const live = (await send(stay.s, { channelId: ch, senderId: stay.entity, message: 'live', messageServerId: DEFAULT_SERVER })).messageId;
    await until(again, () => got.includes(live), 5000);
    assert.deepEqual(got, [missed, live]);
    assert.deepEqual(await present(b, ch), { [stay.entity]: 1, [mover]: 1 });
  } finally {
    await c.stop();
  }
});

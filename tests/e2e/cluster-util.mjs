// Shared by the cluster tests: nodes on one PostgreSQL and one Redis (or a Redis Cluster the
// test starts), members, and the Redis side of the checks.
import { spawn, execFileSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, uuid, DEFAULT_SERVER } from './harness.mjs';
import { joinChannel } from './socket-util.mjs';

export const PG = process.env.CONFAB_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS = process.env.CONFAB_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** N nodes sharing a fresh schema and a fresh Redis prefix. */
export async function cluster(n, { redis = REDIS, env = {} } = {}) {
  const id = uuid().replaceAll('-', '').slice(0, 12);
  const prefix = `test-${id}`;
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startServer({
      env: {
        DATABASE_URL: PG, CONFAB_PG_SCHEMA: `cluster_${id}`, REDIS_URL: redis,
        CONFAB_REDIS_PREFIX: prefix, CONFAB_NODE_ID: `n${i}`, CONFAB_ELIZA_SEED: '3', ...env,
      },
    }));
  }
  // Every node subscribed before traffic starts.
  for (const node of nodes) await healthy(node);
  return { nodes, prefix, stop: () => Promise.all(nodes.map((s) => s.stop())) };
}

/** The node's cluster status once its link reports `want`. */
export async function healthy(node, want = 'ok') {
  for (let i = 0; i < 200; i++) {
    const h = await node.http('GET', '/health').catch(() => undefined);
    if (h?.json?.dependencies?.cluster?.redis === want) return h.json;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`node never reported cluster ${want}`);
}

/** The node's cluster counters (`/health`'s `dependencies.cluster`). */
export async function link(node) {
  return (await node.http('GET', '/health')).json.dependencies.cluster;
}

/** A member: connected to `node`, joined, recording the messages it receives. */
export async function member(node, channelId, entity = uuid()) {
  const s = await node.connected({ auth: { entityId: entity } });
  await joinChannel(s, { channelId, entityId: entity, messageServerId: DEFAULT_SERVER });
  const got = [];
  s.on('messageBroadcast', (m) => { if (m.channelId === channelId) got.push(m); });
  return { s, entity, got };
}

export const ids = (list) => list.map((m) => m.id);

export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

export async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const sock = connect(port, '127.0.0.1', () => { sock.end(); r(true); });
      sock.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`port ${port} never opened`);
}

/** `redis-cli` against a URL's host and port; its output, trimmed. */
export function redisCli(url, ...args) {
  const u = new URL(url);
  return execFileSync('redis-cli', ['-h', u.hostname, '-p', u.port || '6379', ...args], { encoding: 'utf8' }).trim();
}

/** How many nodes subscribe to a confab channel's sharded pub/sub channel. */
export function shardSubscribers(url, prefix, channelId) {
  const out = redisCli(url, 'PUBSUB', 'SHARDNUMSUB', `${prefix}:{${channelId}}`).split('\n');
  return Number(out[1]);
}

/** A Redis Cluster of `n` masters on free loopback ports, in temporary directories. */
export async function redisCluster(n = 3) {
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const dirs = [];
  const procs = ports.map((port) => {
    const dir = mkdtempSync(join(tmpdir(), 'confab-redis-cluster-'));
    dirs.push(dir);
    return spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir,
      '--save', '', '--appendonly', 'no',
    ], { stdio: 'ignore' });
  });
  for (const port of ports) await waitPort(port);
  execFileSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  for (const port of ports) {
    for (let i = 0; ; i++) {
      const info = redisCli(`redis://127.0.0.1:${port}`, 'CLUSTER', 'INFO');
      if (/cluster_state:ok/.test(info)) break;
      if (i > 400) throw new Error(`cluster node ${port} never became ok`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    ports,
    url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','),
    stop() {
      for (const p of procs) p.kill('SIGKILL');
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

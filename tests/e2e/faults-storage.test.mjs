// Storage outages fail fast and say so (issue 14, part 4).
//
// * A private PostgreSQL that the test starts on a free loopback port, stops mid-test and starts
//   again: sends during the outage get messageError and a failed acknowledgement within the
//   store timeout, /health answers 503 DEGRADED naming the database within about a second,
//   and after the restart sends succeed again and /health is 200, with no restart of confab.
//   Nothing acknowledged is missing from the history, nothing refused is in it.
// * A psql session holding the channel's row, which every append to the channel locks (a node
//   stalled mid-commit): sends fail within the bound instead of waiting on the lock, and work
//   once it is released.
// * SQLite on a small tmpfs that fills up: sends are refused with messageError, /health says
//   503 naming the store and the full disk; once space is freed, sends work again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, openSync, closeSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, waitFor, uuid, DEFAULT_SERVER } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';

/** The default store timeout (`CONFAB_STORE_TIMEOUT_MS`): what a send waits at most. */
const BOUND_MS = 2000;
/** Slack on top of the promise for a loaded test machine (the promise is the bound). */
const SLACK_MS = 3000;

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** Polls /health (each request itself timed) until `pred` holds, bounded. */
async function healthUntil(srv, pred, ms) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    const started = Date.now();
    last = await srv.http('GET', '/health').catch((e) => ({ error: e }));
    last.tookMs = Date.now() - started;
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`/health never matched within ${ms} ms; last: ${JSON.stringify(last?.json ?? last)}`);
}

/** Sends one message; resolves with its outcome: the ack, a messageError, and how long it took. */
async function attempt(socket, channelId, entity, text) {
  const messageId = uuid();
  const started = Date.now();
  const error = waitFor(socket, 'messageError', (e) => e.clientMessageId === messageId, BOUND_MS + SLACK_MS + 5000)
    .catch(() => undefined);
  const ack = await send(socket, { channelId, senderId: entity, message: text, messageId, messageServerId: DEFAULT_SERVER }, BOUND_MS + SLACK_MS + 5000);
  const tookMs = Date.now() - started;
  return { messageId, ack, tookMs, error: ack.success ? undefined : await error };
}

/** The ids of the messages `author` has stored in the channel. */
async function storedIds(srv, channelId, author) {
  const h = await srv.http('GET', `/api/messaging/channels/${channelId}/messages?limit=1000`);
  assert.equal(h.status, 200, `history: ${h.text}`);
  return new Set(h.json.data.messages.filter((m) => m.authorId === author).map((m) => m.id));
}

// ---- a private PostgreSQL ------------------------------------------------------------------

function pgBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : undefined;
}

/** Runs a PostgreSQL tool, as the `postgres` user when the test runs as root (PostgreSQL
 * refuses to run as root). */
function pgRun(bin, tool, args) {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 }).toString();
}

async function privatePostgres() {
  const bin = pgBin();
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'confab-pg-'));
  chmodSync(dir, 0o755);
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  pgRun(bin, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pg = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => pgRun(bin, 'pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']),
    stop: () => pgRun(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']),
    remove: () => {
      try { pg.stop(); } catch { /* already stopped */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  pg.start();
  return pg;
}

test('PostgreSQL stops mid-test: sends fail within the bound, /health says so, both recover', async (t) => {
  const pg = await privatePostgres();
  if (!pg) {
    t.skip('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
    return;
  }
  const srv = await startServer({ env: { DATABASE_URL: pg.url, CONFAB_PG_SCHEMA: 'faults' } });
  try {
    const entity = uuid();
    const channelId = uuid();
    const s = await srv.connected({ auth: { entityId: entity } });
    await joinChannel(s, { channelId, entityId: entity, messageServerId: DEFAULT_SERVER });
    const acked = [];
    const refused = [];
    const before = await attempt(s, channelId, entity, 'before the outage');
    assert.equal(before.ack.success, true, JSON.stringify(before.ack));
    acked.push(before.ack.messageId);
    const up = await srv.http('GET', '/health');
    assert.equal(up.status, 200);
    assert.equal(up.json.dependencies.storage, 'healthy');
    assert.equal(up.json.failing, undefined);

    pg.stop();
    // Several sends at once, the first of them in flight while the pool discovers the outage.
    const during = await Promise.all([1, 2, 3, 4, 5].map((i) => attempt(s, channelId, entity, `during ${i}`)));
    for (const r of during) {
      assert.equal(r.ack.success, false, `not stored, so not acknowledged: ${JSON.stringify(r.ack)}`);
      assert.match(r.ack.error, /storage unavailable/, r.ack.error);
      assert.ok(r.error, 'a messageError too');
      assert.match(r.error.error, /storage unavailable/);
      assert.ok(r.tookMs <= BOUND_MS + SLACK_MS, `answered in ${r.tookMs} ms (bound ${BOUND_MS} ms)`);
      refused.push(r.messageId);
    }
    t.diagnostic(`sends during the outage answered in ${during.map((r) => r.tookMs).join(', ')} ms`);
    // Once the outage is known, /health reports it at once, and sends fail fast.
    const started = Date.now();
    const down = await srv.http('GET', '/health');
    const tookMs = Date.now() - started;
    assert.equal(down.status, 503, JSON.stringify(down.json));
    assert.equal(down.json.status, 'DEGRADED');
    assert.equal(down.json.dependencies.storage, 'unhealthy');
    assert.equal(down.json.failing.storage.backend, 'postgres');
    assert.equal(typeof down.json.failing.storage.error, 'string');
    assert.ok(tookMs <= 1000 + SLACK_MS, `/health answered in ${tookMs} ms`);
    t.diagnostic(`/health during the outage: ${tookMs} ms, ${JSON.stringify(down.json.failing)}`);
    const fast = await attempt(s, channelId, entity, 'while known down');
    assert.equal(fast.ack.success, false);
    assert.ok(fast.tookMs <= BOUND_MS + SLACK_MS, `answered in ${fast.tookMs} ms`);
    refused.push(fast.messageId);
    // History is storage too: it fails (fast) rather than hanging.
    const history = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`);
    assert.ok(history.status >= 500, `history during the outage: ${history.status}`);

    pg.start();
    const back = await healthUntil(srv, (h) => h.status === 200, 20000);
    assert.equal(back.json.status, 'OK');
    assert.equal(back.json.dependencies.storage, 'healthy');
    assert.equal(back.json.failing, undefined);
    const after = await attempt(s, channelId, entity, 'after the outage');
    assert.equal(after.ack.success, true, JSON.stringify(after.ack));
    acked.push(after.ack.messageId);
    await waitFor(s, 'messageBroadcast', (m) => m.id === after.ack.messageId, 5000).catch(() => {});

    const stored = await storedIds(srv, channelId, entity);
    for (const id of acked) assert.ok(stored.has(id), `acknowledged ${id} is stored`);
    assert.equal(stored.size, acked.length, 'nothing refused was stored');
  } finally {
    await srv.stop();
    pg.remove();
  }
});

test('PostgreSQL down with no traffic: /health says 503 within about a second', async (t) => {
  const pg = await privatePostgres();
  if (!pg) {
    t.skip('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
    return;
  }
  const srv = await startServer({ env: { DATABASE_URL: pg.url, CONFAB_PG_SCHEMA: 'idle' } });
  try {
    assert.equal((await srv.http('GET', '/health')).status, 200);
    pg.stop();
    // A success proves storage alive for a second; after that, /health checks (bounded).
    const stopped = Date.now();
    const slowest = { ms: 0 };
    const down = await healthUntil(srv, (h) => {
      slowest.ms = Math.max(slowest.ms, h.tookMs);
      return h.status === 503;
    }, 1000 + 1000 + SLACK_MS);
    assert.equal(down.json.status, 'DEGRADED');
    assert.equal(down.json.failing.storage.backend, 'postgres');
    assert.ok(slowest.ms <= 1000 + SLACK_MS, `every /health answered within ${slowest.ms} ms`);
    assert.ok(Date.now() - stopped <= 2000 + SLACK_MS);
    t.diagnostic(`503 ${Date.now() - stopped} ms after the stop; slowest /health ${slowest.ms} ms`);
    pg.start();
    await healthUntil(srv, (h) => h.status === 200, 20000);
  } finally {
    await srv.stop();
    pg.remove();
  }
});

test('the bound is configurable: CONFAB_STORE_TIMEOUT_MS=300 answers sends well before the 2 s default', async (t) => {
  const pg = await privatePostgres();
  if (!pg) {
    t.skip('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
    return;
  }
  const srv = await startServer({ env: { DATABASE_URL: pg.url, CONFAB_PG_SCHEMA: 'bound', CONFAB_STORE_TIMEOUT_MS: '300' } });
  try {
    const entity = uuid();
    const channelId = uuid();
    const s = await srv.connected({ auth: { entityId: entity } });
    await joinChannel(s, { channelId, entityId: entity, messageServerId: DEFAULT_SERVER });
    assert.equal((await attempt(s, channelId, entity, 'before')).ack.success, true);
    pg.stop();
    // The first send after the stop finds the breaker closed: it waits out the bound itself.
    const r = await attempt(s, channelId, entity, 'first after the stop');
    assert.equal(r.ack.success, false, JSON.stringify(r.ack));
    assert.ok(r.error, 'a messageError too');
    assert.ok(r.tookMs < BOUND_MS, `answered in ${r.tookMs} ms: the configured 300 ms, not the 2000 ms default`);
    t.diagnostic(`first send after the stop answered in ${r.tookMs} ms: ${r.ack.error}`);
  } finally {
    await srv.stop();
    pg.remove();
  }
});

test('PostgreSQL holds the channel row for another session: sends fail within the bound, then recover', async (t) => {
  const pg = await privatePostgres();
  if (!pg) {
    t.skip('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
    return;
  }
  const srv = await startServer({ env: { DATABASE_URL: pg.url, CONFAB_PG_SCHEMA: 'locked' } });
  let psql;
  try {
    const entity = uuid();
    const channelId = uuid();
    const s = await srv.connected({ auth: { entityId: entity } });
    await joinChannel(s, { channelId, entityId: entity, messageServerId: DEFAULT_SERVER });
    const before = await attempt(s, channelId, entity, 'before the lock');
    assert.equal(before.ack.success, true);
    const other = uuid();
    await joinChannel(s, { channelId: other, entityId: entity, messageServerId: DEFAULT_SERVER });

    // A stalled session (another node stopped mid-commit) holding the row every append to the
    // channel locks.
    psql = spawn('psql', [pg.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const locked = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`psql did not take the lock: ${out}`)), 10000);
      psql.stdout.on('data', (d) => { out += d; if (out.includes('LOCKED')) { clearTimeout(timer); resolve(); } });
      psql.on('exit', (code) => { clearTimeout(timer); reject(new Error(`psql exited with ${code}: ${out}`)); });
    });
    psql.stdin.write(`BEGIN;\nSELECT last_offset FROM locked.channels WHERE id = '${channelId}' FOR UPDATE;\nSELECT 'LOCKED';\n`);
    await locked;

    const during = await Promise.all([1, 2, 3].map((i) => attempt(s, channelId, entity, `while locked ${i}`)));
    for (const r of during) {
      assert.equal(r.ack.success, false, JSON.stringify(r.ack));
      assert.match(r.ack.error, /storage unavailable/);
      assert.ok(r.error, 'a messageError too');
      assert.ok(r.tookMs <= BOUND_MS + SLACK_MS, `answered in ${r.tookMs} ms (bound ${BOUND_MS} ms)`);
    }
    t.diagnostic(`sends behind the lock answered in ${during.map((r) => r.tookMs).join(', ')} ms: ${during[0].ack.error}`);
    // The failures open the store's breaker: /health names PostgreSQL until its probe (a write
    // no append locks) proves the store alive again, which with per-channel locks it is.
    const down = await srv.http('GET', '/health');
    if (down.status === 503) assert.equal(down.json.failing.storage.backend, 'postgres');
    else assert.equal(down.status, 200, JSON.stringify(down.json));
    // Only this channel is held: another channel's sends go through while the lock stays
    // (once the breaker has closed again).
    let elsewhere;
    for (let i = 0; i < 40 && !elsewhere?.ack.success; i++) {
      elsewhere = await attempt(s, other, entity, `another channel ${i}`);
      if (!elsewhere.ack.success) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(elsewhere.ack.success, true, `another channel stays writable: ${JSON.stringify(elsewhere.ack)}`);

    psql.stdin.end('ROLLBACK;\n');
    await healthUntil(srv, (h) => h.status === 200, 15000);
    const after = await attempt(s, channelId, entity, 'after the lock');
    assert.equal(after.ack.success, true, JSON.stringify(after.ack));
    const stored = await storedIds(srv, channelId, entity);
    assert.deepEqual([...stored].sort(), [before.ack.messageId, after.ack.messageId].sort(), 'exactly the acknowledged ones');
  } finally {
    psql?.kill();
    await srv.stop();
    pg.remove();
  }
});

// ---- SQLite on a full disk -----------------------------------------------------------------

/** A small tmpfs, or why there cannot be one. */
function smallDisk(megabytes) {
  const dir = mkdtempSync(join(tmpdir(), 'confab-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { error: `cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): ${String(e.stderr || e.message).trim()}` };
  }
  return {
    dir,
    remove: () => {
      try { execFileSync('umount', [dir], { stdio: 'pipe' }); } catch { /* busy or gone */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes zeros into `path` until the filesystem is full; returns the bytes written. */
function fill(path) {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) {
      try {
        written += writeSync(fd, chunk);
      } catch (e) {
        if (e.code === 'ENOSPC') break;
        throw e;
      }
    }
    // The last few bytes.
    for (;;) {
      try { written += writeSync(fd, Buffer.alloc(512)); } catch { break; }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

test('SQLite on a disk that fills up: sends refused, /health 503 naming the store, recovery after space is freed', async (t) => {
  const disk = smallDisk(8);
  if (disk.error) {
    t.skip(disk.error);
    return;
  }
  const srv = await startServer({ dataDir: join(disk.dir, 'data') });
  try {
    const entity = uuid();
    const channelId = uuid();
    const s = await srv.connected({ auth: { entityId: entity } });
    await joinChannel(s, { channelId, entityId: entity, messageServerId: DEFAULT_SERVER });
    const acked = [];
    const first = await attempt(s, channelId, entity, 'before the disk fills');
    assert.equal(first.ack.success, true);
    acked.push(first.ack.messageId);

    const filler = join(disk.dir, 'filler');
    assert.ok(fill(filler) > 0);
    // Pages SQLite already holds can take a few more messages; keep sending until one fails.
    const text = 'x'.repeat(16 * 1024);
    let failed;
    for (let i = 0; i < 2000 && !failed; i++) {
      const r = await attempt(s, channelId, entity, `${i} ${text}`);
      if (r.ack.success) acked.push(r.ack.messageId);
      else failed = r;
    }
    assert.ok(failed, 'a send failed once the disk was full');
    t.diagnostic(`${acked.length - 1} sends stored on the full disk before one failed, in ${failed.tookMs} ms: ${failed.ack.error}`);
    assert.match(failed.ack.error, /full|disk/i, failed.ack.error);
    assert.ok(failed.error, 'with a messageError');
    assert.ok(failed.tookMs <= BOUND_MS + SLACK_MS, `answered in ${failed.tookMs} ms`);

    const down = await srv.http('GET', '/health');
    assert.equal(down.status, 503, JSON.stringify(down.json));
    assert.equal(down.json.status, 'DEGRADED');
    assert.equal(down.json.dependencies.storage, 'unhealthy');
    assert.equal(down.json.failing.storage.backend, 'sqlite');
    assert.match(down.json.failing.storage.error, /full/i);
    // Still refused while the disk stays full, and quickly.
    const again = await attempt(s, channelId, entity, 'still full');
    assert.equal(again.ack.success, false);
    assert.ok(again.tookMs <= BOUND_MS + SLACK_MS);
    assert.equal((await srv.http('GET', '/health')).status, 503, 'still down while the disk is full');

    rmSync(filler);
    await healthUntil(srv, (h) => h.status === 200, 15000);
    const after = await attempt(s, channelId, entity, 'after space was freed');
    assert.equal(after.ack.success, true, JSON.stringify(after.ack));
    acked.push(after.ack.messageId);

    const stored = await storedIds(srv, channelId, entity);
    for (const id of acked) assert.ok(stored.has(id), `acknowledged ${id} is stored`);
    assert.equal(stored.size, acked.length, 'nothing refused was stored');
  } finally {
    await srv.stop();
    disk.remove();
  }
});

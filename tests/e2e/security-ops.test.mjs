// Operations (issue 5): log streaming (ElizaOS's subscribe_logs / update_log_filters /
// log_stream, seed 004's set_log_filter / log_update, level names and numbers), GET
// /api/server/logs, GET /metrics in Prometheus format, JSON logs, graceful shutdown.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, record, until, uuid, emitAck } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';

const srv = await startServer({ env: { LOG_LEVEL: 'info' } });
after(() => srv.stop());

// A deprecated REST path logs a warning on every call: a log line on demand.
const warnOnce = () => srv.http('GET', '/api/messaging/central-servers');

test('subscribe_logs → log_stream {type:"log_entry", payload}; level filters by name and number; unsubscribe stops it', async () => {
  const s = await srv.connected();
  const confirmed = waitFor(s, 'log_subscription_confirmed');
  s.emit('subscribe_logs');
  assert.deepEqual(await confirmed, { subscribed: true, message: 'Successfully subscribed to log stream' });
  const entry = waitFor(s, 'log_stream', (d) => /DEPRECATED/.test(d.payload.msg));
  await warnOnce();
  const e = await entry;
  assert.equal(e.type, 'log_entry');
  assert.equal(e.payload.level, 40);
  assert.equal(typeof e.payload.time, 'number');
  assert.match(e.payload.src, /^confab/);

  for (const [level, passes] of [['error', false], [50, false], ['warn', true], ['40', true], [30, true], ['all', true]]) {
    const updated = await emitAck(s, 'update_log_filters', { level });
    assert.equal(updated.success, true);
    assert.deepEqual(updated.filters, { level });
    const seen = record(s, 'log_stream');
    await warnOnce();
    // Barrier: an info line logged after the warning (a new channel is auto-created at info).
    const probe = uuid();
    const barrier = waitFor(s, 'log_stream', (d) => JSON.stringify(d.payload).includes(probe) || d.payload.level < 40, 5000).catch(() => null);
    await send(s, { channelId: probe, message: 'log barrier' });
    if (level !== 'error' && level !== 50) await barrier;
    await new Promise((r) => setImmediate(r));
    const warned = seen.some((d) => /DEPRECATED/.test(d.payload.msg));
    if (passes) assert.ok(warned, `level ${JSON.stringify(level)} lets warnings through`);
    s.off('log_stream');
  }
  const unsub = await emitAck(s, 'unsubscribe_logs');
  assert.deepEqual(unsub, { subscribed: false, message: 'Successfully unsubscribed from log stream' });
});

test('an unknown level name lets nothing through; agentName filters on the entry field', async () => {
  const s = await srv.connected();
  await emitAck(s, 'subscribe_logs');
  const r = await emitAck(s, 'update_log_filters', { level: 'loudest', agentName: 'Eliza' });
  assert.deepEqual(r, { success: true, filters: { agentName: 'Eliza', level: 'loudest' } });
  const notSubscribed = await srv.connected();
  const nope = await emitAck(notSubscribed, 'update_log_filters', { level: 'warn' });
  assert.deepEqual(nope, { success: false, error: 'Not subscribed to log stream' });
});

test('seed 004: set_log_filter subscribes, validates, and adds log_update {id, timestamp, level, category, message}', async () => {
  const s = await srv.connected();
  const updatedEvent = waitFor(s, 'log_filters_updated');
  const reply = await emitAck(s, 'set_log_filter', { level: 'warn', category: 'confab_server' });
  assert.deepEqual(reply, { success: true, filters: { level: 'warn', category: 'confab_server' } });
  assert.deepEqual(await updatedEvent, reply);
  const update = waitFor(s, 'log_update', (d) => /DEPRECATED/.test(d.message));
  const stream = waitFor(s, 'log_stream', (d) => /DEPRECATED/.test(d.payload.msg));
  await warnOnce();
  const u = await update;
  await stream;
  assert.equal(u.level, 'warn');
  assert.match(u.category, /^confab_server/);
  assert.ok(!Number.isNaN(Date.parse(u.timestamp)));
  assert.equal(typeof u.id, 'string');
  const bad = await emitAck(s, 'set_log_filter', { level: 'shouting' });
  assert.equal(bad.success, false);
  assert.match(bad.error, /Unknown log level/);
});

test('GET /api/server/logs returns recent entries, filtered by level', async () => {
  await warnOnce();
  const r = await srv.http('GET', '/api/server/logs?level=warn&limit=5');
  assert.equal(r.status, 200);
  assert.ok(r.json.logs.length >= 1 && r.json.logs.length <= 5);
  assert.ok(r.json.logs.every((e) => e.level >= 40));
  assert.ok(r.json.logs.some((e) => /DEPRECATED/.test(e.msg)));
});

test('GET /metrics: Prometheus text with connections, joins, messages, deliveries, errors, storage and agent metrics', async () => {
  const a = await srv.connected();
  const b = await srv.connected();
  const channelId = uuid();
  await joinChannel(a, { channelId });
  await joinChannel(b, { channelId });
  const got = waitFor(b, 'messageBroadcast', (m) => m.text === 'count me');
  await send(a, { channelId, message: 'count me' });
  await got;
  a.emit('no_such_event', {});
  await waitFor(a, 'messageError');
  const r = await srv.http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  const value = (re) => Number(r.text.match(re)?.[1] ?? NaN);
  assert.ok(value(/^confab_connections (\d+)/m) >= 2);
  assert.ok(value(/^confab_connections_total (\d+)/m) >= 2);
  assert.ok(value(/^confab_joins_total (\d+)/m) >= 2);
  assert.ok(value(/^confab_messages_in_total (\d+)/m) >= 1);
  assert.ok(value(/^confab_messages_out_total (\d+)/m) >= 1);
  assert.ok(value(/^confab_deliveries_total (\d+)/m) >= 2);
  assert.ok(value(/^confab_rooms (\d+)/m) >= 1);
  assert.ok(value(/^confab_errors_total\{kind="unknown_event"\} (\d+)/m) >= 1);
  assert.ok(value(/^confab_store_commit_seconds_count (\d+)/m) >= 1);
  assert.ok(value(/^confab_store_batch_size_count (\d+)/m) >= 1);
  assert.match(r.text, /# TYPE confab_store_commit_seconds histogram/);
  assert.match(r.text, /# HELP confab_agent_run_seconds/);
});

test('/metrics is for operators when auth is on: the operator key, not the API key front ends carry', async () => {
  const keyed = await startServer({ env: { ELIZA_SERVER_AUTH_TOKEN: 'mk', CONFAB_ADMIN_KEY: 'ops-key' } });
  try {
    assert.equal((await keyed.http('GET', '/metrics')).status, 401);
    assert.equal((await keyed.http('GET', '/metrics', undefined, { authorization: 'Bearer mk' })).status, 403);
    assert.equal((await keyed.http('GET', '/metrics', undefined, { 'x-api-key': 'mk' })).status, 403);
    assert.equal((await keyed.http('GET', '/metrics', undefined, { authorization: 'Bearer ops-key' })).status, 200);
    const r = await keyed.http('GET', '/metrics', undefined, { 'x-api-key': 'ops-key' });
    assert.equal(r.status, 200);
    // The refusals above are counted by kind.
    assert.match(r.text, /confab_refusals_total\{kind="unauthenticated"\} [1-9]/);
    assert.match(r.text, /confab_refusals_total\{kind="operator_only"\} [2-9]/);
  } finally {
    await keyed.stop();
  }
});

test('LOG_FORMAT=json (or --log-format json) writes one JSON object per line', async () => {
  for (const opts of [{ env: { LOG_FORMAT: 'json', LOG_LEVEL: 'info' } }, { args: ['--log-format', 'json'], env: { LOG_LEVEL: 'info' } }]) {
    const j = await startServer(opts);
    try {
      await j.http('GET', '/api/messaging/central-servers');
      // The warning reaches the pipe on its own schedule: wait for it (bounded).
      await new Promise((resolve, reject) => {
        const check = () => { if (/"WARN"/.test(j.stderr())) { clearTimeout(timer); j.proc.stderr.off('data', check); resolve(); } };
        const timer = setTimeout(() => { j.proc.stderr.off('data', check); reject(new Error(`no WARN line in 5000 ms:\n${j.stderr()}`)); }, 5000);
        j.proc.stderr.on('data', () => setImmediate(check));
        check();
      });
      const lines = j.stderr().trim().split('\n').filter(Boolean);
      assert.ok(lines.length >= 2);
      const parsed = lines.map((l) => JSON.parse(l));
      assert.ok(parsed.some((l) => l.level === 'INFO' && l.fields?.message === 'ready'));
      assert.ok(parsed.some((l) => l.level === 'WARN'));
    } finally {
      await j.stop();
    }
  }
});

test('graceful shutdown: SIGTERM tells clients to reconnect, exits 0 promptly, and every acknowledged message is in the history after a restart', async () => {
  const server = await startServer({ env: { RATE_LIMIT_SOCKET_MESSAGES: '0' } });
  try {
    const channelId = uuid();
    const s = await server.connected({ auth: { entityId: uuid() } });
    await joinChannel(s, { channelId });
    const acked = [];
    const pending = [];
    // Messages in flight when the signal arrives: each either gets its ack (then it must be
    // stored) or not.
    const emit = (i) => pending.push(s.timeout(8000).emitWithAck('message', { type: 2, payload: { channelId, message: `m${i}` } })
      .then((r) => { if (r.success) acked.push(r.messageId); }, () => {}));
    for (let i = 0; i < 150; i++) emit(i);
    await until(s, () => acked.length >= 50, 10000);
    server.proc.kill('SIGTERM');
    for (let i = 150; i < 300; i++) emit(i);
    const notice = waitFor(s, 'server_shutdown', () => true, 8000).catch(() => null);
    const reason = await waitFor(s, 'disconnect', () => true, 8000);
    assert.equal(reason, 'transport close', 'a transport close, so socket.io clients reconnect by themselves');
    const n = await notice;
    if (n) assert.equal(n.reconnect, true);
    const { code } = await server.exited;
    assert.equal(code, 0);
    await Promise.all(pending);
    assert.ok(acked.length >= 50, `acknowledged before shutdown: ${acked.length}`);
    const again = await startServer({ dataDir: server.dir });
    try {
      const page = await again.http('GET', `/api/messaging/channels/${channelId}/messages?limit=500`);
      const stored = new Set(page.json.data.messages.map((m) => m.id));
      assert.deepEqual(acked.filter((id) => !stored.has(id)), [], 'every acknowledged message was stored');
    } finally {
      await again.stop();
    }
  } finally {
    await server.stop();
  }
});

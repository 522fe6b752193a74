// Robustness (issue 5): 10,000 random and malformed payloads over real sockets — wrong types,
// huge strings, deep nesting, lone surrogates (invalid UTF-16/UTF-8), unknown events, binary
// attachments, oversized frames. The server never panics, every payload gets its error (an
// acknowledgement, success:false for all but the few that happen to be valid) or the
// protocol's disconnect (oversized frames only), and a well-formed message afterwards works.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, uuid } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';

const TOTAL = 10_000;
const SOCKETS = 8;
const WINDOW = 32;

const srv = await startServer({
  env: { RATE_LIMIT_SOCKET_MESSAGES: '0', RATE_LIMIT_SOCKET_JOINS: '0', CONFAB_MAX_CHANNELS_PER_CONNECTION: '0' },
});
after(() => srv.stop());

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = Number(process.env.FUZZ_SEED || 20261122);
const rnd = prng(SEED);
const int = (n) => Math.floor(rnd() * n);
const pick = (xs) => xs[int(xs.length)];

const KNOWN = ['message', '0', '1', '2', 'join_channel', 'room_joining', 'send_message', 'leave_channel', 'typing',
  'subscribe_logs', 'unsubscribe_logs', 'update_log_filters', 'set_log_filter'];
const FIELDS = ['type', 'payload', 'channelId', 'roomId', 'messageServerId', 'serverId', 'senderId', 'entityId', 'userId',
  'message', 'text', 'messageId', 'metadata', 'attachments', 'isTyping', 'lastMessageId', 'since', 'level', 'agentName', 'source'];

function scalar() {
  switch (int(12)) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return int(2 ** 31) - 2 ** 30;
    case 3: return rnd() * 1e308 * (rnd() < 0.5 ? -1 : 1);
    case 4: return '';
    case 5: return uuid();
    case 6: return '\ud800' + 'x'.repeat(int(10)); // a lone surrogate: not valid UTF-8 once on the wire
    case 7: return 'x'.repeat(int(rnd() < 0.05 ? 200_000 : 300));
    case 8: return String.fromCharCode(...Array.from({ length: int(20) }, () => int(0xffff)));
    case 9: return [];
    case 10: return {};
    default: return 'not-a-uuid';
  }
}
function value(depth = 0) {
  if (depth > 3 || rnd() < 0.4) return scalar();
  if (rnd() < 0.3) return Array.from({ length: int(4) }, () => value(depth + 1));
  const o = {};
  for (let i = int(5); i > 0; i--) o[rnd() < 0.8 ? pick(FIELDS) : `k${int(100)}`] = value(depth + 1);
  return o;
}
const deep = (n) => { let v = 1; for (let i = 0; i < n; i++) v = { a: v }; return v; };

/** One malformed (or, rarely, accidentally valid) payload: [kind, event, args]. */
function payload() {
  const r = int(100);
  if (r < 8) return ['unknown event', `evt_${int(1e6)}_${'z'.repeat(int(50))}`, [value()]];
  if (r < 14) return ['binary', pick(KNOWN), [{ channelId: uuid(), message: 'bin', blob: Buffer.from([1, 2, 3, int(255)]) }]];
  if (r < 19) return ['deep nesting', pick(KNOWN), [{ type: 2, payload: { channelId: uuid(), message: 'deep', metadata: deep(200 + int(3000)) } }]];
  if (r < 25) return ['no argument', pick(KNOWN), []];
  if (r < 30) return ['extra arguments', pick(KNOWN), [value(), value(), value()]];
  if (r < 45) return ['wrong envelope', 'message', [{ type: pick([0, 1, 2, 3, '1', null, 2.5, {}, []]), payload: value() }]];
  if (r < 60) {
    // Near-valid sends with one field of a wrong type.
    const p = { channelId: uuid(), message: 'near valid', senderId: uuid(), messageServerId: '00000000-0000-0000-0000-000000000000' };
    p[pick(['channelId', 'message', 'senderId', 'messageServerId', 'metadata', 'attachments'])] = pick([null, 42, true, [], {}, '', '\ud800']);
    return ['wrong field type', pick(['send_message', '2', 'message']), [pick(['message']) === 'message' && rnd() < 0.5 ? { type: 2, payload: p } : p]];
  }
  return ['random value', pick(KNOWN), [value()]];
}

test(`${TOTAL} random and malformed payloads over real sockets: no crash, an answer for each, good messages still work`, async () => {
  const counts = { sent: 0, rejected: 0, accepted: 0, lostToDisconnect: 0, oversized: 0, disconnects: 0 };
  const byKind = {};
  const plan = Array.from({ length: TOTAL }, () => payload());
  // A handful of frames over the 1,000,000-byte limit: the protocol's answer is a disconnect.
  for (let i = 0; i < 5; i++) plan[int(TOTAL)] = ['oversized frame', 'message', [{ type: 2, payload: { channelId: uuid(), message: 'o'.repeat(1_100_000) } }]];

  let next = 0;
  async function worker() {
    while (next < plan.length) {
      const s = await srv.connected({ auth: { entityId: uuid() } });
      const inFlight = new Set();
      let closed = false;
      const gone = new Promise((resolve) => s.once('disconnect', () => { closed = true; resolve(); }));
      while (next < plan.length && !closed) {
        const [kind, event, args] = plan[next++];
        byKind[kind] = (byKind[kind] || 0) + 1;
        if (kind === 'oversized frame') counts.oversized++;
        counts.sent++;
        const p = new Promise((resolve) => {
          s.timeout(20_000).emit(event, ...args, (err, reply) => {
            if (err) {
              if (closed) counts.lostToDisconnect++;
              else throw new Error(`no answer for ${kind} ${event}`);
            } else if (reply && (reply.success === true || typeof reply.subscribed === 'boolean')) counts.accepted++;
            else {
              assert.equal(reply?.success, false, `${kind}: ${JSON.stringify(reply)?.slice(0, 200)}`);
              assert.equal(typeof reply.error, 'string');
              counts.rejected++;
            }
            resolve();
          });
        });
        inFlight.add(p);
        p.then(() => inFlight.delete(p));
        if (inFlight.size >= WINDOW) await Promise.race([Promise.race(inFlight), gone]);
      }
      await Promise.race([Promise.all(inFlight), gone]);
      if (closed) {
        counts.disconnects++;
        // Acknowledgements that can no longer come: the payloads went down with the connection.
        await Promise.all(inFlight);
      } else {
        s.close();
      }
    }
  }
  await Promise.all(Array.from({ length: SOCKETS }, worker));

  console.log(`fuzz seed ${SEED}: ${JSON.stringify(counts)}`);
  console.log(`fuzz kinds: ${JSON.stringify(byKind)}`);
  assert.equal(counts.sent, TOTAL);
  assert.equal(counts.rejected + counts.accepted + counts.lostToDisconnect, TOTAL, 'every payload got an answer or went down with its connection');
  assert.ok(counts.disconnects <= counts.oversized, 'only oversized frames cost a connection');
  assert.ok(counts.rejected > TOTAL * 0.8, 'nearly all were refused');
  assert.equal(srv.proc.exitCode, null, 'the server is still running');
  assert.doesNotMatch(srv.stderr(), /panicked/);

  // A well-formed message afterwards still works.
  const a = await srv.connected();
  const b = await srv.connected();
  const channelId = uuid();
  await joinChannel(a, { channelId });
  await joinChannel(b, { channelId });
  const got = waitFor(b, 'messageBroadcast', (m) => m.text === 'still fine');
  assert.equal((await send(a, { channelId, message: 'still fine' })).success, true);
  await got;
  assert.equal((await srv.http('GET', '/healthz')).status, 200);
});

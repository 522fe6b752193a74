// Bad input: every malformed payload gets a messageError (and a failed acknowledgement callback
// when one is used), is delivered to nobody, and leaves the connection working: a good message on
// the SAME connection goes through afterwards. A frame over 1,000,000 bytes closes the
// connection as Socket.IO does, and the server keeps serving everyone else.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, record, emitAck, uuid } from './harness.mjs';
import { joinChannel, send, disconnected, JOIN_REQUIRED, SEND_REQUIRED } from './socket-util.mjs';

const srv = await startServer();
after(() => srv.stop());

const channelId = uuid();
const victim = await srv.connected({ auth: { entityId: uuid() } });
const witness = await srv.connected();
await joinChannel(victim, { channelId });
await joinChannel(witness, { channelId });
const delivered = record(witness, 'messageBroadcast');

let goods = 0;
/** A good message from the victim still reaches the witness, and nothing else did before it. */
async function goodMessageStillWorks(label) {
  const text = `good after ${label} #${goods++}`;
  const before = delivered.length;
  const got = waitFor(witness, 'messageBroadcast', (d) => d.text === text);
  const r = await send(victim, { channelId, message: text });
  assert.equal(r.success, true, `a good send after ${label}`);
  await got; // sent after the bad input by the same client, so delivered after anything it caused
  assert.deepEqual(delivered.slice(before).map((m) => m.text), [text], `nothing was delivered for ${label}`);
  assert.equal(victim.connected, true);
}

const nested = (depth) => JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
const INVALID = /^Invalid payload: /;
const ENVELOPE = /^Invalid message envelope/;

// [label, event, payload, expected error (string or RegExp)]
const cases = [
  // non-object envelopes
  ['envelope: a string', 'message', 'hello', ENVELOPE],
  ['envelope: a number', 'message', 42, ENVELOPE],
  ['envelope: null', 'message', null, ENVELOPE],
  ['envelope: true', 'message', true, ENVELOPE],
  ['envelope: an array', 'message', [1, 2], ENVELOPE],
  ['envelope: an array holding a valid envelope', 'message', [{ type: 1, payload: { channelId } }], ENVELOPE],
  ['envelope: an empty object', 'message', {}, ENVELOPE],
  ['envelope: missing payload', 'message', { type: 2 }, ENVELOPE],
  ['envelope: missing type', 'message', { payload: { channelId, message: 'x' } }, ENVELOPE],
  // unknown types
  ['envelope: type 3 (MESSAGE)', 'message', { type: 3, payload: { channelId, message: 'x' } }, 'Unknown message type: 3'],
  ['envelope: type 99', 'message', { type: 99, payload: { channelId } }, 'Unknown message type: 99'],
  ['envelope: type "x"', 'message', { type: 'x', payload: { channelId } }, 'Unknown message type: "x"'],
  ['envelope: type null', 'message', { type: null, payload: { channelId } }, 'Unknown message type: null'],
  ['envelope: type 1.5', 'message', { type: 1.5, payload: { channelId } }, 'Unknown message type: 1.5'],
  ['envelope: type {}', 'message', { type: {}, payload: { channelId } }, 'Unknown message type: {}'],
  // non-object payloads
  ['envelope payload: a string', 'message', { type: 2, payload: 'text' }, INVALID],
  ['envelope payload: an array', 'message', { type: 2, payload: [channelId, 'x'] }, INVALID],
  ['envelope payload: null', 'message', { type: 2, payload: null }, INVALID],
  ['envelope payload: a number', 'message', { type: 1, payload: 5 }, INVALID],
  ['"2": a number', '2', 7, INVALID],
  ['"2": an array', '2', [{ channelId, message: 'x' }], INVALID],
  ['"2": no argument at all', '2', undefined, INVALID],
  ['send_message: a string', 'send_message', 'hi', INVALID],
  // wrong field types
  ['send: channelId a number', '2', { channelId: 5, message: 'x' }, INVALID],
  ['send: channelId an object', '2', { channelId: { id: channelId }, message: 'x' }, INVALID],
  ['send: message a number', '2', { channelId, message: 123 }, INVALID],
  ['send: message an object', '2', { channelId, message: { text: 'x' } }, INVALID],
  ['send: text an array', '2', { channelId, text: ['x'] }, INVALID],
  ['send: metadata a number', '2', { channelId, message: 'x', metadata: 3 }, INVALID],
  ['send: metadata a string', '2', { channelId, message: 'x', metadata: 'meta' }, INVALID],
  ['send: metadata an array', '2', { channelId, message: 'x', metadata: [1] }, INVALID],
  ['send: senderId a number', '2', { channelId, message: 'x', senderId: 42 }, INVALID],
  ['send: messageServerId a boolean', '2', { channelId, message: 'x', messageServerId: true }, INVALID],
  ['send: messageId an object', '2', { channelId, message: 'x', messageId: { id: 1 } }, INVALID],
  // missing or empty required fields
  ['send: empty message', '2', { channelId, message: '' }, SEND_REQUIRED],
  ['send: no message or text', '2', { channelId, senderId: uuid() }, SEND_REQUIRED],
  ['send: missing channel', '2', { message: 'to nowhere' }, SEND_REQUIRED],
  ['send: empty channelId', '2', { channelId: '', message: 'x' }, SEND_REQUIRED],
  ['send: blank channelId', '2', { channelId: '   ', message: 'x' }, SEND_REQUIRED],
  ['send: null channelId', '2', { channelId: null, message: 'x' }, SEND_REQUIRED],
  ['envelope send: empty object payload', 'message', { type: 2, payload: {} }, SEND_REQUIRED],
  ['join: no channel', 'message', { type: 1, payload: { entityId: uuid() } }, JOIN_REQUIRED],
  ['join "1": empty payload', '1', {}, JOIN_REQUIRED],
  ['join_channel: roomId a number', 'join_channel', { roomId: 12 }, INVALID],
  ['join: since not a date', 'join_channel', { channelId, since: 'yesterday' }, INVALID],
  ['join: lastMessageId a number', 'join_channel', { channelId, lastMessageId: 5 }, INVALID],
  ['leave_channel: no channel', 'leave_channel', {}, 'channelId is required.'],
  ['leave_channel: not a member', 'leave_channel', { channelId: uuid() }, /^Not a member of channel /],
  ['typing: no channel', 'typing', { isTyping: true }, 'channelId is required.'],
  ['typing: isTyping a string', 'typing', { channelId, isTyping: 'yes' }, INVALID],
  // unknown event names
  ['unknown event "foo"', 'foo', { channelId }, 'Unknown event: foo'],
  ['unknown event "join"', 'join', { channelId }, 'Unknown event: join'],
  ['unknown event "leave"', 'leave', { channelId }, 'Unknown event: leave'],
  ['unknown event "3"', '3', { channelId, message: 'x' }, 'Unknown event: 3'],
  ['unknown event "ack"', 'ack', { success: true }, 'Unknown event: ack'],
  ['unknown event "userTyping"', 'userTyping', { channelId }, 'Unknown event: userTyping'],
  ['unknown event with a long name', 'e'.repeat(5000), {}, `Unknown event: ${'e'.repeat(5000)}`],
  // payloads the JSON layer cannot hold
  ['send: metadata nested 1000 deep', '2', { channelId, message: 'deep', metadata: nested(1000) }, /^Invalid payload: .*recursion limit/],
  ['envelope: payload nested 500 deep', 'message', { type: 2, payload: { channelId, message: 'deep', metadata: { a: nested(500) } } }, /^Invalid payload: .*recursion limit/],
  ['send: binary payload', '2', Buffer.from('not json'), INVALID],
  ['send: binary inside the payload', '2', { channelId, message: 'bin', attachments: [Buffer.from([1, 2, 3])] }, INVALID],
  ['send: text with a lone surrogate', '2', { channelId, message: 'broken \ud800 text' }, INVALID],
];

const matches = (error, expected) => (expected instanceof RegExp ? expected.test(error) : error === expected);

for (const [label, event, payload, expected] of cases) {
  test(`${label}: messageError, failed callback, then a good message works`, async () => {
    const args = payload === undefined ? [] : [payload];
    // Without a callback: the messageError alone.
    const err = waitFor(victim, 'messageError');
    victim.emit(event, ...args);
    const first = await err;
    assert.ok(matches(first.error, expected), `messageError ${JSON.stringify(first.error)} should match ${expected}`);
    // With a callback: {success:false, error} and the same messageError.
    const err2 = waitFor(victim, 'messageError');
    const reply = await victim.timeout(5000).emitWithAck(event, ...args);
    assert.equal(reply.success, false);
    assert.equal(reply.error, first.error);
    assert.equal((await err2).error, first.error);
    await goodMessageStillWorks(label);
  });
}

test('moderately nested metadata (50 levels) is accepted', async () => {
  const got = waitFor(witness, 'messageBroadcast', (d) => d.text === 'nested 50');
  const r = await send(victim, { channelId, message: 'nested 50', metadata: nested(50) });
  assert.equal(r.success, true);
  assert.equal((await got).id, r.messageId);
  await goodMessageStillWorks('nested 50');
});

test('awkward but valid text round-trips exactly: unicode, emoji, NUL, newlines, JSON-looking', async () => {
  for (const text of ['ünïcødé ✓ 日本語 עברית', '😀👍🏽👨‍👩‍👧', 'nul\u0000inside', 'line1\nline2\r\n\ttab', '{"type":2,"payload":{}}', ' padded ']) {
    const got = waitFor(witness, 'messageBroadcast', (d) => d.text === text);
    const r = await send(victim, { channelId, message: text });
    assert.equal(r.success, true, JSON.stringify(text));
    assert.equal((await got).text, text);
  }
  await goodMessageStillWorks('awkward text');
});

for (const transports of [['websocket'], ['polling']]) {
  const kind = transports[0];
  test(`${kind}: huge text under the 1,000,000-byte limit is delivered whole`, async () => {
    const s = await srv.connected({ transports });
    await joinChannel(s, { channelId });
    const text = `${kind}:${'x'.repeat(990_000)}`;
    const got = waitFor(witness, 'messageBroadcast', (d) => d.text.length === text.length && d.text.startsWith(`${kind}:`), 15000);
    const r = await send(s, { channelId, message: text }, 15000);
    assert.equal(r.success, true);
    assert.equal((await got).text, text);
    // The same connection keeps working.
    const small = waitFor(witness, 'messageBroadcast', (d) => d.text === `${kind} small after huge`);
    await send(s, { channelId, message: `${kind} small after huge` });
    await small;
  });

  test(`${kind}: a frame over 1,000,000 bytes closes that connection; the server serves everyone else`, async () => {
    const s = await srv.connected({ transports });
    await joinChannel(s, { channelId });
    const reasons = [];
    s.on('disconnect', (reason) => reasons.push(reason));
    const closed = disconnected(s, 10000);
    const text = `oversized ${kind}:${'y'.repeat(1_000_000)}`;
    s.emit('2', { channelId, message: text });
    await closed;
    assert.equal(s.connected, false);
    assert.ok(['transport close', 'transport error'].includes(reasons[0]), `closed by the server, not the client: ${reasons[0]}`);
    // Others are unaffected, and the oversized message was not delivered.
    await goodMessageStillWorks(`oversized frame over ${kind}`);
    assert.ok(!delivered.some((m) => m.text.startsWith(`oversized ${kind}:`)), 'the oversized message was not delivered');
    // New connections are served too.
    const fresh = await srv.connected({ transports });
    const got = waitFor(witness, 'messageBroadcast', (d) => d.text === `fresh after ${kind} oversize`);
    await send(fresh, { channelId, message: `fresh after ${kind} oversize` });
    await got;
  });
}

test('the victim connection took every bad payload above and is still the same connection', async () => {
  assert.equal(victim.connected, true);
  const id = victim.id;
  await goodMessageStillWorks('the whole battery');
  assert.equal(victim.id, id);
});

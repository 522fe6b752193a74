// Shared helpers for the socket-*.test.mjs files: ElizaOS's stringToUuid, payload shape checks,
// and join/send wrappers that wait (bounded) for the replies they expect.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { waitFor, emitAck, DEFAULT_SERVER } from './harness.mjs';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const CONNECTED_TEXT = 'Connected to Eliza Socket.IO server';
export const JOIN_REQUIRED = 'channelId is required for joining.';
export const SEND_REQUIRED =
  'For SEND_MESSAGE: channelId, messageServerId (message_server_id), senderId (author_id), and message are required.';
export const ACK_STATUS = 'received_by_server_and_processing';

/** ElizaOS's `stringToUuid` (@elizaos/core), written independently of the server's copy. */
export function stringToUuid(s) {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)) return s.toLowerCase();
  const b = createHash('sha1').update(encodeURIComponent(s)).digest().subarray(0, 16);
  b[8] = (b[8] & 0x3f) | 0x80;
  b[6] &= 0x0f;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Every channel-scoped payload names the channel under both names, and the server under both. */
export function assertScope(p, { channelId, roomId = channelId, serverId = DEFAULT_SERVER }, what = 'payload') {
  assert.equal(p.channelId, channelId, `${what}.channelId`);
  assert.equal(p.roomId, roomId, `${what}.roomId`);
  assert.equal(p.messageServerId, serverId, `${what}.messageServerId`);
  assert.equal(p.serverId, serverId, `${what}.serverId`);
}

/** Runs `emit` and resolves with both join replies, which must be identical. */
export async function expectJoined(socket, emit, pred = () => true, ms = 5000) {
  const channel = waitFor(socket, 'channel_joined', pred, ms);
  const room = waitFor(socket, 'room_joined', pred, ms);
  emit();
  const [c, r] = await Promise.all([channel, room]);
  assert.deepEqual(r, c, 'room_joined repeats channel_joined');
  return c;
}

/** Joins with the ElizaOS envelope (type 1) and waits for `channel_joined` naming that channel. */
export function joinChannel(socket, payload) {
  const name = payload.channelId ?? payload.roomId;
  const expected = UUID_RE.test(name) ? name : stringToUuid(name);
  return expectJoined(socket, () => socket.emit('message', { type: 1, payload }), (d) => d.channelId === expected);
}

/** Sends with the ElizaOS envelope (type 2) and an acknowledgement callback. */
export function send(socket, payload, ms = 5000) {
  return emitAck(socket, 'message', { type: 2, payload }, ms);
}

/** Resolves once `socket` is disconnected, with the reason. */
export function disconnected(socket, ms = 5000) {
  if (!socket.connected) return Promise.resolve('already disconnected');
  return waitFor(socket, 'disconnect', () => true, ms);
}

// The Socket.IO connection and its recovery: connect with backoff, rejoin every channel of mine
// after a reconnect with the last message id seen (the server replays what was missed), and hand
// every inbound event to the message store. One join per channel per connection.
import { io } from 'socket.io-client';
import { $ } from './util.js';
import { SERVER, me, channels, agents, profile, view } from './state.js';
import { upsert, fromBroadcast, remove, clear } from './messages.js';
import { actions, pill, log, notice, refresh, renderMessages, updateComposer, setBusy } from './views.js';
import { pump, mark, requeue } from './outbox.js';

let socket = null;

export const connected = () => !!socket?.connected;

/** Joins `c` on this connection, once: a second call on the same connection sends nothing. */
export function join(c) {
  if (!socket?.connected || c.joinedOn === socket.id) return;
  c.joinedOn = socket.id;
  const payload = { channelId: c.id, roomId: c.id, entityId: me, messageServerId: SERVER };
  if (c.lastId) payload.lastMessageId = c.lastId;
  socket.emit('message', { type: 1, payload });
}

/** Sends one message over the socket; the ack adopts the server id. */
export function sendOverSocket(c, m) {
  const payload = {
    channelId: c.id, roomId: c.id, messageServerId: SERVER,
    senderId: me, senderName: profile.name, message: m.text,
    messageId: m.id, source: c.kind === 'DM' ? 'client_chat' : 'client_group_chat',
    attachments: m.attachments?.length ? m.attachments : undefined,
    metadata: c.kind === 'DM' && c.agentId ? { channelType: 'DM', isDm: true, targetUserId: c.agentId } : { channelType: 'GROUP' },
  };
  socket.timeout(10000).emit('message', { type: 2, payload }, (err, ack) => {
    if (err) {
      // No answer (the connection dropped, or the server is slow): it may be stored already.
      // Sent again with the same messageId, it is stored once at most; the server answers a
      // repeat with the original's acknowledgement.
      requeue(c.id, m.id);
      return;
    }
    if (!ack?.success) {
      mark(c.id, m.id, 'failed', ack?.error);
      return;
    }
    // The ack can come before the echo: adopt the server id now; the echo then de-duplicates.
    if (c.msgs.has(m.id)) {
      upsert(c.id, { ...c.msgs.get(m.id), id: ack.messageId, clientMessageId: m.id, createdAt: ack.createdAt || m.createdAt, local: false, status: 'sent' });
      refresh(c.id);
    }
  });
}

export function connect() {
  pill('st-socket', 'wait', 'Connecting…');
  socket = io(location.origin, {
    auth: { entityId: me },
    transports: ['websocket', 'polling'],
    reconnection: true,
    reconnectionAttempts: 5,
    reconnectionDelay: 1000, // 1 s × 2ⁿ (seed 000), randomised ±20% by socket.io-client
    reconnectionDelayMax: 16000,
    timeout: 20000,
  });
  socket.onAny((name, data) => log('↓', name, data));
  socket.onAnyOutgoing((name, data) => log('↑', name, data));
  socket.on('connect', () => {
    log('•', 'connect', { id: socket.id });
    pill('st-socket', 'on', 'Connected · real time');
    $('offline').hidden = true;
    $('reconnect').hidden = true;
    // Rejoin every channel of mine; `lastMessageId` makes the server replay what was missed.
    for (const c of channels.values()) { c.busy = false; join(c); }
    updateComposer();
    pump();
  });
  socket.on('disconnect', (reason) => {
    log('•', 'disconnect', reason);
    pill('st-socket', 'error', 'Offline');
    $('offline').hidden = false;
    if (reason === 'io server disconnect') socket.connect();
  });
  socket.on('connect_error', (err) => {
    log('•', 'connect_error', err.message);
    pill('st-socket', 'error', `Offline: ${err.message}`);
  });
  socket.io.on('reconnect_attempt', (n) => {
    log('•', 'reconnect_attempt', n);
    pill('st-socket', 'wait', `Reconnecting (attempt ${n})…`);
  });
  socket.io.on('reconnect_failed', () => {
    log('•', 'reconnect_failed');
    pill('st-socket', 'error', 'Offline');
    $('reconnect').hidden = false;
  });
  socket.on('messageBroadcast', (raw) => {
    const d = typeof raw === 'string' ? JSON.parse(raw) : raw;
    const channelId = d.channelId || d.roomId;
    if (!channels.has(channelId)) return;
    const m = fromBroadcast(d);
    const changed = upsert(channelId, m);
    if (m.agent && m.senderId !== me) setBusy(channelId, false);
    if (changed) refresh(channelId);
  });
  socket.on('messageStreamChunk', (d) => {
    const c = channels.get(d.channelId);
    if (!c) return;
    const existing = c.msgs.get(d.messageId);
    if (existing && !existing.streaming) return; // already final
    if (existing) existing.text += d.chunk;
    else upsert(c.id, { id: d.messageId, senderId: d.agentId, senderName: agents.get(d.agentId) || 'Agent', text: d.chunk, createdAt: Date.now(), agent: true, via: 'live', streaming: true, status: 'sent' });
    if (c.id === view.current) { renderMessages(); updateComposer(); }
  });
  socket.on('messageStreamError', (d) => {
    const c = channels.get(d.channelId);
    const m = c?.msgs.get(d.messageId);
    if (m) { m.streaming = false; m.text = d.partialText || m.text; }
    notice(`The agent failed: ${d.error}`);
    if (c) refresh(c.id);
  });
  socket.on('controlMessage', (d) => {
    const channelId = d.channelId || d.roomId;
    const action = d.action || d.payload?.action;
    if (!channels.has(channelId)) return;
    if (action === 'disable_input') setBusy(channelId, true, d.target);
    if (action === 'enable_input') setBusy(channelId, false);
  });
  socket.on('messageComplete', (d) => setBusy(d.channelId || d.roomId, false));
  socket.on('messageDeleted', (d) => {
    const c = channels.get(d.channelId || d.roomId);
    if (c && remove(c, d.messageId)) refresh(c.id);
  });
  socket.on('channelCleared', (d) => {
    const c = channels.get(d.channelId || d.roomId);
    if (!c) return;
    clear(c);
    refresh(c.id);
  });
  socket.on('channelDeleted', (d) => {
    const c = channels.get(d.channelId || d.roomId);
    if (c) actions.gone(c.id);
  });
  socket.on('messageError', (d) => {
    notice(`Server: ${d.error}`);
    if (d.clientMessageId) for (const c of channels.values()) mark(c.id, d.clientMessageId, 'failed', d.error);
  });
}

/** A fresh connection attempt now (the backoff starts over). */
export function reconnectNow() {
  if (!socket || socket.connected) return;
  socket.disconnect();
  socket.connect();
}

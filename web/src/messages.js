// The message store: every channel's messages by id, in time order, de-duplicated. An optimistic
// bubble (keyed by its client message id) is replaced by the server's copy (ack or echo, whichever
// comes first); a live copy of a message loaded over HTTP, or a finished stream, keeps one bubble.
import { channelState, agents, me, view } from './state.js';
import { isUuid } from './util.js';

const settled = (m) => m.status !== 'queued' && m.status !== 'waiting' && m.status !== 'pending' && !m.streaming;

function sortOrder(c) {
  c.order.sort((a, b) => (c.msgs.get(a).createdAt - c.msgs.get(b).createdAt) || 0);
}

/** Adds or merges a message; returns true if the view changed. */
export function upsert(channelId, m) {
  const c = channelState(channelId);
  if (m.clientMessageId && c.msgs.has(m.clientMessageId)) {
    // The sender's own echo (or ack) replaces its optimistic bubble.
    const old = c.msgs.get(m.clientMessageId);
    c.msgs.delete(m.clientMessageId);
    if (c.msgs.has(m.id)) c.order.splice(c.order.indexOf(m.clientMessageId), 1);
    else c.order[c.order.indexOf(m.clientMessageId)] = m.id;
    c.msgs.set(m.id, { ...old, ...c.msgs.get(m.id), ...m, local: false, status: 'sent' });
  } else if (c.msgs.has(m.id)) {
    const old = c.msgs.get(m.id);
    if (!old.streaming && old.via === m.via && old.text === m.text) return false;
    c.msgs.set(m.id, { ...old, ...m, via: old.streaming || m.via === 'live' ? 'live' : old.via, streaming: false });
  } else {
    c.msgs.set(m.id, m);
    c.order.push(m.id);
    if (channelId !== view.current && m.senderId !== me) c.unread++;
  }
  sortOrder(c);
  if (settled(m) && isUuid(m.id)) {
    const newest = c.order.filter((k) => { const x = c.msgs.get(k); return !x.local && !x.streaming && x.status === 'sent'; }).at(-1);
    if (newest) c.lastId = newest; // the resume point sent with the next join
  }
  return true;
}

export function remove(c, messageId) {
  if (!c.msgs.delete(messageId)) return false;
  c.order = c.order.filter((k) => k !== messageId);
  return true;
}

export function clear(c) {
  c.msgs.clear();
  c.order = [];
}

/** Sets a message's delivery state; returns true if it changed. */
export function mark(c, key, status, error) {
  const m = c?.msgs.get(key);
  if (!m || m.status === status) return false;
  m.status = status;
  m.error = error;
  return true;
}

export const isStreaming = (c) => c.order.some((k) => c.msgs.get(k).streaming);
export const oldestLoaded = (c) => c.msgs.get(c.order.find((k) => !c.msgs.get(k).local))?.createdAt;
export const newestLoaded = (c) => c.order.map((k) => c.msgs.get(k)).filter((m) => !m.local).at(-1)?.createdAt;

export function fromBroadcast(d) {
  return {
    id: d.id,
    clientMessageId: d.clientMessageId,
    senderId: d.senderId,
    senderName: d.senderName || d.name,
    text: d.text ?? d.content ?? '',
    attachments: d.attachments,
    createdAt: typeof d.createdAt === 'number' ? d.createdAt : Date.parse(d.createdAt) || Date.now(),
    agent: d.source === 'agent_response' || agents.has(d.senderId),
    local: false,
    via: 'live',
    status: 'sent',
  };
}

export function fromHistory(m) {
  const meta = m.metadata || {};
  return {
    id: m.id,
    senderId: m.authorId,
    senderName: meta.user_display_name || meta.agentName || meta.authorDisplayName || agents.get(m.authorId) || (m.isAgent ? 'Agent' : 'User'),
    text: m.content ?? '',
    attachments: meta.attachments,
    createdAt: m.created_at ?? (typeof m.createdAt === 'number' ? m.createdAt : Date.parse(m.createdAt)),
    agent: m.isAgent || m.sourceType === 'agent_response' || agents.has(m.authorId),
    local: false,
    via: 'api',
    status: 'sent',
  };
}

/** A message typed here, not yet sent: keyed by its client message id, which it keeps for every
 * attempt (the server treats it as an idempotency key). */
export function local(channelId, id, senderName, text, attachments = []) {
  return { id, channelId, clientMessageId: undefined, local: true, senderId: me, senderName, text, attachments, createdAt: Date.now(), via: 'local', status: 'pending' };
}

// confab's chat page. Two modes (seed 001): `/chat-socket` (and `/`) — Socket.IO in real time;
// `/chat` — the sessions API with polling. One socket per page; every opened channel stays
// joined, is rejoined after a reconnect with the last message id seen (the server replays what
// was missed), and messages are de-duplicated by id.
import { io } from 'socket.io-client';

const SERVER = '00000000-0000-0000-0000-000000000000';
const ELIZA = 'b850bc30-45f8-0041-a00a-83df46d8555d';
const SEND_INTERVAL_MS = 1000; // seed 001: one message per second at most
const POLL_MS = 1500;
const PAGE = 30;
const params = new URLSearchParams(location.search);
const mode = location.pathname.startsWith('/chat') && !location.pathname.startsWith('/chat-socket') ? 'sessions' : 'socket';
const debug = params.get('debug') === '1';

const $ = (id) => document.getElementById(id);
const uuid = () => (crypto.randomUUID ? crypto.randomUUID() : fallbackUuid());
function fallbackUuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const store = {
  get(k, d) { try { const v = localStorage.getItem(k); return v === null ? d : JSON.parse(v); } catch { return d; } },
  set(k, v) { try { localStorage.setItem(k, JSON.stringify(v)); } catch { /* private mode */ } },
};

// ---- identity ---------------------------------------------------------------------------------
let me = store.get('elizaos-client-user-id', null);
if (!me || !/^[0-9a-f-]{36}$/i.test(me)) { me = uuid(); store.set('elizaos-client-user-id', me); }
let myName = store.get('confab-name', 'User');

// ---- state ------------------------------------------------------------------------------------
/** channelId → {id, name, kind, agentId?, sessionId?, msgs: Map, order: [], lastId, hasMore, loading, busy} */
const channels = new Map();
let current = null;
const agents = new Map(); // id → name
const outbox = []; // {channelId, bubbleKey}
let lastSendAt = 0;
let sendTimer = null;
let socket = null;
let pollTimer = null;

// ---- HTTP -------------------------------------------------------------------------------------
async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json?.error?.message || json?.error || `${res.status}`);
  return json;
}

// ---- debug panel ------------------------------------------------------------------------------
function log(dir, name, data) {
  const line = `${new Date().toISOString().slice(11, 23)} ${dir} ${name} ${data === undefined ? '' : JSON.stringify(data)}`;
  if (debug) {
    const li = document.createElement('li');
    li.textContent = line;
    li.className = dir === '⬆' ? 'out' : dir === '⬇' ? 'in' : 'meta';
    const list = $('debug-log');
    list.append(li);
    while (list.children.length > 500) list.firstChild.remove();
    li.scrollIntoView({ block: 'nearest' });
    console.debug('[Socket.IO]', line);
  }
}

// ---- status pills -----------------------------------------------------------------------------
function pill(id, state, text) {
  const el = $(id);
  el.dataset.state = state;
  el.querySelector('span').textContent = text;
}

// ---- rendering --------------------------------------------------------------------------------
const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function channelState(id, info = {}) {
  let c = channels.get(id);
  if (!c) {
    c = { id, name: info.name || `Channel ${id.slice(0, 8)}`, kind: info.kind || 'GROUP', msgs: new Map(), order: [], lastId: null, hasMore: true, loading: false, busy: false, unread: 0, joined: false };
    channels.set(id, c);
  }
  Object.assign(c, Object.fromEntries(Object.entries(info).filter(([, v]) => v !== undefined)));
  return c;
}

function saveOpened() {
  const list = [...channels.values()].filter((c) => c.opened).map(({ id, name, kind, agentId, sessionId }) => ({ id, name, kind, agentId, sessionId }));
  store.set(`confab-channels-${mode}-${me}`, list);
}

function renderChannels() {
  const ul = $('channels');
  ul.replaceChildren();
  for (const c of channels.values()) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'channel' + (current === c.id ? ' active' : '');
    b.dataset.channelId = c.id;
    b.setAttribute('aria-current', current === c.id ? 'true' : 'false');
    b.textContent = `${c.kind === 'DM' ? '💬' : '#'} ${c.name}`;
    if (c.unread) {
      const u = document.createElement('span');
      u.className = 'unread';
      u.textContent = c.unread;
      b.append(u);
    }
    b.addEventListener('click', () => { openChannel(c.id); closeMenu(); });
    li.append(b);
    ul.append(li);
  }
}

const shown = new Set(); // bubbles already on screen: only new ones animate in

function bubble(m) {
  const el = document.createElement('div');
  const mine = m.senderId === me;
  const fresh = !shown.has(m.id) && !(m.clientMessageId && shown.has(m.clientMessageId));
  shown.add(m.id);
  el.className = `msg ${mine ? 'mine' : 'theirs'}${m.agent ? ' agent' : ''}${m.streaming ? ' streaming' : ''}${fresh ? ' fresh' : ''}`;
  el.dataset.id = m.id;
  el.dataset.status = m.status || 'sent';
  el.dataset.via = m.via;
  const head = document.createElement('div');
  head.className = 'meta';
  const who = document.createElement('strong');
  who.textContent = mine ? `${m.senderName || myName} (you)` : m.senderName || 'User';
  const when = document.createElement('time');
  when.textContent = fmtTime(m.createdAt);
  const badge = document.createElement('span');
  badge.className = `badge ${m.via === 'live' ? 'realtime' : 'api'}`;
  badge.textContent = m.via === 'live' ? '⚡ Live' : m.via === 'api' ? '📡 API' : '… sending';
  head.append(who, when, badge);
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = m.text;
  el.append(head, text);
  if (m.status === 'queued' || m.status === 'waiting' || m.status === 'failed' || m.status === 'pending') {
    const s = document.createElement('div');
    s.className = 'state';
    s.textContent = { queued: '⏳ queued — offline', waiting: '⏳ waiting (1 message per second)', pending: 'sending…', failed: `⚠ not sent${m.error ? `: ${m.error}` : ''}` }[m.status];
    if (m.status === 'failed') {
      const r = document.createElement('button');
      r.type = 'button';
      r.className = 'retry';
      r.textContent = 'Retry';
      r.addEventListener('click', () => retry(m.channelId, m.id));
      s.append(' ', r);
    }
    el.append(s);
  }
  return el;
}

function renderMessages({ keepScroll = false, toBottom = false } = {}) {
  const box = $('messages');
  const c = channels.get(current);
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const prevHeight = box.scrollHeight;
  const prevTop = box.scrollTop;
  const older = $('older');
  box.replaceChildren(older);
  if (!c) return;
  for (const key of c.order) box.append(bubble(c.msgs.get(key)));
  if (keepScroll) box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
  else if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

function sortOrder(c) {
  c.order.sort((a, b) => (c.msgs.get(a).createdAt - c.msgs.get(b).createdAt) || 0);
}

/** Adds or merges a message; returns true if the view changed. De-duplication happens here. */
function upsert(channelId, m) {
  const c = channelState(channelId);
  if (m.clientMessageId && c.msgs.has(m.clientMessageId)) {
    // The sender's own echo (or ack) replaces its optimistic bubble.
    const old = c.msgs.get(m.clientMessageId);
    c.msgs.delete(m.clientMessageId);
    c.order[c.order.indexOf(m.clientMessageId)] = m.id;
    c.msgs.set(m.id, { ...old, ...m, local: false, status: 'sent' });
  } else if (c.msgs.has(m.id)) {
    const old = c.msgs.get(m.id);
    if (!old.streaming && old.via === m.via && old.text === m.text) return false;
    // A finished stream, or a live copy of something loaded: keep one bubble.
    c.msgs.set(m.id, { ...old, ...m, via: old.streaming || m.via === 'live' ? 'live' : old.via, streaming: false });
  } else {
    c.msgs.set(m.id, m);
    c.order.push(m.id);
    if (channelId !== current && m.senderId !== me) c.unread++;
  }
  sortOrder(c);
  if (m.status !== 'queued' && m.status !== 'waiting' && m.status !== 'pending' && !m.streaming && /^[0-9a-f-]{36}$/.test(m.id)) {
    const newest = c.order.filter((k) => { const x = c.msgs.get(k); return !x.local && !x.streaming && x.status === 'sent'; }).at(-1);
    if (newest) c.lastId = newest;
  }
  return true;
}

function fromBroadcast(d) {
  return {
    id: d.id,
    clientMessageId: d.clientMessageId,
    senderId: d.senderId,
    senderName: d.senderName || d.name,
    text: d.text ?? d.content ?? '',
    createdAt: typeof d.createdAt === 'number' ? d.createdAt : Date.parse(d.createdAt) || Date.now(),
    agent: d.source === 'agent_response' || agents.has(d.senderId),
    local: false,
    via: 'live',
    status: 'sent',
  };
}

function fromHistory(m) {
  const meta = m.metadata || {};
  return {
    id: m.id,
    senderId: m.authorId,
    senderName: meta.user_display_name || meta.agentName || meta.authorDisplayName || agents.get(m.authorId) || (m.isAgent ? 'Agent' : 'User'),
    text: m.content ?? '',
    createdAt: m.created_at ?? (typeof m.createdAt === 'number' ? m.createdAt : Date.parse(m.createdAt)),
    agent: m.isAgent || m.sourceType === 'agent_response' || agents.has(m.authorId),
    local: false,
    via: 'api',
    status: 'sent',
  };
}

// ---- thinking / input -------------------------------------------------------------------------
function setBusy(channelId, busy, agentId) {
  const c = channelState(channelId);
  c.busy = busy;
  if (agentId) c.thinkingAgent = agentId;
  clearTimeout(c.busyTimer);
  // Like the official client: a run that never reports back does not lock the input forever.
  if (busy) c.busyTimer = setTimeout(() => setBusy(channelId, false), 30000);
  if (channelId === current) updateComposer();
}

function updateComposer() {
  const c = channels.get(current);
  const busy = !!c?.busy;
  $('input').disabled = !c || busy;
  $('send').disabled = !c || busy;
  const streaming = c && c.order.some((k) => c.msgs.get(k).streaming);
  $('thinking').hidden = !busy || streaming;
  if (c) $('thinking-text').textContent = `${agents.get(c.thinkingAgent) || agents.get(c.agentId) || 'Agent'} is thinking`;
  if (c && !busy && document.activeElement === document.body) $('input').focus();
}

function notice(text) {
  $('notice').textContent = text;
  clearTimeout(notice.t);
  if (text) notice.t = setTimeout(() => { $('notice').textContent = ''; }, 4000);
}

// ---- channels ---------------------------------------------------------------------------------
async function openChannel(id, info = {}) {
  const c = channelState(id, info);
  c.opened = true;
  c.unread = 0;
  current = id;
  saveOpened();
  const url = new URL(location.href);
  url.searchParams.set('channel', id);
  history.replaceState(null, '', url);
  $('chat-title').textContent = `${c.kind === 'DM' ? '💬' : '#'} ${c.name}`;
  if (c.sessionId) pill('st-session', 'on', 'Session Active');
  renderChannels();
  renderMessages({ toBottom: true });
  updateComposer();
  if (mode === 'socket') join(c);
  if (!c.loadedOnce) { c.loadedOnce = true; await loadHistory(c); }
  if (mode === 'sessions') startPolling();
  $('input').focus();
}

function join(c) {
  if (!socket?.connected) return;
  const payload = { channelId: c.id, roomId: c.id, entityId: me, messageServerId: SERVER };
  if (c.lastId) payload.lastMessageId = c.lastId;
  socket.emit('message', { type: 1, payload });
}

async function loadHistory(c, older = false) {
  if (c.loading || (older && !c.hasMore)) return;
  c.loading = true;
  $('older').hidden = !older;
  try {
    let list;
    if (mode === 'sessions' && c.sessionId) {
      const oldest = older ? c.msgs.get(c.order.find((k) => !c.msgs.get(k).local))?.createdAt : undefined;
      const q = `limit=${PAGE}${oldest ? `&before=${oldest}` : ''}`;
      const r = await api('GET', `/api/messaging/sessions/${c.sessionId}/messages?${q}`);
      list = r.messages;
      c.hasMore = r.hasMore;
    } else {
      const oldest = older ? c.msgs.get(c.order.find((k) => !c.msgs.get(k).local))?.createdAt : undefined;
      const q = `limit=${PAGE}${oldest ? `&before=${oldest}` : ''}`;
      const r = await api('GET', `/api/messaging/channels/${c.id}/messages?${q}`);
      list = r.data.messages;
      c.hasMore = list.length === PAGE;
    }
    for (const m of list) upsert(c.id, fromHistory(m));
    if (c.id === current) renderMessages(older ? { keepScroll: true } : { toBottom: true });
  } catch (e) {
    notice(`Could not load history: ${e.message}`);
  } finally {
    c.loading = false;
    $('older').hidden = true;
  }
}

async function startConversation() {
  const agentId = $('agent').value;
  if (!agentId) return;
  try {
    const s = await api('POST', '/api/messaging/sessions', { agentId, userId: me, metadata: { client: 'confab-web' } });
    pill('st-session', 'on', 'Session Active');
    await openChannel(s.channelId, { name: agents.get(agentId) || 'Agent', kind: 'DM', agentId, sessionId: s.sessionId });
  } catch (e) {
    pill('st-session', 'error', 'Session failed');
    notice(`Could not start a conversation: ${e.message}`);
  }
}

async function openGroup(nameOrId) {
  const wanted = nameOrId.trim();
  if (!wanted) return;
  try {
    let found;
    if (/^[0-9a-f-]{36}$/i.test(wanted)) found = { id: wanted.toLowerCase(), name: wanted.slice(0, 8) };
    else {
      const r = await api('GET', `/api/messaging/message-servers/${SERVER}/channels`);
      found = r.data.channels.find((ch) => ch.name === wanted);
      if (!found) {
        const created = await api('POST', '/api/messaging/channels', { name: wanted, participantCentralUserIds: [me], message_server_id: SERVER, type: 'GROUP' });
        found = created.data;
      }
    }
    await openChannel(found.id, { name: found.name, kind: 'GROUP' });
    $('group').value = '';
  } catch (e) {
    notice(`Could not open the channel: ${e.message}`);
  }
}

// ---- sending ----------------------------------------------------------------------------------
function submit() {
  const text = $('input').value.trim();
  const c = channels.get(current);
  if (!text || !c || c.busy) return;
  $('input').value = '';
  const key = uuid();
  upsert(c.id, { id: key, clientMessageId: undefined, local: true, senderId: me, senderName: myName, text, createdAt: Date.now(), via: 'local', status: 'pending' });
  outbox.push({ channelId: c.id, key });
  renderMessages({ toBottom: true });
  pump();
}

/** Sends what is waiting, one message per second; offline, everything waits (queued). */
function pump() {
  clearTimeout(sendTimer);
  while (outbox.length) {
    const next = outbox[0];
    const c = channels.get(next.channelId);
    const m = c?.msgs.get(next.key);
    if (!m) { outbox.shift(); continue; }
    const online = mode === 'sessions' || socket?.connected;
    if (!online) {
      for (const o of outbox) mark(o.channelId, o.key, 'queued');
      $('offline').hidden = false;
      return;
    }
    const wait = lastSendAt + SEND_INTERVAL_MS - Date.now();
    if (wait > 0) {
      for (const o of outbox) mark(o.channelId, o.key, 'waiting');
      notice(`One message per second — sending in ${(wait / 1000).toFixed(1)} s`);
      sendTimer = setTimeout(pump, wait);
      return;
    }
    outbox.shift();
    lastSendAt = Date.now();
    mark(next.channelId, next.key, 'pending');
    transmit(c, m);
  }
}

function mark(channelId, key, status, error) {
  const c = channels.get(channelId);
  const m = c?.msgs.get(key);
  if (!m || m.status === status) return;
  m.status = status;
  m.error = error;
  if (channelId === current) renderMessages();
}

function transmit(c, m) {
  if (mode === 'sessions') return transmitSession(c, m);
  const payload = {
    channelId: c.id, roomId: c.id, messageServerId: SERVER,
    senderId: me, senderName: myName, message: m.text,
    messageId: m.id, source: c.kind === 'DM' ? 'client_chat' : 'client_group_chat',
    metadata: c.kind === 'DM' && c.agentId ? { channelType: 'DM', isDm: true, targetUserId: c.agentId } : { channelType: 'GROUP' },
  };
  socket.timeout(10000).emit('message', { type: 2, payload }, (err, ack) => {
    if (err) {
      // No answer (the connection dropped, or the server is slow): it may be stored already.
      // Sent again with the same messageId, it is stored once at most; the server answers a
      // repeat with the original's acknowledgement.
      outbox.unshift({ channelId: c.id, key: m.id });
      pump();
      return;
    }
    if (!ack?.success) {
      mark(c.id, m.id, 'failed', ack?.error);
      return;
    }
    // The ack can come before the echo: adopt the server id now; the echo then de-duplicates.
    if (c.msgs.has(m.id)) {
      upsert(c.id, { ...c.msgs.get(m.id), id: ack.messageId, clientMessageId: m.id, createdAt: ack.createdAt || m.createdAt, local: false, status: 'sent' });
      if (c.id === current) renderMessages();
    }
  });
}

async function transmitSession(c, m) {
  try {
    const r = await api('POST', `/api/messaging/sessions/${c.sessionId}/messages`, { content: m.text });
    const u = r.userMessage || {};
    upsert(c.id, { ...m, id: u.id || m.id, clientMessageId: m.id, createdAt: u.created_at || m.createdAt, local: false, via: 'api', status: 'sent' });
    setBusy(c.id, true, c.agentId);
    if (c.id === current) renderMessages();
    poll();
  } catch (e) {
    mark(c.id, m.id, 'failed', e.message);
  }
}

function retry(channelId, key) {
  mark(channelId, key, 'pending');
  outbox.push({ channelId, key });
  pump();
}

// ---- sessions mode: polling --------------------------------------------------------------------
function startPolling() {
  clearInterval(pollTimer);
  pollTimer = setInterval(poll, POLL_MS);
}

async function poll() {
  const c = channels.get(current);
  if (!c?.sessionId) return;
  try {
    const newest = c.order.map((k) => c.msgs.get(k)).filter((m) => !m.local).at(-1)?.createdAt;
    const r = await api('GET', `/api/messaging/sessions/${c.sessionId}/messages?limit=50${newest ? `&after=${newest - 1}` : ''}`);
    let changed = false;
    for (const m of r.messages) {
      const msg = fromHistory(m);
      changed = upsert(c.id, msg) || changed;
      if (msg.agent) setBusy(c.id, false);
    }
    pill('st-session', 'on', 'Session Active');
    if (changed && c.id === current) renderMessages();
  } catch (e) {
    pill('st-session', 'error', `Session: ${e.message}`);
  }
}

// ---- socket mode --------------------------------------------------------------------------------
function connectSocket() {
  pill('st-socket', 'wait', 'Socket.IO connecting…');
  socket = io(location.origin, {
    auth: { entityId: me },
    transports: ['websocket', 'polling'],
    reconnection: true,
    reconnectionAttempts: 5,
    reconnectionDelay: 1000, // 1 s × 2ⁿ (seed 000), randomised ±20% by socket.io-client
    reconnectionDelayMax: 16000,
    timeout: 20000,
  });
  socket.onAny((name, data) => log('⬇', name, data));
  socket.onAnyOutgoing((name, data) => log('⬆', name, data));
  socket.on('connect', () => {
    log('•', 'connect', { id: socket.id });
    pill('st-socket', 'on', 'Socket.IO Ready');
    pill('st-realtime', 'live', '⚡ Real-time Active');
    $('offline').hidden = true;
    $('reconnect').hidden = true;
    // Rejoin every opened channel; `lastMessageId` makes the server replay what was missed.
    for (const c of channels.values()) {
      if (c.opened) { c.busy = false; join(c); }
    }
    updateComposer();
    pump();
  });
  socket.on('disconnect', (reason) => {
    log('•', 'disconnect', reason);
    pill('st-socket', 'error', 'Socket.IO disconnected');
    pill('st-realtime', 'off', 'Real-time paused');
    $('offline').hidden = false;
    if (reason === 'io server disconnect') socket.connect();
  });
  socket.on('connect_error', (err) => {
    log('•', 'connect_error', err.message);
    pill('st-socket', 'error', `Socket.IO error: ${err.message}`);
  });
  socket.io.on('reconnect_attempt', (n) => {
    log('•', 'reconnect_attempt', n);
    pill('st-socket', 'wait', `Reconnecting (attempt ${n})…`);
  });
  socket.io.on('reconnect_failed', () => {
    log('•', 'reconnect_failed');
    pill('st-socket', 'error', 'Socket.IO offline');
    $('reconnect').hidden = false;
  });
  socket.on('channel_joined', (d) => {
    const c = channels.get(d.channelId);
    if (c) c.joined = true;
  });
  socket.on('messageBroadcast', (raw) => {
    const d = typeof raw === 'string' ? JSON.parse(raw) : raw;
    const channelId = d.channelId || d.roomId;
    if (!channels.has(channelId)) return;
    const m = fromBroadcast(d);
    const changed = upsert(channelId, m);
    if (m.agent && m.senderId !== me) setBusy(channelId, false);
    if (changed && channelId === current) renderMessages();
    else if (changed) renderChannels();
  });
  socket.on('messageStreamChunk', (d) => {
    const c = channels.get(d.channelId);
    if (!c) return;
    const existing = c.msgs.get(d.messageId);
    if (existing && !existing.streaming) return; // already final
    if (existing) existing.text += d.chunk;
    else upsert(c.id, { id: d.messageId, senderId: d.agentId, senderName: agents.get(d.agentId) || 'Agent', text: d.chunk, createdAt: Date.now(), agent: true, via: 'live', streaming: true, status: 'sent' });
    if (c.id === current) { renderMessages(); updateComposer(); }
  });
  socket.on('messageStreamError', (d) => {
    const c = channels.get(d.channelId);
    const m = c?.msgs.get(d.messageId);
    if (m) { m.streaming = false; m.text = d.partialText || m.text; }
    notice(`The agent failed: ${d.error}`);
    if (c?.id === current) renderMessages();
  });
  socket.on('controlMessage', (d) => {
    const channelId = d.channelId || d.roomId;
    const action = d.action || d.payload?.action;
    if (!channels.has(channelId)) return;
    if (action === 'disable_input') setBusy(channelId, true, d.target);
    if (action === 'enable_input') setBusy(channelId, false);
  });
  socket.on('messageComplete', (d) => {
    const channelId = d.channelId || d.roomId;
    if (channels.has(channelId)) setBusy(channelId, false);
  });
  socket.on('messageDeleted', (d) => {
    const c = channels.get(d.channelId || d.roomId);
    if (!c || !c.msgs.delete(d.messageId)) return;
    c.order = c.order.filter((k) => k !== d.messageId);
    if (c.id === current) renderMessages();
  });
  for (const ev of ['channelCleared', 'channelDeleted']) {
    socket.on(ev, (d) => {
      const c = channels.get(d.channelId || d.roomId);
      if (!c) return;
      c.msgs.clear(); c.order = [];
      if (c.id === current) renderMessages();
    });
  }
  socket.on('messageError', (d) => {
    notice(`Server: ${d.error}`);
    if (d.clientMessageId) for (const c of channels.values()) mark(c.id, d.clientMessageId, 'failed', d.error);
  });
}

/** A fresh connection attempt now (the backoff starts over). */
function reconnectNow() {
  if (!socket || socket.connected) return;
  socket.disconnect();
  socket.connect();
}

// ---- wiring -------------------------------------------------------------------------------------
function closeMenu() {
  document.body.classList.remove('menu-open');
  $('menu').setAttribute('aria-expanded', 'false');
}

async function init() {
  document.querySelector(`.modes a[data-mode="${mode}"]`)?.setAttribute('aria-current', 'page');
  if (debug) $('debug').hidden = false;
  $('name').value = myName;
  $('name').addEventListener('change', () => { myName = $('name').value.trim() || 'User'; store.set('confab-name', myName); });
  $('theme').addEventListener('click', () => {
    const dark = (document.documentElement.dataset.theme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')) === 'dark';
    document.documentElement.dataset.theme = dark ? 'light' : 'dark';
    store.set('confab-theme', document.documentElement.dataset.theme);
    localStorage.setItem('confab-theme', document.documentElement.dataset.theme);
  });
  $('menu').addEventListener('click', () => {
    const open = document.body.classList.toggle('menu-open');
    $('menu').setAttribute('aria-expanded', String(open));
  });
  $('debug-clear').addEventListener('click', () => $('debug-log').replaceChildren());
  $('start').addEventListener('click', startConversation);
  $('group-form').addEventListener('submit', (e) => { e.preventDefault(); openGroup($('group').value); });
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  $('reconnect').addEventListener('click', reconnectNow);
  $('messages').addEventListener('scroll', () => {
    const c = channels.get(current);
    if (c && $('messages').scrollTop < 40) loadHistory(c, true);
  });
  // Back online: try now instead of waiting for the next backoff step.
  window.addEventListener('online', reconnectNow);

  if (mode === 'socket') connectSocket();
  else {
    pill('st-socket', 'off', 'Socket.IO not used (/chat)');
    pill('st-realtime', 'off', '📡 Polling every 1.5 s');
    $('send').textContent = 'Send 📡';
  }

  try {
    const r = await api('GET', '/api/agents');
    for (const a of r.data.agents) agents.set(a.id, a.name);
    const sel = $('agent');
    for (const [id, name] of agents) {
      const o = document.createElement('option');
      o.value = id; o.textContent = name;
      if (id === ELIZA) o.selected = true;
      sel.append(o);
    }
  } catch (e) {
    notice(`Could not list agents: ${e.message}`);
  }
  for (const c of store.get(`confab-channels-${mode}-${me}`, [])) channelState(c.id, { ...c, opened: true });
  if (mode === 'socket') {
    try {
      const r = await api('GET', `/api/messaging/message-servers/${SERVER}/channels`);
      for (const ch of r.data.channels) if (ch.type === 'GROUP') channelState(ch.id, { name: ch.name, kind: 'GROUP' });
    } catch { /* the list is a convenience */ }
  }
  renderChannels();
  const wanted = params.get('channel');
  if (wanted && channels.has(wanted)) await openChannel(wanted);
  else if (wanted && /^[0-9a-f-]{36}$/i.test(wanted)) await openChannel(wanted, {});
  if (socket?.connected) for (const c of channels.values()) if (c.opened && c.id !== current) join(c);
}

init();

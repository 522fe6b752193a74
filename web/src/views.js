// Everything the page draws: status pills, the channel list, the messages, the composer, notices,
// the debug log and the phone drawer. Views read the state and call back through `actions`
// (set by main.js) — they never send anything themselves.
import { attachmentsEl, render as renderPending } from './attach.js';
import { $, fmtTime } from './util.js';
import { icon } from './icons.js';
import { channels, agents, me, profile, view, debug } from './state.js';
import { isStreaming } from './messages.js';

export const actions = { open: () => {}, retry: () => {}, gone: () => {} };

// ---- status -----------------------------------------------------------------------------------
/** state: 'on' (green, connected), 'wait' (amber, connecting/reconnecting), 'error' (red,
 * offline or failed), 'off' (grey, not in use). */
export function pill(id, state, text) {
  const el = $(id);
  el.dataset.state = state;
  el.querySelector('span').textContent = text;
}

export function notice(text) {
  $('notice').textContent = text;
  clearTimeout(notice.t);
  if (text) notice.t = setTimeout(() => { $('notice').textContent = ''; }, 4000);
}

export function log(dir, name, data) {
  if (!debug) return;
  const line = `${new Date().toISOString().slice(11, 23)} ${dir} ${name} ${data === undefined ? '' : JSON.stringify(data)}`;
  const li = document.createElement('li');
  li.textContent = line;
  li.className = dir === '↑' ? 'out' : dir === '↓' ? 'in' : 'meta';
  const list = $('debug-log');
  list.append(li);
  while (list.children.length > 500) list.firstChild.remove();
  li.scrollIntoView({ block: 'nearest' });
  console.debug('[Socket.IO]', line);
}

// ---- drawer (phone size) ----------------------------------------------------------------------
export function openDrawer() {
  document.body.classList.add('menu-open');
  $('menu').setAttribute('aria-expanded', 'true');
  $('scrim').hidden = false;
}
export function closeDrawer() {
  const wasOpen = document.body.classList.contains('menu-open');
  document.body.classList.remove('menu-open');
  $('menu').setAttribute('aria-expanded', 'false');
  $('scrim').hidden = true;
  if (wasOpen && matchMedia('(max-width: 760px)').matches) $('menu').focus({ preventScroll: true });
}

// ---- channels ---------------------------------------------------------------------------------
const kindIcon = (c) => icon(c.kind === 'DM' ? 'chat' : 'hash');

export function renderChannels() {
  const ul = $('channels');
  ul.replaceChildren();
  $('no-channels').hidden = channels.size > 0;
  for (const c of channels.values()) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'channel' + (view.current === c.id ? ' active' : '');
    b.dataset.channelId = c.id;
    b.setAttribute('aria-current', view.current === c.id ? 'true' : 'false');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = c.name;
    b.append(kindIcon(c), name);
    if (c.unread) {
      const u = document.createElement('span');
      u.className = 'unread';
      u.textContent = c.unread;
      u.setAttribute('aria-label', `${c.unread} unread`);
      b.append(u);
    }
    b.addEventListener('click', () => actions.open(c.id));
    li.append(b);
    ul.append(li);
  }
}

export function renderTitle() {
  const c = channels.get(view.current);
  const t = $('chat-title');
  t.replaceChildren();
  if (!c) { t.textContent = 'Starting a conversation…'; return; }
  const name = document.createElement('span');
  name.textContent = c.name;
  t.append(kindIcon(c), name);
  $('input').placeholder = `Message ${c.name}`;
}

// ---- messages ---------------------------------------------------------------------------------
const shown = new Set(); // bubbles already on screen: only new ones animate in
const STATE_TEXT = { queued: 'queued — offline', waiting: 'waiting (1 message per second)', pending: 'sending…' };

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
  who.textContent = mine ? `${m.senderName || profile.name} (you)` : m.senderName || 'User';
  const when = document.createElement('time');
  when.textContent = fmtTime(m.createdAt);
  const badge = document.createElement('span');
  badge.className = `badge ${m.via === 'live' ? 'realtime' : m.via === 'api' ? 'api' : 'local'}`;
  if (m.via === 'live') badge.append(icon('bolt'), 'Live');
  else if (m.via === 'api') badge.append(icon('cloud'), 'API');
  else badge.append('sending');
  head.append(who, when, badge);
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = m.text;
  el.append(head, text);
  const files = attachmentsEl(m.attachments);
  if (files) el.append(files);
  if (m.status === 'failed' || STATE_TEXT[m.status]) {
    const s = document.createElement('div');
    s.className = 'state';
    if (m.status === 'failed') {
      s.append(icon('alert'), `not sent${m.error ? `: ${m.error}` : ''}`);
      const r = document.createElement('button');
      r.type = 'button';
      r.className = 'retry';
      r.textContent = 'Retry';
      r.addEventListener('click', () => actions.retry(m.channelId, m.id));
      s.append(' ', r);
    } else {
      if (m.status !== 'pending') s.append(icon('clock'));
      s.append(STATE_TEXT[m.status]);
    }
    el.append(s);
  }
  return el;
}

export function renderMessages({ keepScroll = false, toBottom = false } = {}) {
  renderPending();
  const box = $('messages');
  const c = channels.get(view.current);
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const prevHeight = box.scrollHeight;
  const prevTop = box.scrollTop;
  box.replaceChildren($('older'));
  if (!c) return;
  for (const key of c.order) box.append(bubble({ channelId: c.id, ...c.msgs.get(key) }));
  if (keepScroll) box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
  else if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

/** Re-draws what a change in channel `channelId` affects. */
export function refresh(channelId) {
  if (channelId === view.current) renderMessages();
  else renderChannels();
}

// ---- composer ---------------------------------------------------------------------------------
export function setBusy(channelId, busy, agentId) {
  const c = channels.get(channelId);
  if (!c) return;
  c.busy = busy;
  if (agentId) c.thinkingAgent = agentId;
  clearTimeout(c.busyTimer);
  // Like the official client: a run that never reports back does not lock the input forever.
  if (busy) c.busyTimer = setTimeout(() => setBusy(channelId, false), 30000);
  if (channelId === view.current) updateComposer();
}

export function updateComposer() {
  const c = channels.get(view.current);
  const busy = !!c?.busy;
  $('input').disabled = busy;
  $('send').disabled = busy;
  $('thinking').hidden = !busy || isStreaming(c);
  if (c) $('thinking-text').textContent = `${agents.get(c.thinkingAgent) || agents.get(c.agentId) || 'Agent'} is thinking`;
  if (!busy && (document.activeElement === document.body || document.activeElement === null)) $('input').focus();
}

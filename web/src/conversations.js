// Where the user is: opening a channel (join, history), starting a conversation with an agent
// (one per agent: starting it again reopens it), opening a group by name, and the landing — the
// page opens straight into the remembered conversation, or a new one with the default agent.
import { $, api, isUuid, HttpError } from './util.js';
import { SERVER, mode, me, agents, channels, view, channelState, conversationWith, forgetChannel, remember } from './state.js';
import { upsert, fromHistory, oldestLoaded } from './messages.js';
import { pill, notice, renderChannels, renderMessages, renderTitle, updateComposer, closeDrawer } from './views.js';
import { join } from './connection.js';
import { createSession, sessionAlive, sessionHistory, startPolling } from './sessions.js';

const PAGE = 30;

export async function openChannel(id, info = {}) {
  const c = channelState(id, info);
  c.unread = 0;
  view.current = id;
  remember();
  const url = new URL(location.href);
  url.searchParams.set('channel', id);
  history.replaceState(null, '', url);
  pill('st-session', c.sessionId ? 'on' : 'off', c.sessionId ? 'Session active' : 'Group channel');
  renderTitle();
  renderChannels();
  renderMessages({ toBottom: true });
  updateComposer();
  closeDrawer();
  $('input').focus();
  if (mode === 'socket') join(c);
  if (!c.loadedOnce) { c.loadedOnce = true; await loadHistory(c); }
  if (mode === 'sessions') startPolling();
}

export async function loadHistory(c, older = false) {
  if (c.loading || (older && !c.hasMore)) return;
  c.loading = true;
  $('older').hidden = !older;
  try {
    const before = older ? oldestLoaded(c) : undefined;
    let list;
    if (mode === 'sessions' && c.sessionId) {
      const r = await sessionHistory(c, before);
      list = r.list;
      c.hasMore = r.hasMore;
    } else {
      const r = await api('GET', `/api/messaging/channels/${c.id}/messages?limit=${PAGE}${before ? `&before=${before}` : ''}`);
      list = r.data.messages;
      c.hasMore = list.length === PAGE;
    }
    for (const m of list) upsert(c.id, fromHistory(m));
    if (c.id === view.current) renderMessages(older ? { keepScroll: true } : { toBottom: true });
  } catch (e) {
    notice(`Could not load history: ${e.message}`);
  } finally {
    c.loading = false;
    $('older').hidden = true;
  }
}

const starting = new Map(); // agentId → the session being created (a second press waits for it)

/** Opens my conversation with `agentId`, starting one (a session) if I have none. */
export async function talkTo(agentId) {
  if (!agentId) return;
  const mine = conversationWith(agentId);
  if (mine) { await openChannel(mine.id); return; }
  let pending = starting.get(agentId);
  if (!pending) {
    pending = createSession(agentId).finally(() => starting.delete(agentId));
    starting.set(agentId, pending);
  }
  const s = await pending;
  await openChannel(s.channelId, { name: agents.get(agentId) || 'Agent', kind: 'DM', agentId, sessionId: s.sessionId });
}

export async function startConversation() {
  try { await talkTo($('agent').value); } catch (e) { notice(`Could not start a conversation: ${e.message}`); }
}

export async function openGroup(nameOrId) {
  const wanted = nameOrId.trim();
  if (!wanted) return;
  try {
    let found;
    if (isUuid(wanted)) found = await describe(wanted.toLowerCase());
    else {
      const r = await api('GET', `/api/messaging/message-servers/${SERVER}/channels`);
      found = r.data.channels.find((ch) => ch.type === 'GROUP' && ch.name === wanted);
      if (!found) {
        const created = await api('POST', '/api/messaging/channels', { name: wanted, participantCentralUserIds: [me], message_server_id: SERVER, type: 'GROUP' });
        found = created.data;
      }
      found = { id: found.id, name: found.name, kind: 'GROUP' };
    }
    await openChannel(found.id, found);
    $('group').value = '';
  } catch (e) {
    notice(`Could not open the channel: ${e.message}`);
  }
}

/** A readable name for a channel opened by id: a DM is named after its agent. */
async function describe(id) {
  const ch = (await api('GET', `/api/messaging/channels/${id}/details`)).data;
  if (ch.type !== 'DM') return { id, name: ch.name, kind: 'GROUP' };
  const people = (await api('GET', `/api/messaging/channels/${id}/participants`).catch(() => ({ data: [] }))).data || [];
  const agentId = people.find((p) => agents.has(p));
  return { id, name: agentId ? agents.get(agentId) : ch.name, kind: 'DM', agentId };
}

/** Whether a remembered channel is still there (a deleted one leaves my list). */
async function stillThere(c) {
  try {
    if (c.sessionId && mode === 'sessions') return await sessionAlive(c.sessionId);
    await api('GET', `/api/messaging/channels/${c.id}/details`);
    return true;
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) return false;
    return true; // unknown (e.g. offline): keep it
  }
}

/**
 * The landing: `?channel=` if given, else the conversation open last time, else my conversation
 * with the default agent (the first), started now if needed. Resolves to the open channel's id.
 */
export async function land(wanted, remembered, defaultAgent) {
  try {
    if (isUuid(wanted)) {
      const id = wanted.toLowerCase();
      const info = channels.has(id) ? {} : await describe(id).catch((e) => {
        if (e instanceof HttpError && e.status === 404) { notice('That channel does not exist (any more).'); return null; }
        throw e;
      });
      if (info) { await openChannel(id, info); return view.current; }
    }
    const last = channels.get(remembered);
    if (last) {
      if (await stillThere(last)) { await openChannel(last.id); return view.current; }
      forgetChannel(last.id);
      renderChannels();
    }
    const mine = conversationWith(defaultAgent);
    if (mine && !(await stillThere(mine))) { forgetChannel(mine.id); renderChannels(); }
    await talkTo(defaultAgent);
  } catch (e) {
    notice(`Could not open a conversation: ${e.message}`);
  }
  if (!view.current) $('chat-title').textContent = agents.size ? 'Start a conversation or open a channel' : 'No agents here — open a group channel';
  return view.current;
}

/** A channel of mine was deleted: it leaves the list; if it was open, the default conversation
 * takes its place. */
export async function gone(channelId, defaultAgent) {
  const wasOpen = view.current === channelId;
  forgetChannel(channelId);
  renderChannels();
  if (!wasOpen) return;
  notice('This channel was deleted.');
  renderTitle();
  renderMessages();
  try { await talkTo(defaultAgent); } catch (e) { notice(`Could not open a conversation: ${e.message}`); }
}

/** Drops remembered channels that no longer exist (checked once per load, in the background). */
export async function prune() {
  for (const c of [...channels.values()]) {
    if (c.id !== view.current && !(await stillThere(c))) forgetChannel(c.id);
  }
  renderChannels();
}

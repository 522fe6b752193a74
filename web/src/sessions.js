// The sessions API (`/api/messaging/sessions`): a conversation with an agent is a session, whose
// channel this page then uses. In `/chat` mode messages also go through it and the page polls for
// replies; in real-time mode only the session's creation does.
import { api, HttpError } from './util.js';
import { me, channels, view } from './state.js';
import { upsert, fromHistory, newestLoaded } from './messages.js';
import { pill, refresh, setBusy } from './views.js';
import { mark } from './outbox.js';

const POLL_MS = 1500;
const PAGE = 30;
let pollTimer = null;

/** A new session with `agentId`: {sessionId, channelId}. */
export async function createSession(agentId) {
  try {
    const s = await api('POST', '/api/messaging/sessions', { agentId, userId: me, metadata: { client: 'confab-web' } });
    pill('st-session', 'on', 'Session active');
    return s;
  } catch (e) {
    pill('st-session', 'error', 'Session failed');
    throw e;
  }
}

/** Whether a remembered session still exists (sessions expire). */
export async function sessionAlive(sessionId) {
  try { await api('GET', `/api/messaging/sessions/${sessionId}`); return true; } catch (e) {
    if (e instanceof HttpError && (e.status === 404 || e.status === 410)) return false;
    throw e;
  }
}

export async function sessionHistory(c, before) {
  const r = await api('GET', `/api/messaging/sessions/${c.sessionId}/messages?limit=${PAGE}${before ? `&before=${before}` : ''}`);
  return { list: r.messages, hasMore: r.hasMore };
}

export async function sendOverSession(c, m) {
  try {
    const r = await api('POST', `/api/messaging/sessions/${c.sessionId}/messages`, { content: m.text, attachments: m.attachments?.length ? m.attachments : undefined });
    const u = r.userMessage || {};
    upsert(c.id, { ...m, id: u.id || m.id, clientMessageId: m.id, createdAt: u.created_at || m.createdAt, local: false, via: 'api', status: 'sent' });
    setBusy(c.id, true, c.agentId);
    refresh(c.id);
    poll();
  } catch (e) {
    mark(c.id, m.id, 'failed', e.message);
  }
}

export function startPolling() {
  clearInterval(pollTimer);
  pollTimer = setInterval(poll, POLL_MS);
}

async function poll() {
  const c = channels.get(view.current);
  if (!c?.sessionId) return;
  try {
    const newest = newestLoaded(c);
    const r = await api('GET', `/api/messaging/sessions/${c.sessionId}/messages?limit=50${newest ? `&after=${newest - 1}` : ''}`);
    let changed = false;
    for (const m of r.messages) {
      const msg = fromHistory(m);
      changed = upsert(c.id, msg) || changed;
      if (msg.agent) setBusy(c.id, false);
    }
    pill('st-session', 'on', 'Session active');
    if (changed) refresh(c.id);
  } catch (e) {
    pill('st-session', 'error', `Session: ${e.message}`);
  }
}

// The page's state: who I am, the mode, the agents, and my channels (the ones this user opened in
// this browser, remembered per mode and user, so the list shows only my conversations and
// survives a reload).
import { storage, uuid, isUuid } from './util.js';

export const SERVER = '00000000-0000-0000-0000-000000000000';
export const params = new URLSearchParams(location.search);
export const mode = location.pathname.startsWith('/chat') && !location.pathname.startsWith('/chat-socket') ? 'sessions' : 'socket';
export const debug = params.get('debug') === '1';

// ---- identity ---------------------------------------------------------------------------------
let id = storage.get('elizaos-client-user-id', null);
if (!isUuid(id)) { id = uuid(); storage.set('elizaos-client-user-id', id); }
export const me = id;
export const profile = { name: storage.get('confab-name', 'User') };
export function setName(name) {
  profile.name = name.trim() || 'User';
  storage.set('confab-name', profile.name);
}

// ---- agents -----------------------------------------------------------------------------------
/** id → name, in the server's order (the first is the default agent). */
export const agents = new Map();

// ---- channels ---------------------------------------------------------------------------------
/**
 * channelId → {id, name, kind ('DM'|'GROUP'), agentId?, sessionId?, msgs: Map, order: [],
 * lastId, hasMore, loading, busy, unread, joinedOn}. Only channels of this user are here.
 */
export const channels = new Map();
export const view = { current: null };

const listKey = `confab-channels-${mode}-${me}`;
const currentKey = `confab-current-${mode}-${me}`;

export function channelState(channelId, info = {}) {
  let c = channels.get(channelId);
  if (!c) {
    c = { id: channelId, name: `Channel ${channelId.slice(0, 8)}`, kind: 'GROUP', msgs: new Map(), order: [], lastId: null, hasMore: true, loading: false, busy: false, unread: 0, joinedOn: null };
    channels.set(channelId, c);
  }
  Object.assign(c, Object.fromEntries(Object.entries(info).filter(([, v]) => v !== undefined)));
  return c;
}

export function forgetChannel(channelId) {
  channels.delete(channelId);
  if (view.current === channelId) view.current = null;
  remember();
}

/** Writes my channel list and the open conversation to localStorage. */
export function remember() {
  const list = [...channels.values()].map(({ id: cid, name, kind, agentId, sessionId }) => ({ id: cid, name, kind, agentId, sessionId }));
  storage.set(listKey, list);
  storage.set(currentKey, view.current);
}

/** Restores my channel list; returns the conversation that was open. */
export function restore() {
  for (const c of storage.get(listKey, [])) {
    if (c && isUuid(c.id) && !channels.has(c.id)) channelState(c.id, { name: c.name, kind: c.kind, agentId: c.agentId, sessionId: c.sessionId });
  }
  const cur = storage.get(currentKey, null);
  return channels.has(cur) ? cur : null;
}

/** My conversation with an agent, if I have one (one entry per agent). */
export const conversationWith = (agentId) => [...channels.values()].find((c) => c.kind === 'DM' && c.agentId === agentId);

// confab's chat page. Two modes (seed 001): `/chat-socket` (and `/`) — Socket.IO in real time;
// `/chat` — the sessions API with polling. The page follows a message through its modules:
//   state.js          who I am, the agents, my channels (remembered across reloads)
//   conversations.js  the landing, opening channels and conversations, history
//   outbox.js         typing → optimistic bubble → one message per second, queued offline
//   connection.js     the socket: backoff, rejoin with lastMessageId, inbound events
//   sessions.js       the sessions API (conversation creation; `/chat` sends and polling)
//   messages.js       the message store, de-duplicated by id and client message id
//   attach.js         files: upload with progress (button, drop, paste), drawn in bubbles
//   views.js          everything drawn; icons.js the inline SVG icons
import { $, api, storage } from './util.js';
import { placeIcons } from './icons.js';
import { mode, debug, params, agents, channels, view, profile, setName, restore } from './state.js';
import { actions, pill, notice, renderChannels, renderTitle, openDrawer, closeDrawer } from './views.js';
import { connect, connected, reconnectNow, sendOverSocket } from './connection.js';
import { sendOverSession } from './sessions.js';
import { submit, retry, transport } from './outbox.js';
import { openChannel, loadHistory, startConversation, openGroup, land, gone, prune } from './conversations.js';
import { wireAttach } from './attach.js';

function wire(landing) {
  actions.open = (id) => openChannel(id);
  actions.retry = retry;
  actions.gone = (id) => gone(id, agents.keys().next().value);
  $('name').value = profile.name;
  $('name').addEventListener('change', () => setName($('name').value));
  $('theme').addEventListener('click', () => {
    const dark = (document.documentElement.dataset.theme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')) === 'dark';
    document.documentElement.dataset.theme = dark ? 'light' : 'dark';
    storage.set('confab-theme', document.documentElement.dataset.theme);
    localStorage.setItem('confab-theme', document.documentElement.dataset.theme);
  });
  $('menu').addEventListener('click', () => (document.body.classList.contains('menu-open') ? closeDrawer() : openDrawer()));
  $('drawer-close').addEventListener('click', closeDrawer);
  $('scrim').addEventListener('click', closeDrawer);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && document.body.classList.contains('menu-open')) closeDrawer(); });
  $('debug-clear').addEventListener('click', () => $('debug-log').replaceChildren());
  $('start').addEventListener('click', startConversation);
  $('group-form').addEventListener('submit', (e) => { e.preventDefault(); openGroup($('group').value); });
  const send = () => submit(() => landing);
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('reconnect').addEventListener('click', reconnectNow);
  wireAttach();
  $('messages').addEventListener('scroll', () => {
    const c = channels.get(view.current);
    if (c && $('messages').scrollTop < 40) loadHistory(c, true);
  });
  // Back online: try now instead of waiting for the next backoff step.
  window.addEventListener('online', reconnectNow);
}

async function loadAgents() {
  try {
    const r = await api('GET', '/api/agents');
    const sel = $('agent');
    for (const a of r.data.agents) {
      agents.set(a.id, a.name);
      const o = document.createElement('option');
      o.value = a.id; o.textContent = a.name;
      sel.append(o);
    }
    sel.selectedIndex = 0; // the default agent: the first
  } catch (e) {
    notice(`Could not list agents: ${e.message}`);
  }
}

async function init() {
  placeIcons();
  document.querySelector(`.modes a[data-mode="${mode}"]`)?.setAttribute('aria-current', 'page');
  if (debug) $('debug').hidden = false;
  $('input').focus();
  const remembered = restore();
  let resolveLanding;
  wire(new Promise((r) => { resolveLanding = r; }));
  renderChannels();
  renderTitle();

  if (mode === 'socket') {
    transport.online = connected;
    transport.send = sendOverSocket;
    connect();
  } else {
    transport.online = () => true;
    transport.send = sendOverSession;
    pill('st-socket', 'off', 'Socket.IO not used — polling every 1.5 s');
  }
  await loadAgents();
  resolveLanding(await land(params.get('channel'), remembered, agents.keys().next().value));
  prune();
}

init();

// Sending: what the user types becomes an optimistic bubble keyed by a client message id, waits in
// the outbox, and leaves one message per second (seed 001). Offline, everything waits ("queued")
// and is sent when the connection is back — with its ORIGINAL id, every attempt and every retry,
// so the server (which treats `messageId` as an idempotency key) stores it once.
import { $, uuid } from './util.js';
import { channels, profile, view } from './state.js';
import { upsert, local, mark as markMessage } from './messages.js';
import { renderMessages, refresh, notice } from './views.js';
import { take, hasPending } from './attach.js';

const SEND_INTERVAL_MS = 1000;
const queue = []; // {channelId, key}
let lastSendAt = 0;
let timer = null;

/** How messages leave: set by main.js to the socket or the sessions API. */
export const transport = { online: () => false, send: async () => {} };

export function mark(channelId, key, status, error) {
  if (markMessage(channels.get(channelId), key, status, error)) refresh(channelId);
}

/** The composer's text into the outbox (the open conversation is `ready()`'s answer). */
export async function submit(ready) {
  const typed = $('input').value.trim();
  if (!typed && !hasPending()) return;
  const channelId = view.current || (await ready());
  const c = channels.get(channelId);
  if (!c) { notice('Open a conversation or a channel first'); return; }
  if (c.busy) return;
  const attachments = take();
  if (attachments === null) return; // an upload is still running
  // A message needs text (ElizaOS refuses an empty one): files alone are named.
  const text = typed || attachments.map((a) => a.title).join(', ');
  if (!text) return;
  $('input').value = '';
  const key = uuid();
  upsert(c.id, local(c.id, key, profile.name, text, attachments));
  queue.push({ channelId: c.id, key });
  renderMessages({ toBottom: true });
  pump();
}

/** A send that got no answer goes back to the front of the queue, to leave again with its id. */
export function requeue(channelId, key) {
  queue.unshift({ channelId, key });
  pump();
}

export function retry(channelId, key) {
  mark(channelId, key, 'pending');
  queue.push({ channelId, key });
  pump();
}

/** Sends what is waiting, one message per second; offline, everything waits (queued). */
export function pump() {
  clearTimeout(timer);
  while (queue.length) {
    const next = queue[0];
    const c = channels.get(next.channelId);
    const m = c?.msgs.get(next.key);
    if (!m) { queue.shift(); continue; }
    if (!transport.online()) {
      for (const o of queue) mark(o.channelId, o.key, 'queued');
      $('offline').hidden = false;
      return;
    }
    const wait = lastSendAt + SEND_INTERVAL_MS - Date.now();
    if (wait > 0) {
      for (const o of queue) mark(o.channelId, o.key, 'waiting');
      notice(`One message per second — sending in ${(wait / 1000).toFixed(1)} s`);
      timer = setTimeout(pump, wait);
      return;
    }
    queue.shift();
    lastSendAt = Date.now();
    mark(next.channelId, next.key, 'pending');
    transport.send(c, m);
  }
}

// Attachments: files picked with the button, dropped on the conversation or pasted into the
// message box are uploaded at once (XHR, for its upload progress) to the open channel
// (`POST /api/messaging/channels/:id/upload-media`), shown as chips with a progress bar, and
// leave with the next message as `attachments` [{id, url, title, source, contentType}].
// Received attachments are drawn in the bubble: images inline, other files as links. A
// `/media/...` file is fetched with this page's entity (a private channel's files are for its
// members), so it is shown from a blob URL.
import { $, uuid } from './util.js';
import { me, view } from './state.js';
import { icon } from './icons.js';
import { notice } from './views.js';

// ElizaOS's allow-list and limit (the server checks the content too).
const ALLOWED = new Set(['audio/mpeg', 'audio/mp3', 'audio/wav', 'audio/ogg', 'audio/webm', 'audio/mp4', 'audio/aac', 'audio/flac', 'audio/x-wav', 'audio/wave',
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'video/mp4', 'video/webm', 'application/pdf', 'text/plain']);
const MAX_BYTES = 50 * 1024 * 1024;

const pending = []; // {key, name, type, size, progress (0..1), status: 'uploading'|'done'|'failed', url, error, xhr}

/** Whether an attachment is an image, by its declared type or its URL. */
export function isImage(a) {
  const type = (a.contentType || a.type || '').toLowerCase();
  if (type) return type === 'image' || type.startsWith('image/');
  return /^data:image\//i.test(a.url) || /\.(png|jpe?g|gif|webp)(\?|#|$)/i.test(a.url || '');
}

/** Attachments as they arrive (strings or objects), as objects with a url. */
export function normalize(list) {
  if (!Array.isArray(list)) return [];
  return list
    .map((a) => (typeof a === 'string' ? { url: a } : a))
    .filter((a) => a && typeof a.url === 'string' && a.url);
}

function kind(type) {
  if (type.startsWith('image/')) return 'image';
  if (type.startsWith('video/')) return 'video';
  if (type.startsWith('audio/')) return 'audio';
  return 'document';
}

/** Uploads files to the open conversation. */
export function addFiles(files) {
  const channelId = view.current;
  if (!channelId) { notice('Open a conversation or a channel first'); return; }
  for (const file of files) {
    if (!ALLOWED.has(file.type)) { notice(`${file.name}: this type of file cannot be sent (${file.type || 'unknown type'})`); continue; }
    if (file.size > MAX_BYTES) { notice(`${file.name}: larger than 50 MB`); continue; }
    const p = { key: uuid(), name: file.name || 'pasted file', type: file.type, size: file.size, progress: 0, status: 'uploading', channelId };
    pending.push(p);
    upload(p, file);
  }
  render();
}

function upload(p, file) {
  const form = new FormData();
  form.append('file', file, p.name);
  const xhr = new XMLHttpRequest();
  p.xhr = xhr;
  xhr.open('POST', `/api/messaging/channels/${p.channelId}/upload-media`);
  xhr.setRequestHeader('x-entity-id', me);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) { p.progress = e.loaded / e.total; render(); } };
  xhr.onload = () => {
    let json = {};
    try { json = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 200 && json.data?.url) {
      p.status = 'done';
      p.progress = 1;
      p.url = json.data.url;
    } else {
      p.status = 'failed';
      p.error = json.error?.message || json.error || `HTTP ${xhr.status}`;
      notice(`${p.name}: ${p.error}`);
    }
    render();
  };
  xhr.onerror = () => { p.status = 'failed'; p.error = 'network error'; render(); };
  xhr.send(form);
}

function drop(p) {
  p.xhr?.abort();
  pending.splice(pending.indexOf(p), 1);
  render();
}

/** The uploaded attachments for the message being sent (and the composer forgets them), or
 * `null` while an upload is still running. */
export function take() {
  const here = pending.filter((p) => p.channelId === view.current);
  if (here.some((p) => p.status === 'uploading')) { notice('Wait for the upload to finish'); return null; }
  const done = here.filter((p) => p.status === 'done');
  for (const p of here) pending.splice(pending.indexOf(p), 1);
  render();
  return done.map((p) => ({ id: p.key, url: p.url, title: p.name, source: 'upload', contentType: kind(p.type) }));
}

export const hasPending = () => pending.some((p) => p.channelId === view.current && p.status === 'done');

/** The chips above the message box. */
export function render() {
  const box = $('attachments');
  const here = pending.filter((p) => p.channelId === view.current);
  box.hidden = here.length === 0;
  box.replaceChildren(...here.map((p) => {
    const chip = document.createElement('div');
    chip.className = 'chip';
    chip.dataset.status = p.status;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = p.name;
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.value = p.progress;
    bar.hidden = p.status !== 'uploading';
    bar.setAttribute('aria-label', `Uploading ${p.name}`);
    const x = document.createElement('button');
    x.type = 'button';
    x.className = 'icon-btn';
    x.setAttribute('aria-label', `Remove ${p.name}`);
    x.append(icon('close'));
    x.addEventListener('click', () => drop(p));
    chip.append(icon(p.status === 'failed' ? 'alert' : 'clip'), name, bar, x);
    if (p.status === 'failed') chip.title = p.error;
    return chip;
  }));
}

// ---- showing received attachments ------------------------------------------------------------
const blobs = new Map(); // /media url → Promise<blob url>

function mediaUrl(url) {
  if (!url.startsWith('/media/')) return Promise.resolve(url);
  if (!blobs.has(url)) {
    blobs.set(url, fetch(url, { headers: { 'x-entity-id': me } }).then(async (r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return URL.createObjectURL(await r.blob());
    }).catch((e) => { blobs.delete(url); throw e; }));
  }
  return blobs.get(url);
}

function nameOf(a) {
  return a.title || a.name || decodeURIComponent((a.url.split(/[?#]/)[0].split('/').pop()) || 'file');
}

/** The attachments of a bubble: images inline, other files as links. */
export function attachmentsEl(list) {
  const items = normalize(list);
  if (!items.length) return null;
  const box = document.createElement('div');
  box.className = 'attachments';
  for (const a of items) {
    const safe = a.url.startsWith('/media/') || /^https?:\/\//i.test(a.url) || /^data:image\//i.test(a.url);
    if (!safe) continue;
    if (isImage(a)) {
      const img = document.createElement('img');
      img.alt = nameOf(a);
      img.loading = 'lazy';
      img.className = 'attachment-image';
      mediaUrl(a.url).then((src) => { img.src = src; }).catch(() => { img.replaceWith(link(a)); });
      box.append(img);
    } else {
      box.append(link(a));
    }
  }
  return box;
}

function link(a) {
  const el = document.createElement('a');
  el.className = 'attachment-link';
  el.href = a.url;
  el.target = '_blank';
  el.rel = 'noopener noreferrer';
  el.append(icon('clip'), nameOf(a));
  if (a.url.startsWith('/media/')) {
    // Fetched with this page's entity, then saved under its name.
    el.addEventListener('click', async (e) => {
      e.preventDefault();
      try {
        const href = await mediaUrl(a.url);
        const save = document.createElement('a');
        save.href = href;
        save.download = nameOf(a);
        save.click();
      } catch (err) {
        notice(`${nameOf(a)}: ${err.message}`);
      }
    });
  }
  return el;
}

/** The button, drag-and-drop on the conversation, paste into the message box. */
export function wireAttach() {
  const picker = $('file');
  $('attach').addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => { addFiles([...picker.files]); picker.value = ''; });
  const zone = document.querySelector('main.chat');
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  zone.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); zone.classList.add('dropping'); } });
  zone.addEventListener('dragleave', (e) => { if (!zone.contains(e.relatedTarget)) zone.classList.remove('dropping'); });
  zone.addEventListener('drop', (e) => {
    zone.classList.remove('dropping');
    if (!hasFiles(e)) return;
    e.preventDefault();
    addFiles([...e.dataTransfer.files]);
  });
  $('input').addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (!files.length) return;
    e.preventDefault();
    addFiles(files);
  });
}

// The chat page's attachments in a real browser (Debian's Chromium through playwright-core):
// a file by the button (with upload progress), by drag-and-drop and by paste; images inline,
// other files as links; the message's attachments reach another member and history (a reload
// shows them again). Screenshots in artifacts/media-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { startServer } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const T = 20000;
const W = 160;
const H = 100;
const PNG = png(W, H);

/** A W×H RGB PNG with a colour gradient, built by hand (zlib and CRC-32). */
function png(w, h) {
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3);
    for (let x = 0; x < w; x++) row.set([Math.round((255 * x) / w), Math.round((255 * y) / h), 180], 1 + x * 3);
    rows.push(row);
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}
const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');

let browser;
let srv;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startServer();
});
after(async () => { await browser?.close(); await srv?.stop(); });

/** Every message (`message` type 2) the page sends over its websockets. */
function sentMessages(page) {
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', ({ payload }) => {
    const m = /^42\d*(\[.*)$/.exec(String(payload));
    if (!m) return;
    const [name, data] = JSON.parse(m[1]);
    if (name === 'message' && data?.type === 2) sent.push(data.payload);
  }));
  return sent;
}

/** Drops or pastes a file built in the page. */
function inject(page, how, { name, type, base64 }) {
  return page.evaluate(({ how, name, type, base64 }) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type }));
    if (how === 'drop') {
      const zone = document.querySelector('main.chat');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    } else {
      document.getElementById('input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }
  }, { how, name, type, base64 });
}

/** Waits (bounded) for the page to send the message with this text (one per second leaves). */
async function sentWith(sent, text, ms = T) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const found = sent.find((p) => p.message === text);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the page never sent ${JSON.stringify(text)}`);
}

const chipDone = (page, name) => page.waitForSelector(`#attachments .chip[data-status="done"]:has-text("${name}")`, { timeout: T });

test('attach by button (with progress), drag-and-drop and paste; images inline, files as links; history keeps them', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const sent = sentMessages(page);
  await page.goto(`${srv.url}/`);
  await page.waitForSelector('#st-socket[data-state="on"]', { timeout: T });
  await page.waitForFunction(() => !document.getElementById('chat-title').textContent.includes('Starting'), null, { timeout: T });

  // Progress: record every state the chips go through.
  await page.evaluate(() => {
    window.__chips = [];
    new MutationObserver(() => {
      for (const c of document.querySelectorAll('#attachments .chip')) {
        window.__chips.push(`${c.dataset.status}:${c.querySelector('progress').value}`);
      }
    }).observe(document.getElementById('attachments'), { subtree: true, childList: true, attributes: true });
  });
  // 1. The button: a picture, plus a larger text file whose upload shows progress.
  await page.setInputFiles('#file', [
    { name: 'photo.png', mimeType: 'image/png', buffer: PNG },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.alloc(8 * 1024 * 1024, 'confab ') },
  ]);
  await chipDone(page, 'photo.png');
  await chipDone(page, 'notes.txt');
  const chips = await page.evaluate(() => window.__chips);
  assert.ok(chips.some((c) => c.startsWith('uploading:')), `an uploading chip was shown: ${chips.slice(0, 5)}`);
  assert.ok(chips.some((c) => /^uploading:0\.\d+|^uploading:1/.test(c) && !c.endsWith(':0')), `progress moved: ${[...new Set(chips)].join(' ')}`);
  await page.locator('#input').fill('look at this');
  await page.locator('#input').press('Enter');
  const mine = page.locator('.msg', { hasText: 'look at this' });
  await mine.locator('img.attachment-image').waitFor({ timeout: T });
  await page.waitForFunction(() => [...document.querySelectorAll('.msg img.attachment-image')].some((i) => i.complete && i.naturalWidth === 160), null, { timeout: T });
  await mine.locator('a.attachment-link', { hasText: 'notes.txt' }).waitFor({ timeout: T });
  const first = await sentWith(sent, 'look at this');
  assert.equal(first.attachments.length, 2);
  assert.match(first.attachments[0].url, new RegExp(`^/media/uploads/channels/${first.channelId}/\\d+-\\d+\\.png$`));
  assert.deepEqual({ ...first.attachments[0], url: undefined, id: undefined }, { url: undefined, id: undefined, title: 'photo.png', source: 'upload', contentType: 'image' });
  assert.equal(await page.locator('#attachments').isHidden(), true, 'the chips leave with the message');

  // 2. Drag-and-drop a PDF: a link.
  await inject(page, 'drop', { name: 'report.pdf', type: 'application/pdf', base64: PDF.toString('base64') });
  await chipDone(page, 'report.pdf');
  await page.locator('#input').fill('the report');
  await page.locator('#input').press('Enter');
  await page.locator('.msg', { hasText: 'the report' }).locator('a.attachment-link', { hasText: 'report.pdf' }).waitFor({ timeout: T });

  // 3. Paste an image with no text: the message is named after the file.
  await inject(page, 'paste', { name: 'pasted.png', type: 'image/png', base64: PNG.toString('base64') });
  await chipDone(page, 'pasted.png');
  await page.locator('#input').press('Enter');
  await page.locator('.msg', { hasText: 'pasted.png' }).locator('img.attachment-image').waitFor({ timeout: T });
  assert.equal((await sentWith(sent, 'pasted.png')).attachments[0].title, 'pasted.png');

  // 4. A type the server refuses is refused in the page, nothing uploaded.
  await inject(page, 'drop', { name: 'evil.html', type: 'text/html', base64: Buffer.from('<script>1</script>').toString('base64') });
  await page.waitForFunction(() => /cannot be sent/.test(document.getElementById('notice').textContent), null, { timeout: T });
  assert.equal(await page.locator('#attachments .chip').count(), 0);
  await page.screenshot({ path: join(ARTIFACTS, 'media-desktop.png') });

  // 5. The history: a reload draws the same attachments from the server.
  await page.reload();
  await page.locator('.msg', { hasText: 'look at this' }).locator('img.attachment-image').waitFor({ timeout: T });
  await page.locator('.msg', { hasText: 'the report' }).locator('a.attachment-link', { hasText: 'report.pdf' }).waitFor({ timeout: T });
  await page.waitForFunction(() => [...document.querySelectorAll('.msg img.attachment-image')].every((i) => i.complete && i.naturalWidth === 160), null, { timeout: T });

  // Phone size: the attach button is there and usable.
  await page.setViewportSize({ width: 390, height: 800 });
  // The drawer slides away at this width: wait until it is off screen.
  await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0, null, { timeout: T });
  assert.equal(await page.locator('#attach').isVisible(), true);
  const box = await page.locator('#attach').boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, 'the attach button is on screen');
  await page.screenshot({ path: join(ARTIFACTS, 'media-phone.png') });
  assert.deepEqual(errors, []);
  await ctx.close();
});

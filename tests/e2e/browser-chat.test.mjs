// The web chat page in a real browser (Debian's Chromium through playwright-core) against the
// real server: a streamed agent reply, two people in one group channel, a server restart with
// an offline queue, the sessions-API mode, and a screenshot (artifacts/chat.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { BIN, startServer, waitFor, uuid, emitAck, DEFAULT_SERVER } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const T = 20000; // bound on every wait

let browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => { await browser?.close(); });

/** A page with its console errors collected (a page error fails the test at the end). */
async function openPage(url, { viewport = { width: 1200, height: 800 }, context } = {}) {
  const ctx = context || (await browser.newContext({ viewport }));
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return { ctx, page, errors };
}

const socketReady = (page) => page.waitForSelector('#st-socket[data-state="on"]', { timeout: T });
const bubbles = (page, text) => page.locator('.msg .text', { hasText: text });

async function sendFromPage(page, text) {
  await page.locator('#input').fill(text);
  await page.locator('#input').press('Enter');
}

/** Records, in the page, every state the thinking indicator and streaming bubbles go through. */
function watchRun(page) {
  return page.evaluate(() => {
    window.__seen = [];
    const note = () => {
      if (!document.getElementById('thinking').hidden) window.__seen.push('thinking:' + document.getElementById('thinking-text').textContent);
      if (document.querySelector('.msg.streaming')) window.__seen.push('streaming');
      if (document.getElementById('input').disabled) window.__seen.push('input-disabled');
    };
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

test('send → thinking indicator → streamed agent reply; history loads with API badges', async () => {
  const srv = await startServer();
  const { ctx, page, errors } = await openPage(`${srv.url}/chat-socket?debug=1`);
  try {
    await socketReady(page);
    assert.equal(await page.locator('#agent option:checked').textContent(), 'Eliza');
    await page.locator('#start').click();
    await page.waitForSelector('#st-session[data-state="on"]', { timeout: T });
    await page.waitForFunction(() => !document.getElementById('input').disabled, null, { timeout: T });
    await watchRun(page);

    await sendFromPage(page, 'I am unhappy.');
    // The user's message shows at once, then the reply streams in and is finalised.
    await bubbles(page, 'I am unhappy.').first().waitFor({ timeout: T });
    const reply = page.locator('.msg.agent:not(.streaming)');
    await reply.first().waitFor({ timeout: T });
    await page.waitForFunction(() => !document.getElementById('input').disabled, null, { timeout: T });
    const seen = await page.evaluate(() => window.__seen);
    assert.ok(seen.includes('thinking:Eliza is thinking'), `thinking indicator shown: ${seen}`);
    assert.ok(seen.includes('streaming'), 'the reply streamed');
    assert.ok(seen.includes('input-disabled'), 'input disabled during the run');
    assert.equal(await reply.count(), 1);
    assert.match(await reply.locator('.badge').textContent(), /⚡ Live/);
    assert.match(await reply.locator('strong').textContent(), /Eliza/);
    assert.equal(await bubbles(page, 'I am unhappy.').count(), 1, 'own message once (echo replaced it)');
    assert.match(await page.locator('.msg.mine .badge').textContent(), /⚡ Live/);
    assert.ok(await page.locator('#thinking').isHidden());
    // The debug panel logged the run's events.
    const logText = await page.locator('#debug-log').textContent();
    for (const ev of ['controlMessage', 'messageStreamChunk', 'messageBroadcast', 'messageComplete']) {
      assert.ok(logText.includes(ev), `debug log has ${ev}`);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'chat.png') });

    // A reload loads the conversation over HTTP: same two messages, 📡 API badges.
    await page.reload();
    await socketReady(page);
    await page.locator('.msg.agent').first().waitFor({ timeout: T });
    assert.equal(await page.locator('.msg').count(), 2);
    assert.match(await page.locator('.msg.agent .badge').textContent(), /📡 API/);

    // Phone-sized, dark theme: the sidebar collapses behind the menu button.
    const phoneUrl = new URL(page.url());
    phoneUrl.searchParams.delete('debug');
    const phone = await openPage(phoneUrl.href, {
      context: await browser.newContext({ viewport: { width: 390, height: 760 }, colorScheme: 'dark', storageState: await ctx.storageState() }),
    });
    await phone.page.locator('.msg.agent').first().waitFor({ timeout: T });
    assert.ok(await phone.page.locator('#sidebar').evaluate((el) => el.getBoundingClientRect().right <= 0), 'sidebar hidden on a phone');
    await phone.page.locator('#menu').click();
    await phone.page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0, null, { timeout: T });
    await phone.page.locator('#menu').click();
    await phone.page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0, null, { timeout: T });
    await phone.page.screenshot({ path: join(ARTIFACTS, 'chat-phone-dark.png') });
    await phone.ctx.close();
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.stop();
  }
});

test('two browsers in one group channel see each other once; sends are throttled visibly', async () => {
  const srv = await startServer();
  const a = await openPage(`${srv.url}/chat-socket`);
  const b = await openPage(`${srv.url}/chat-socket`);
  try {
    const name = `lobby-${uuid().slice(0, 6)}`;
    for (const { page } of [a, b]) {
      await socketReady(page);
      await page.locator('#name').fill(page === a.page ? 'Ann' : 'Bob');
      await page.locator('#name').dispatchEvent('change');
    }
    // Keyboard only: focus the field, type, Enter.
    await a.page.locator('#group').focus();
    await a.page.keyboard.type(name);
    await a.page.keyboard.press('Enter');
    await a.page.waitForFunction((n) => document.getElementById('chat-title').textContent.includes(n), name, { timeout: T });
    await b.page.locator('#group').fill(name);
    await b.page.locator('#group').press('Enter');
    await b.page.waitForFunction((n) => document.getElementById('chat-title').textContent.includes(n), name, { timeout: T });
    assert.equal(new URL(a.page.url()).searchParams.get('channel'), new URL(b.page.url()).searchParams.get('channel'), 'same channel');
    await a.page.waitForFunction(() => !document.getElementById('input').disabled, null, { timeout: T });
    await b.page.waitForFunction(() => !document.getElementById('input').disabled, null, { timeout: T });
    // Both joined before anyone speaks.
    await a.page.waitForFunction(() => document.querySelector('#st-realtime').dataset.state === 'live', null, { timeout: T });

    await sendFromPage(a.page, 'hello from Ann');
    await bubbles(b.page, 'hello from Ann').waitFor({ timeout: T });
    await sendFromPage(b.page, 'hi from Bob');
    await sendFromPage(b.page, 'second from Bob'); // within a second of the first: waits, visibly
    await b.page.waitForSelector('.msg[data-status="waiting"]', { timeout: T });
    assert.match(await b.page.locator('#notice').textContent(), /One message per second/);
    for (const { page } of [a, b]) {
      await bubbles(page, 'second from Bob').waitFor({ timeout: T });
      await page.waitForFunction(() => document.querySelectorAll('.msg[data-status="sent"]').length === 3, null, { timeout: T });
      for (const text of ['hello from Ann', 'hi from Bob', 'second from Bob']) {
        assert.equal(await bubbles(page, text).count(), 1, `${text} once`);
      }
    }
    // Order is the same on both sides.
    const order = (page) => page.locator('.msg .text').allTextContents();
    assert.deepEqual(await order(a.page), await order(b.page));
    assert.match(await b.page.locator('.msg', { hasText: 'hello from Ann' }).locator('strong').textContent(), /Ann/);
    assert.deepEqual([...a.errors, ...b.errors], []);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
    await srv.stop();
  }
});

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** confab on a fixed port and data directory, so it can be killed and started again. */
async function startAt(port, dir) {
  const proc = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dir], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start in 20s\n${stderr}`)), T);
    let out = '';
    proc.stdout.on('data', (d) => { out += d; if (/listening on/.test(out)) { clearTimeout(timer); resolve(); } });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}\n${stderr}`)); });
  });
  proc.removeAllListeners('exit');
  const exited = new Promise((r) => proc.on('exit', r));
  return { proc, kill9: async () => { proc.kill('SIGKILL'); await exited; }, stop: async () => { proc.kill('SIGTERM'); await exited; } };
}

test('server killed and restarted: the page reconnects, rejoins, recovers missed messages, flushes its offline queue', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let srv = await startAt(port, dir);
  const { ctx, page, errors } = await openPage(`${url}/chat-socket?debug=1`);
  // While `blocked`, the page's WebSocket attempts fail: the window in which it is away is ours.
  let blocked = false;
  await page.routeWebSocket(/\/socket\.io\//, (ws) => { if (blocked) ws.close(); else ws.connectToServer(); });
  await page.route(/\/socket\.io\//, (route) => (blocked ? route.abort() : route.continue()));
  let writer;
  try {
    await socketReady(page);
    const name = `restart-${uuid().slice(0, 6)}`;
    await page.locator('#group').fill(name);
    await page.locator('#group').press('Enter');
    await page.waitForFunction((n) => document.getElementById('chat-title').textContent.includes(n), name, { timeout: T });
    const channelId = new URL(page.url()).searchParams.get('channel');
    await sendFromPage(page, 'before the restart');
    await page.waitForSelector('.msg[data-status="sent"]', { timeout: T });

    blocked = true;
    await srv.kill9();
    await page.waitForSelector('#offline:not([hidden])', { timeout: T });
    await page.waitForSelector('#st-socket:not([data-state="on"])', { timeout: T });
    await sendFromPage(page, 'typed while offline');
    await page.waitForSelector('.msg[data-status="queued"]', { timeout: T });

    srv = await startAt(port, dir);
    writer = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { entityId: uuid() } });
    await waitFor(writer, 'connect', () => true, T);
    const joined = waitFor(writer, 'channel_joined', () => true, T);
    writer.emit('message', { type: 1, payload: { channelId, messageServerId: DEFAULT_SERVER } });
    await joined;
    const fromPage = waitFor(writer, 'messageBroadcast', (m) => m.text === 'typed while offline', T);
    const ack = await emitAck(writer, 'message', { type: 2, payload: { channelId, messageServerId: DEFAULT_SERVER, senderId: uuid(), senderName: 'Writer', message: 'sent while you were away' } }, T);
    assert.equal(ack.success, true);

    blocked = false;
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await socketReady(page);
    await bubbles(page, 'sent while you were away').waitFor({ timeout: T });
    const flushed = await fromPage;
    assert.equal(flushed.channelId, channelId);
    await page.waitForFunction(() => !document.querySelector('.msg[data-status="queued"], .msg[data-status="pending"]'), null, { timeout: T });
    for (const text of ['before the restart', 'typed while offline', 'sent while you were away']) {
      assert.equal(await bubbles(page, text).count(), 1, `${text} once`);
    }
    assert.match(await page.locator('.msg', { hasText: 'sent while you were away' }).locator('.badge').textContent(), /⚡ Live/);
    const log = await page.locator('#debug-log').textContent();
    assert.match(log, /lastMessageId/, 'rejoined with a resume point');
    await page.screenshot({ path: join(ARTIFACTS, 'chat-after-restart.png') });
    assert.deepEqual(errors, []);
  } finally {
    writer?.close();
    await ctx.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('/chat: the sessions API with polling', async () => {
  const srv = await startServer();
  const { ctx, page, errors } = await openPage(`${srv.url}/chat`);
  try {
    assert.match(await page.locator('#st-socket').textContent(), /not used/);
    await page.locator('#agent option:checked').waitFor({ state: 'attached', timeout: T });
    await page.locator('#start').click();
    await page.waitForSelector('#st-session[data-state="on"]', { timeout: T });
    await page.waitForFunction(() => !document.getElementById('input').disabled, null, { timeout: T });
    await sendFromPage(page, 'My mother takes care of me.');
    const reply = page.locator('.msg.agent');
    await reply.first().waitFor({ timeout: T });
    assert.match(await reply.locator('.badge').textContent(), /📡 API/);
    assert.match(await reply.locator('.text').textContent(), /family|mother/i);
    assert.equal(await bubbles(page, 'My mother takes care of me.').count(), 1);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.stop();
  }
});

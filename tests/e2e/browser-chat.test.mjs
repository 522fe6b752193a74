// The web chat page in a real browser (Debian's Chromium through playwright-core) against the
// real server: the landing (a new user types and the default agent answers, no click), my
// channels only and no duplicates across reloads and repeated presses, the phone-sized drawer, a
// streamed agent reply, two people in one group channel, a server restart with an offline queue,
// the sessions-API mode, and screenshots (artifacts/*.png).
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
import { BIN, startServer, waitFor, uuid, emitAck, request, DEFAULT_SERVER } from './harness.mjs';

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

/** Every join (`message` type 1) the page sends over its websockets, by channel id. */
function countJoins(page) {
  const joins = [];
  page.on('websocket', (ws) => ws.on('framesent', ({ payload }) => {
    const m = /^42(\[.*)$/.exec(String(payload));
    if (!m) return;
    const [name, data] = JSON.parse(m[1]);
    if (name === 'message' && data?.type === 1) joins.push(data.payload.channelId);
  }));
  return joins;
}
const entries = (page) => page.locator('#channels .channel').allTextContents();
const landed = (page, name) => page.waitForFunction((n) => document.getElementById('chat-title').textContent.includes(n), name, { timeout: T });

test('a new user lands in a conversation with the default agent: types "Hello", Enter, the agent answers — no click', async () => {
  const srv = await startServer();
  const first = (await request(srv.url, 'GET', '/api/agents')).json.data.agents[0];
  const { ctx, page, errors } = await openPage(`${srv.url}/`);
  const joins = countJoins(page);
  try {
    await landed(page, first.name);
    await page.waitForFunction(() => document.activeElement?.id === 'input', null, { timeout: T });
    await page.keyboard.type('Hello');
    await page.keyboard.press('Enter');
    await bubbles(page, 'Hello').first().waitFor({ timeout: T });
    const reply = page.locator('.msg.agent:not(.streaming)');
    await reply.first().waitFor({ timeout: T });
    assert.match(await reply.locator('strong').textContent(), new RegExp(first.name));
    assert.equal(await page.locator('#name').inputValue(), 'User', 'the name box did not get the text');
    assert.ok(await page.locator('#menu').isHidden(), 'no drawer button on a desktop');
    // Icons are inline SVG, never emoji (which render as empty boxes without an emoji font).
    const shownText = await page.locator('body').innerText();
    assert.ok(!/\p{Extended_Pictographic}/u.test(shownText), `no emoji on the page: ${shownText}`);
    assert.ok(await page.locator('#send svg').count() === 1 && await page.locator('#menu svg').count() === 1);
    // Connected reads green: the dot has the page's "ok" colour.
    await socketReady(page);
    const dot = await page.locator('#st-socket i').evaluate((el) => {
      const probe = document.createElement('i');
      probe.style.color = getComputedStyle(document.documentElement).getPropertyValue('--ok');
      document.body.append(probe);
      const ok = getComputedStyle(probe).color;
      probe.remove();
      return { dot: getComputedStyle(el).backgroundColor, ok };
    });
    assert.equal(dot.dot, dot.ok);
    assert.deepEqual(await entries(page), [first.name], 'one readable entry');
    const channelId = new URL(page.url()).searchParams.get('channel');
    assert.equal(joins.filter((id) => id === channelId).length, 1, `joined once: ${joins}`);
    await page.screenshot({ path: join(ARTIFACTS, 'landing-desktop.png') });

    // "Start conversation" twice: the same conversation, one entry, no new session.
    await page.locator('#start').click();
    await page.locator('#start').click();
    await landed(page, first.name);
    assert.equal(new URL(page.url()).searchParams.get('channel'), channelId);
    assert.deepEqual(await entries(page), [first.name]);

    // A reload (also from the bare address) reopens it: history, one entry, one join.
    for (const url of [page.url(), `${srv.url}/`]) {
      joins.length = 0;
      await page.goto(url);
      await landed(page, first.name);
      await page.locator('.msg.agent').first().waitFor({ timeout: T });
      await socketReady(page);
      await page.waitForFunction(() => document.activeElement?.id === 'input', null, { timeout: T });
      assert.equal(new URL(page.url()).searchParams.get('channel'), channelId, 'the same conversation');
      assert.equal(await page.locator('.msg').count(), 2);
      assert.deepEqual(await entries(page), [first.name]);
      assert.deepEqual(joins, [channelId], 'one join after the reload');
    }
    // Nothing else was started for this user behind the list's back.
    await page.locator('#start').click();
    await landed(page, first.name);
    assert.deepEqual(await entries(page), [first.name]);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.stop();
  }
});

test('the channel list shows only my channels, each with a readable name', async () => {
  const srv = await startServer();
  const other = uuid();
  const agentId = (await request(srv.url, 'GET', '/api/agents')).json.data.agents[0].id;
  // Someone else's group, DM and session, made before the page opens.
  const theirGroup = `theirs-${uuid().slice(0, 6)}`;
  assert.equal((await request(srv.url, 'POST', '/api/messaging/channels', { name: theirGroup, participantCentralUserIds: [other], message_server_id: DEFAULT_SERVER, type: 'GROUP' })).status, 201);
  assert.equal((await request(srv.url, 'POST', '/api/messaging/channels', { name: 'their-dm', participantCentralUserIds: [other, agentId], message_server_id: DEFAULT_SERVER, type: 'DM' })).status, 201);
  const s = await request(srv.url, 'POST', '/api/messaging/sessions', { agentId, userId: other });
  assert.ok(s.json.channelId, JSON.stringify(s.json));
  const all = (await request(srv.url, 'GET', `/api/messaging/message-servers/${DEFAULT_SERVER}/channels`)).json.data.channels;
  assert.ok(all.length >= 3, 'the server lists them all');

  const { ctx, page, errors } = await openPage(`${srv.url}/chat-socket`);
  try {
    await landed(page, 'Eliza');
    await socketReady(page);
    const mine = `mine-${uuid().slice(0, 6)}`;
    await page.locator('#group').fill(mine);
    await page.locator('#group').press('Enter');
    await landed(page, mine);
    assert.deepEqual(await entries(page), ['Eliza', mine]);
    // And after a reload, in the same order, still without theirs.
    await page.reload();
    await landed(page, mine);
    assert.deepEqual(await entries(page), ['Eliza', mine]);
    const text = await page.locator('#channels').textContent();
    for (const theirs of [theirGroup, 'their-dm', 'Chat ']) assert.ok(!text.includes(theirs), `${theirs} is not listed`);

    // My group is deleted while open: it leaves the list, the page falls back to the agent, and
    // a reload (whose address still names the deleted channel) does not bring it back.
    const mineId = new URL(page.url()).searchParams.get('channel');
    const staleUrl = page.url();
    assert.equal((await request(srv.url, 'DELETE', `/api/messaging/channels/${mineId}`)).status, 204);
    await landed(page, 'Eliza');
    await page.waitForFunction(() => document.querySelectorAll('#channels .channel').length === 1, null, { timeout: T });
    assert.deepEqual(await entries(page), ['Eliza']);
    await page.goto(staleUrl);
    await landed(page, 'Eliza');
    assert.deepEqual(await entries(page), ['Eliza']);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.stop();
  }
});

test('phone size: the drawer opens, closes after an action, on a tap outside and on Escape; the picker is reachable', async () => {
  const srv = await startServer();
  const { ctx, page, errors } = await openPage(`${srv.url}/`, { viewport: { width: 390, height: 844 } });
  const drawerOpen = () => page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0, null, { timeout: T });
  const drawerClosed = () => page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0, null, { timeout: T });
  try {
    await landed(page, 'Eliza');
    await drawerClosed();
    // The placeholder fits its box.
    const fit = await page.locator('#input').evaluate((el) => {
      const cs = getComputedStyle(el);
      const ctx2d = document.createElement('canvas').getContext('2d');
      ctx2d.font = `${cs.fontSize} ${cs.fontFamily}`;
      const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      return { text: el.placeholder, width: ctx2d.measureText(el.placeholder).width, room };
    });
    assert.ok(fit.width <= fit.room, `placeholder "${fit.text}" (${fit.width}px) fits in ${fit.room}px`);
    await page.screenshot({ path: join(ARTIFACTS, 'landing-phone.png') });

    // Picking an agent and starting: the drawer closes by itself.
    await page.locator('#menu').click();
    await drawerOpen();
    const box = await page.locator('#agent').boundingBox();
    assert.ok(box && box.x >= 0 && box.y >= 0 && box.x + box.width <= 390 && box.y + box.height <= 844, `agent picker on screen: ${JSON.stringify(box)}`);
    await page.screenshot({ path: join(ARTIFACTS, 'phone-drawer.png') });
    await page.locator('#agent').selectOption({ index: 0 });
    await page.locator('#start').click();
    await drawerClosed();
    // Escape closes it.
    await page.locator('#menu').click();
    await drawerOpen();
    await page.keyboard.press('Escape');
    await drawerClosed();
    // A tap outside (on the dimmed chat) closes it.
    await page.locator('#menu').click();
    await drawerOpen();
    await page.mouse.click(375, 500);
    await drawerClosed();
    // Opening a channel from the list closes it.
    await page.locator('#menu').click();
    await drawerOpen();
    await page.locator('#channels .channel').first().click();
    await drawerClosed();
    assert.equal(await page.locator('#channels .channel').count(), 1);
    // The message box still works after all that.
    await page.locator('#input').fill('Hello from a phone');
    await page.locator('#input').press('Enter');
    await page.locator('.msg.agent:not(.streaming)').first().waitFor({ timeout: T });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.stop();
  }
});

test('send → thinking indicator → streamed agent reply; history loads with API badges', async () => {
  const srv = await startServer();
  const { ctx, page, errors } = await openPage(`${srv.url}/chat-socket?debug=1`);
  try {
    await socketReady(page);
    assert.equal(await page.locator('#agent option:checked').textContent(), 'Eliza');
    await page.locator('#start').click(); // while the landing starts the same conversation
    await page.waitForSelector('#st-session[data-state="on"]', { timeout: T });
    await page.waitForFunction(() => !document.getElementById('input').disabled, null, { timeout: T });
    await landed(page, 'Eliza');
    assert.deepEqual(await entries(page), ['Eliza'], 'one conversation, not two');
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
    assert.match(await reply.locator('.badge').textContent(), /Live/);
    assert.match(await reply.locator('strong').textContent(), /Eliza/);
    assert.equal(await bubbles(page, 'I am unhappy.').count(), 1, 'own message once (echo replaced it)');
    assert.match(await page.locator('.msg.mine .badge').textContent(), /Live/);
    assert.ok(await page.locator('#thinking').isHidden());
    // The debug panel logged the run's events.
    const logText = await page.locator('#debug-log').textContent();
    for (const ev of ['controlMessage', 'messageStreamChunk', 'messageBroadcast', 'messageComplete']) {
      assert.ok(logText.includes(ev), `debug log has ${ev}`);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'chat.png') });

    // A reload loads the conversation over HTTP: same two messages, API badges.
    await page.reload();
    await socketReady(page);
    await page.locator('.msg.agent').first().waitFor({ timeout: T });
    assert.equal(await page.locator('.msg').count(), 2);
    assert.match(await page.locator('.msg.agent .badge').textContent(), /API/);

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
    await phone.page.locator('#drawer-close').click();
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
    await a.page.waitForFunction(() => document.querySelector('#st-socket').dataset.state === 'on', null, { timeout: T });

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
    const queuedId = await page.locator('.msg[data-status="queued"]').getAttribute('data-id');

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
    assert.match(await page.locator('.msg', { hasText: 'sent while you were away' }).locator('.badge').textContent(), /Live/);
    const log = await page.locator('#debug-log').textContent();
    assert.match(log, /lastMessageId/, 'rejoined with a resume point');
    assert.ok(log.includes(`"messageId":"${queuedId}"`), 'the queued message went out with the id it was given when typed');
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
    assert.match(await reply.locator('.badge').textContent(), /API/);
    assert.match(await reply.locator('.text').textContent(), /family|mother/i);
    assert.equal(await bubbles(page, 'My mother takes care of me.').count(), 1);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.stop();
  }
});

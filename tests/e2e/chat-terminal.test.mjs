// `confab chat --plain` (the line mode) driven through a pseudo-terminal (util-linux `script`)
// against the real server (the full-screen mode is tested in crates/confab/tests/chat_tui.rs):
// the agent list, a DM with ELIZA (thinking indicator, streamed reply), /join, a message from
// someone else, /history, a server restart (status line, rejoin, missed message), /quit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, uuid, emitAck, waitFor, DEFAULT_SERVER } from './harness.mjs';
import { io } from 'socket.io-client';

const T = 20000;
const strip = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startAt(port, dir) {
  const proc = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dir], {
    env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('confab did not start')), T);
    proc.stdout.on('data', (d) => { out += d; if (/listening on/.test(out)) { clearTimeout(timer); resolve(); } });
    proc.on('exit', (c) => { clearTimeout(timer); reject(new Error(`confab exited ${c}`)); });
  });
  proc.removeAllListeners('exit');
  const exited = new Promise((r) => proc.on('exit', r));
  return { kill9: async () => { proc.kill('SIGKILL'); await exited; }, stop: async () => { proc.kill('SIGTERM'); await exited; } };
}

/** `confab chat URL` in a pty; `screen()` is everything it printed, without colours. */
function startChat(url, state) {
  const cmd = `${BIN} chat ${url} --name Pat --plain`;
  const proc = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm', CONFAB_CHAT_STATE: state } });
  let out = '';
  const waiters = [];
  proc.stdout.on('data', (d) => {
    out += d;
    for (const w of [...waiters]) w();
  });
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  return {
    screen: () => strip(out),
    raw: () => out,
    type: (line) => proc.stdin.write(`${line}\n`),
    exited,
    /** Waits until the output (from `from` on) matches `re`. */
    expect(re, from = 0, ms = T) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = strip(out).slice(from).match(re);
          if (m) { clearTimeout(timer); waiters.splice(waiters.indexOf(check), 1); resolve(m); return true; }
          return false;
        };
        const timer = setTimeout(() => { waiters.splice(waiters.indexOf(check), 1); reject(new Error(`no ${re} within ${ms} ms; screen:\n${strip(out).slice(from)}`)); }, ms);
        waiters.push(check);
        check();
      });
    },
    kill: () => proc.kill('SIGKILL'),
  };
}

test('confab chat: DM with Eliza, channels, commands, a server restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-chat-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let srv = await startAt(port, dir);
  const chat = startChat(url, join(dir, 'chat-state.json'));
  let writer;
  try {
    await chat.expect(/agent Eliza \(active\) b850bc30-45f8-0041-a00a-83df46d8555d/);
    await chat.expect(/joined DM with Eliza/);
    assert.match(chat.raw(), /\x1b\[1;35mEliza/, 'agents are coloured');

    let mark = chat.screen().length;
    chat.type('I am unhappy.');
    await chat.expect(/Eliza is thinking…/, mark);
    await chat.expect(/Eliza: .*unhappy.*\n/, mark);

    chat.type('/agents');
    mark = chat.screen().length;
    await chat.expect(/agent Eliza/, mark);

    const room = `tty-${uuid().slice(0, 6)}`;
    mark = chat.screen().length;
    chat.type(`/join ${room}`);
    const [, channelId] = await chat.expect(new RegExp(`joined #${room} \\(([0-9a-f-]{36})\\)`), mark);

    // Someone else in the channel.
    const connectWriter = async () => {
      const s = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { entityId: uuid() } });
      await waitFor(s, 'connect', () => true, T);
      const joined = waitFor(s, 'channel_joined', () => true, T);
      s.emit('message', { type: 1, payload: { channelId, messageServerId: DEFAULT_SERVER } });
      await joined;
      return s;
    };
    writer = await connectWriter();
    const say = (text) => emitAck(writer, 'message', { type: 2, payload: { channelId, messageServerId: DEFAULT_SERVER, senderId: uuid(), senderName: 'Robin', message: text } }, T);
    mark = chat.screen().length;
    await say('hello tty');
    await chat.expect(/Robin: hello tty/, mark);
    const echoed = waitFor(writer, 'messageBroadcast', (m) => m.text === 'hi Robin', T);
    chat.type('hi Robin');
    assert.equal((await echoed).senderName, 'Pat');

    mark = chat.screen().length;
    chat.type('/history 5');
    await chat.expect(/Robin: hello tty\nPat \(you\): hi Robin/, mark);

    // Restart: the status line says so; the missed message shows once.
    mark = chat.screen().length;
    writer.close();
    await srv.kill9();
    await chat.expect(/disconnected/, mark);
    await chat.expect(/reconnecting in [\d.]+s \(attempt 1\)/, mark);
    srv = await startAt(port, dir);
    writer = await connectWriter();
    await say('while you were away');
    await chat.expect(/reconnected/, mark);
    await chat.expect(/rejoined #/, mark);
    await chat.expect(/Robin: while you were away/, mark);
    assert.equal(chat.screen().split('Robin: while you were away').length - 1, 1, 'once');

    chat.type('/leave');
    await chat.expect(/left #/, mark);
    chat.type('/quit');
    assert.equal(await chat.exited, 0);
  } finally {
    writer?.close();
    chat.kill();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Needs the server's media routes (the media branch): `/upload PATH` uploads the file with
// multipart to the channel, sends a message carrying it, and prints the link; the link serves
// the file. `/channels` lists only the channels this user opened.
test('confab chat --plain: /upload sends a file and shows its link; /channels lists mine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-chat-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const srv = await startAt(port, dir);
  const file = join(dir, 'notes.txt');
  writeFileSync(file, 'hello from a file\n');
  const chat = startChat(url, join(dir, 'chat-state.json'));
  try {
    const [, dm] = await chat.expect(/joined DM with Eliza \(([0-9a-f-]{36})\)/);
    // Someone else's channel is not in my list.
    const other = await fetch(`${url}/api/messaging/channels`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `not-mine-${uuid().slice(0, 6)}`, participantCentralUserIds: [uuid()], message_server_id: DEFAULT_SERVER, type: 'GROUP' }),
    });
    assert.equal(other.status, 201);
    let mark = chat.screen().length;
    chat.type('/channels');
    await chat.expect(new RegExp(`\\* DM with Eliza ${dm}`), mark);
    assert.doesNotMatch(chat.screen().slice(mark), /not-mine-/);

    mark = chat.screen().length;
    chat.type(`/upload ${file}`);
    const [, link] = await chat.expect(/uploaded notes\.txt \(18 bytes\): (http:\S+)/, mark);
    assert.ok(link.startsWith(`${url}/media/uploads/channels/${dm}/`), link);
    await chat.expect(/Pat \(you\): notes\.txt\n\s+file: http:\S+\/media\/uploads\/channels\//, mark);
    const served = await fetch(link);
    assert.equal(served.status, 200);
    assert.equal(await served.text(), 'hello from a file\n');
    chat.type('/quit');
    assert.equal(await chat.exited, 0);
  } finally {
    chat.kill();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The README's examples, run as a newcomer would: each JavaScript block is taken from README.md
// as written, pointed at a test server, and run with node. They must print what the README
// says they print, and exit by themselves.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './harness.mjs';
import { UUID_RE, stringToUuid } from './socket-util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(join(here, '..', '..', 'README.md'), 'utf8');

/** The first ```js block after the heading `title`. */
function example(title) {
  const at = readme.indexOf(`## ${title}`);
  assert.ok(at >= 0, `README has a "${title}" section`);
  const m = readme.slice(at).match(/```js\n([\s\S]*?)```/);
  assert.ok(m, `"${title}" has a js example`);
  return m[1];
}

/** Runs a script (saved next to this file, so `socket.io-client` resolves) with a bound. */
function run(name, source, ms = 15000) {
  const file = join(here, `.readme-${name}-${process.pid}.mjs`);
  writeFileSync(file, source);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not exit within ${ms} ms; printed:\n${out}${err}`));
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rmSync(file, { force: true });
      resolve({ code, out, err });
    });
  });
}

const srv = await startServer({ args: ['--eliza-seed', '7'] });
after(() => srv.stop());
const pointed = (src) => src.replaceAll('http://localhost:3000', srv.url);

test('"Try it" prints the sender and the stored id, then exits', async () => {
  const { code, out, err } = await run('try-it', pointed(example('Try it')));
  assert.equal(code, 0, err);
  const lines = out.trim().split('\n');
  assert.match(lines[0], /: Hello, confab!$/, out);
  const stored = lines.find((l) => l.startsWith('stored as '));
  assert.ok(stored, `prints "stored as <id>":\n${out}`);
  const id = stored.slice('stored as '.length);
  assert.match(id, UUID_RE);
  // The id it printed is the stored message.
  const history = await srv.http('GET', `/api/messaging/channels/${stringToUuid('my-first-channel')}/messages`);
  assert.equal(history.status, 200);
  const messages = history.json.data?.messages ?? history.json.messages ?? [];
  assert.ok(messages.some((m) => m.id === id), `history holds ${id}`);
});

test('"Talk to an agent" streams ELIZA\'s answer and exits', async () => {
  const { code, out, err } = await run('agent', pointed(example('Talk to an agent')));
  assert.equal(code, 0, err);
  assert.ok(out.trim().length > 0, 'the reply was streamed to stdout');
});

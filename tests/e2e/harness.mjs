// Test harness: starts the real confab binary on a free port with a fresh data directory, and
// gives tests bounded waits on Socket.IO events (no sleeps).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID, createHash } from 'node:crypto';
import { io } from 'socket.io-client';
import * as contract from './contract.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.CONFAB_BIN || join(here, '..', '..', 'target', 'debug', 'confab');
export const DEFAULT_SERVER = '00000000-0000-0000-0000-000000000000';
export const uuid = () => randomUUID();

let checkingContract = false;

/**
 * From now on, every response from a server this file starts is validated against the OpenAPI
 * document the server publishes (status documented, JSON body matching its schema): a
 * mismatch fails the request. The REST suites call it at the top.
 */
export function checkContract() {
  checkingContract = true;
  contract.install();
}

/** Starts confab; resolves once it prints its address. */
export async function startServer({ env = {}, args = [], dataDir } = {}) {
  const dir = dataDir || mkdtempSync(join(tmpdir(), 'confab-test-'));
  // With CONFAB_TEST_DATABASE_URL the suite runs on PostgreSQL: a fresh schema per data
  // directory (so a restart with the same dataDir finds its data again).
  const pg = process.env.CONFAB_TEST_DATABASE_URL
    ? { DATABASE_URL: process.env.CONFAB_TEST_DATABASE_URL, CONFAB_PG_SCHEMA: `e2e_${createHash('sha1').update(dir).digest('hex').slice(0, 16)}` }
    : {};
  const proc = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dir, ...args], {
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL || 'warn', ...pg, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`confab did not start in 20s\n${stderr}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`confab exited with ${code}\n${stderr}`)); });
  });
  proc.removeAllListeners('exit');
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  if (checkingContract) contract.watch(url);
  const sockets = [];
  const server = {
    url, dir, proc, exited,
    stderr: () => stderr,
    /** A connected socket.io-client v4 socket (auth optional, as in every seed). */
    connect(opts = {}) {
      const s = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], ...opts });
      sockets.push(s);
      return s;
    },
    async connected(opts = {}) {
      const s = server.connect(opts);
      await waitFor(s, 'connect');
      return s;
    },
    http: (method, path, body, headers = {}) => request(url, method, path, body, headers),
    async stop({ keepData = false } = {}) {
      contract.unwatch(url);
      for (const s of sockets) s.disconnect();
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        let timer;
        await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 15000); })]);
        clearTimeout(timer);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      if (!keepData && !dataDir) rmSync(dir, { recursive: true, force: true });
    },
    async kill9() {
      for (const s of sockets) s.disconnect();
      proc.kill('SIGKILL');
      await exited;
    },
  };
  return server;
}

/** Resolves with the first `event` payload matching `pred`, or rejects after `ms`. */
export function waitFor(socket, event, pred = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    function handler(...args) {
      const data = event === 'connect' ? undefined : args[0];
      if (event === 'connect' || pred(data)) {
        clearTimeout(timer);
        socket.off(event, handler);
        resolve(data);
      }
    }
    socket.on(event, handler);
  });
}

/** Records every payload of `event` from now on. */
export function record(socket, event) {
  const seen = [];
  socket.on(event, (d) => seen.push(d));
  return seen;
}

/** Waits until `cond()` holds, checking on every event of the socket(s), bounded. */
export function until(sockets, cond, ms = 5000) {
  const list = Array.isArray(sockets) ? sockets : [sockets];
  return new Promise((resolve, reject) => {
    if (cond()) return resolve();
    // onAny listeners run before the regular ones (such as `record`'s): check afterwards.
    const check = () => queueMicrotask(() => { if (cond()) { done(); resolve(); } });
    const timer = setTimeout(() => { done(); reject(new Error(`condition not met within ${ms} ms`)); }, ms);
    const done = () => { clearTimeout(timer); for (const s of list) s.offAny(check); };
    for (const s of list) s.onAny(check);
  });
}

/** Emits with an acknowledgement callback; rejects if none arrives within `ms`. */
export function emitAck(socket, event, payload, ms = 5000) {
  return socket.timeout(ms).emitWithAck(event, payload);
}

export async function request(base, method, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

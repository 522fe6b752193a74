// Real models: an OpenAI-compatible endpoint started by the test (real HTTP, real SSE
// streaming) replaces ELIZA. Streams become messageStreamChunk events then the final broadcast;
// a hanging endpoint times out with an error event and messageComplete; an endpoint that keeps
// failing opens the circuit breaker, which later lets a trial call through and closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, until, uuid, DEFAULT_SERVER } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';
import { ELIZA } from './agent-util.mjs';

/** A tiny chat-completions server whose behaviour the tests switch. */
function mockModel() {
  const state = { mode: 'ok', requests: [], tokens: ['Hello', ', ', 'Pat', '!'] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url !== '/v1/chat/completions') { res.writeHead(404).end(); return; }
      state.requests.push({ headers: req.headers, body: JSON.parse(body) });
      if (state.mode === 'hang') return; // never answers
      if (state.mode === 'fail') { res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}'); return; }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const t of state.tokens) {
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: t } }] })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    state.url = `http://127.0.0.1:${server.address().port}/v1`;
    state.close = () => { server.closeAllConnections(); server.close(); };
    resolve(state);
  }));
}

let model;
let srv;
before(async () => {
  model = await mockModel();
  srv = await startServer({
    env: {
      OPENAI_BASE_URL: model.url,
      OPENAI_API_KEY: 'sk-test',
      OPENAI_MODEL: 'test-model',
      CONFAB_MODEL_TIMEOUT_MS: '700',
      CONFAB_MODEL_RETRIES: '0',
      CONFAB_BREAKER_FAILURES: '2',
      CONFAB_BREAKER_RESET_MS: '1500',
    },
  });
});
after(async () => { await srv.stop(); model.close(); });

/** A user in a fresh DM with the default agent, recording everything. */
async function dm() {
  const user = uuid();
  const channelId = uuid();
  const s = await srv.connected({ auth: { entityId: user } });
  await joinChannel(s, { channelId, entityId: user, messageServerId: DEFAULT_SERVER });
  const events = [];
  s.onAny((name, data) => events.push([name, data]));
  const say = async (text) => {
    const mark = events.length;
    await send(s, { channelId, senderId: user, senderName: 'Pat', message: text, messageServerId: DEFAULT_SERVER, metadata: { channelType: 'DM', targetUserId: ELIZA } });
    await until(s, () => events.slice(mark).some(([n, d]) => n === 'controlMessage' && d.action === 'enable_input'), 8000);
    return events.slice(mark);
  };
  return { say, channelId };
}

const named = (events, name) => events.filter(([n]) => n === name).map(([, d]) => d);

test('a streamed model reply: chunks as they come, then the stored broadcast', async () => {
  model.mode = 'ok';
  const { say } = await dm();
  const first = await say('Hi there');
  const second = await say('How are you?');
  const chunks = named(second, 'messageStreamChunk');
  assert.deepEqual(chunks.map((c) => c.chunk), model.tokens);
  const reply = named(second, 'messageBroadcast').find((m) => m.senderId === ELIZA);
  assert.equal(reply.text, 'Hello, Pat!');
  assert.equal(reply.id, chunks[0].messageId);
  assert.ok(named(second, 'messageComplete').length === 1);

  // The prompt carried the character and the channel's history, with the configured model.
  const req = model.requests.at(-1);
  assert.equal(req.headers.authorization, 'Bearer sk-test');
  assert.equal(req.body.model, 'test-model');
  assert.equal(req.body.stream, true);
  assert.equal(req.body.messages[0].role, 'system');
  assert.match(req.body.messages[0].content, /ELIZA|Eliza/);
  const contents = req.body.messages.map((m) => m.content);
  assert.ok(contents.includes('Pat: Hi there'), JSON.stringify(contents));
  assert.ok(req.body.messages.some((m) => m.role === 'assistant' && m.content === 'Hello, Pat!'));
  assert.equal(contents.at(-1), 'Pat: How are you?');
  assert.ok(first.length > 0);
});

test('a hanging endpoint: timeout, an error event, then messageComplete and enable_input', async () => {
  model.mode = 'hang';
  const { say } = await dm();
  const events = await say('Are you there?');
  const names = events.map(([n]) => n);
  const err = named(events, 'messageStreamError')[0];
  assert.ok(err, names.join(' '));
  assert.match(err.error, /within 700 ms/);
  assert.equal(err.agentId, ELIZA);
  assert.ok(names.indexOf('messageStreamError') < names.indexOf('messageComplete'));
  assert.ok(!named(events, 'messageBroadcast').some((m) => m.senderId === ELIZA), 'no reply is broadcast');
  model.mode = 'ok';
});

test('a failing endpoint opens the breaker, which recovers after its reset time', async () => {
  // The hanging call above counted as one failure; a success resets the count.
  model.mode = 'ok';
  const { say } = await dm();
  await say('reset the count');
  model.mode = 'fail';
  const before = model.requests.length;
  const e1 = await say('one');
  const e2 = await say('two');
  assert.match(named(e1, 'messageStreamError')[0].error, /HTTP 500/);
  assert.match(named(e2, 'messageStreamError')[0].error, /HTTP 500/);
  assert.equal(model.requests.length, before + 2);
  // Open: the endpoint is not called, and the channel is told why.
  const opened = Date.now();
  const e3 = await say('three');
  assert.match(named(e3, 'messageStreamError')[0].error, /failed 2 times in a row; not calling it/);
  assert.equal(model.requests.length, before + 2, 'no request while the breaker is open');
  assert.equal(named(e3, 'messageComplete').length, 1);
  // After the reset time (a deadline, not an event) a trial call goes through and succeeds.
  model.mode = 'ok';
  await new Promise((r) => setTimeout(r, Math.max(0, 1500 - (Date.now() - opened) + 100)));
  const e4 = await say('four');
  assert.equal(named(e4, 'messageBroadcast').find((m) => m.senderId === ELIZA)?.text, 'Hello, Pat!');
  assert.equal(model.requests.length, before + 3);
  const e5 = await say('five');
  assert.ok(named(e5, 'messageBroadcast').some((m) => m.senderId === ELIZA), 'closed again');
});

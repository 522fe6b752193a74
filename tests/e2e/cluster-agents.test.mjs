// Agents in a cluster: an agent run whose node is killed with -9 mid-run is taken over by
// another node through its lease, so the user still gets one answer and `enable_input`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { until, uuid, DEFAULT_SERVER } from './harness.mjs';
import { send } from './socket-util.mjs';
import { ELIZA } from './agent-util.mjs';
import { cluster, member } from './cluster-util.mjs';

/** A chat-completions endpoint whose first request never finishes (it streams one token,
 * then hangs); later requests stream a whole reply. */
function slowThenFastModel() {
  const state = { requests: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url !== '/v1/chat/completions') { res.writeHead(404).end(); return; }
      state.requests += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (t) => res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: t } }] })}\n\n`);
      if (state.requests === 1) { chunk('Thinking'); return; } // mid-run for ever
      for (const t of ['Here ', 'I ', 'am.']) chunk(t);
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    state.url = `http://127.0.0.1:${server.address().port}/v1`;
    state.close = () => { server.closeAllConnections(); server.close(); };
    resolve(state);
  }));
}

test('an agent run whose node is killed mid-run is taken over by another node', async () => {
  const model = await slowThenFastModel();
  const c = await cluster(2, {
    env: {
      OPENAI_BASE_URL: model.url, OPENAI_API_KEY: 'sk-test', OPENAI_MODEL: 'test-model',
      CONFAB_MODEL_TIMEOUT_MS: '60000', CONFAB_MODEL_RETRIES: '0', CONFAB_RUN_LEASE_MS: '1500',
    },
  });
  const [doomed, survivor] = c.nodes;
  try {
    const user = uuid();
    const dm = await survivor.http('GET', `/api/messaging/dm-channel?currentUserId=${user}&targetUserId=${ELIZA}`);
    const ch = dm.json.data.id;
    // The user watches from the surviving node; the message arrives on the doomed one, whose
    // agent starts the run.
    const watcher = await member(survivor, ch, user);
    const events = [];
    watcher.s.onAny((name, data) => events.push([name, data]));
    const sender = await member(doomed, ch, user);
    const ack = await send(sender.s, { channelId: ch, senderId: user, message: 'Are you there?', messageServerId: DEFAULT_SERVER, metadata: { channelType: 'DM', targetUserId: ELIZA } });
    assert.equal(ack.success, true);
    await until(watcher.s, () => events.some(([n, d]) => n === 'controlMessage' && d.action === 'disable_input'), 10000);
    await until(watcher.s, () => events.some(([n]) => n === 'messageStreamChunk'), 10000);
    assert.equal(model.requests, 1, 'the doomed node is mid-run');

    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    const reply = () => events.find(([n, d]) => n === 'messageBroadcast' && d.senderId === ELIZA)?.[1];
    await until(watcher.s, () => reply() && events.some(([n, d]) => n === 'controlMessage' && d.action === 'enable_input'), 15000);
    assert.equal(reply().text, 'Here I am.');
    assert.equal(model.requests, 2, 'run once more, by the survivor');

    const history = await survivor.http('GET', `/api/messaging/channels/${ch}/messages?limit=50`);
    const answers = history.json.data.messages.filter((m) => m.authorId === ELIZA);
    assert.equal(answers.length, 1, 'answered once');
  } finally {
    await c.stop();
    model.close();
  }
});

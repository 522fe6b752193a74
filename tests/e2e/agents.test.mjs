// Agents: the default ELIZA answers in DMs with the full event sequence; group channels answer
// only when addressed; the loop guard stops agents talking forever; /api/agents.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, until, uuid, DEFAULT_SERVER, checkContract } from './harness.mjs';

// Every response below is checked against the published OpenAPI document (issue 16).
checkContract();
import { joinChannel, send } from './socket-util.mjs';
import { ELIZA, SAD_REPLIES, parseSse } from './agent-util.mjs';


let srv;
before(async () => { srv = await startServer({ args: ['--eliza-seed', '7'], env: { LOG_LEVEL: 'info' } }); });
after(async () => { await srv.stop(); });

/** Every event a socket receives, in order, as [name, payload]. */
function everything(socket) {
  const events = [];
  socket.onAny((name, data) => events.push([name, data]));
  return events;
}

const isEnable = ([n, d]) => n === 'controlMessage' && d.action === 'enable_input';

async function createAgent(character) {
  const r = await srv.http('POST', '/api/agents', { characterJson: character });
  assert.equal(r.status, 201, r.text);
  return r.json.data.id;
}

test('the default agent is ELIZA, with the id seed 001 hard-codes', async () => {
  const list = await srv.http('GET', '/api/agents');
  assert.equal(list.status, 200);
  const eliza = list.json.data.agents.find((a) => a.id === ELIZA);
  assert.ok(eliza, JSON.stringify(list.json));
  assert.equal(eliza.name, 'Eliza');
  assert.equal(eliza.characterName, 'Eliza');
  assert.equal(eliza.status, 'active');
  const one = await srv.http('GET', `/api/agents/${ELIZA}`);
  assert.equal(one.status, 200);
  assert.equal(one.json.data.id, ELIZA);
  assert.equal(one.json.data.brain, 'eliza');
  assert.equal((await srv.http('GET', '/api/agents/not-a-uuid')).json.error.code, 'INVALID_ID');
  assert.equal((await srv.http('GET', `/api/agents/${uuid()}`)).status, 404);
});

test('a DM with ELIZA over the socket: disable_input, chunks, reply, messageComplete, enable_input', async () => {
  const user = uuid();
  const channelId = uuid();
  const s = await srv.connected({ auth: { entityId: user } });
  await joinChannel(s, { channelId, entityId: user, messageServerId: DEFAULT_SERVER });
  const events = everything(s);
  const ack = await send(s, {
    channelId, senderId: user, senderName: 'Pat', message: 'I am unhappy.', messageServerId: DEFAULT_SERVER,
    metadata: { channelType: 'DM', targetUserId: ELIZA },
  });
  assert.equal(ack.success, true);
  await until(s, () => events.some(isEnable));

  const names = events.map(([n]) => n);
  const disable = names.findIndex((n, i) => n === 'controlMessage' && events[i][1].action === 'disable_input');
  const reply = events.findIndex(([n, d]) => n === 'messageBroadcast' && d.senderId === ELIZA);
  const complete = names.indexOf('messageComplete');
  const enable = events.findIndex(isEnable);
  const chunks = events.filter(([n]) => n === 'messageStreamChunk').map(([, d]) => d);
  const firstChunk = names.indexOf('messageStreamChunk');
  assert.ok(disable >= 0 && firstChunk > disable && reply > firstChunk && complete > reply && enable > complete, names.join(' '));
  assert.ok(names.slice(0, disable).includes('messageAck'), 'the user message is acknowledged before the run starts');

  const r = events[reply][1];
  assert.equal(r.source, 'agent_response');
  assert.equal(r.senderName, 'Eliza');
  assert.equal(r.channelId, channelId);
  assert.ok(SAD_REPLIES.includes(r.text), `an ELIZA answer, not an echo: ${r.text}`);
  assert.deepEqual(chunks.map((c) => c.index), chunks.map((_, i) => i));
  assert.ok(chunks.every((c) => c.messageId === r.id && c.agentId === ELIZA && c.channelId === channelId));
  assert.equal(chunks.map((c) => c.chunk).join(''), r.text);
  const done = events[complete][1];
  assert.equal(done.channelId, channelId);
  assert.equal(done.messageServerId, DEFAULT_SERVER);
  assert.equal(done.serverId, DEFAULT_SERVER);

  const history = await srv.http('GET', `/api/messaging/channels/${channelId}/messages`);
  const stored = history.json.data.messages.find((m) => m.id === r.id);
  assert.equal(stored.sourceType, 'agent_response');
  assert.equal(stored.authorId, ELIZA);
  assert.equal(stored.inReplyToRootMessageId, ack.messageId);
});

test('ELIZA keeps a conversation: the memory queue brings back an earlier remark', async () => {
  // Same script, same seed, fresh conversation: exactly the 1966 mechanics.
  const user = uuid();
  const channelId = uuid();
  const s = await srv.connected({ auth: { entityId: user } });
  await joinChannel(s, { channelId, entityId: user, messageServerId: DEFAULT_SERVER });
  const replies = [];
  s.on('messageBroadcast', (d) => { if (d.senderId === ELIZA) replies.push(d.text); });
  const lines = ['Well, my boyfriend made me come here.', 'Hello.', 'Hmm.', 'Hmm.', 'Hmm.', 'Hmm.'];
  for (const line of lines) {
    const n = replies.length;
    await send(s, { channelId, senderId: user, message: line, messageServerId: DEFAULT_SERVER, metadata: { channelType: 'DM', targetUserId: ELIZA } });
    await until(s, () => replies.length > n);
  }
  assert.equal(replies[0], 'Your boyfriend made you come here?');
  assert.ok(replies.some((t) => /boyfriend made you come here/i.test(t) && t !== replies[0]),
    `a later answer recalls the boyfriend: ${JSON.stringify(replies)}`);
});

test('a group channel: only the addressed agent answers, once', async () => {
  const ada = await createAgent({ name: 'Ada', username: 'ada', bio: ['Counts things.'] });
  const bob = await createAgent({ name: 'Bob', bio: 'Builds things.' });
  const user = uuid();
  const created = await srv.http('POST', '/api/messaging/channels', {
    name: 'workshop', message_server_id: DEFAULT_SERVER, participantCentralUserIds: [user, ada, bob],
  });
  assert.equal(created.status, 201, created.text);
  const channelId = created.json.data.id;
  const s = await srv.connected({ auth: { entityId: user } });
  await joinChannel(s, { channelId, entityId: user, messageServerId: DEFAULT_SERVER });
  const agentMessages = [];
  s.on('messageBroadcast', (d) => { if (d.source === 'agent_response') agentMessages.push(d); });

  // Not addressed: nobody answers. The http transport returns once every agent has decided.
  const quiet = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: user, content: 'I wonder about the weather.', message_server_id: DEFAULT_SERVER, transport: 'http',
  });
  assert.equal(quiet.status, 201, quiet.text);
  assert.equal(quiet.json.agentResponse, null);

  // Addressed to Ada by name.
  const asked = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: user, content: 'Ada, I remember my old house.', message_server_id: DEFAULT_SERVER, transport: 'http',
  });
  assert.equal(asked.status, 201, asked.text);
  assert.equal(asked.json.agentResponse.agentId, ada);
  assert.ok(asked.json.agentResponse.text.length > 0);
  await until(s, () => agentMessages.length >= 1);

  // @username works too.
  const at = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: user, content: '@ada can you help?', message_server_id: DEFAULT_SERVER, transport: 'http',
  });
  assert.equal(at.json.agentResponse.agentId, ada);

  const history = await srv.http('GET', `/api/messaging/channels/${channelId}/messages?limit=50`);
  const replies = history.json.data.messages.filter((m) => m.sourceType === 'agent_response');
  assert.equal(replies.length, 2, JSON.stringify(replies.map((m) => m.authorId)));
  assert.ok(replies.every((m) => m.authorId === ada), 'Bob was not addressed and never answered');
});

test('two agents in one DM: the loop guard ends their conversation', async () => {
  const a = await createAgent({ name: 'Castor' });
  const b = await createAgent({ name: 'Pollux' });
  const user = uuid();
  const created = await srv.http('POST', '/api/messaging/channels', {
    name: 'twins', type: 'DM', message_server_id: DEFAULT_SERVER, participantCentralUserIds: [user, a, b],
  });
  const channelId = created.json.data.id;
  const watcher = await srv.connected({ auth: { entityId: uuid() } });
  const guards = [];
  watcher.on('log_stream', (e) => {
    if (String(e.payload?.msg).includes('loop guard') && e.payload.channel === channelId) guards.push(e.payload);
  });
  await new Promise((resolve) => { watcher.once('log_subscription_confirmed', resolve); watcher.emit('subscribe_logs'); });

  const posted = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: user, content: 'I feel tired.', message_server_id: DEFAULT_SERVER,
  });
  assert.equal(posted.status, 201);
  // Each twin answers the user, then each answers the other until chains are 3 turns deep.
  await until(watcher, () => guards.length >= 2, 10000);
  const history = await srv.http('GET', `/api/messaging/channels/${channelId}/messages?limit=100`);
  const agentTurns = history.json.data.messages.filter((m) => m.sourceType === 'agent_response');
  assert.equal(agentTurns.length, 6, 'two chains of three agent turns');
  assert.ok(agentTurns.every((m) => m.metadata.agentTurn >= 1 && m.metadata.agentTurn <= 3));
  assert.equal(agentTurns.filter((m) => m.authorId === a).length, 3);
});

test('agents over REST: create, patch, stop (no answer), start, delete', async () => {
  const id = await createAgent({ name: 'Dora', system: 'You explore.', someUnknownField: { kept: true } });
  const got = await srv.http('GET', `/api/agents/${id}`);
  assert.equal(got.json.data.someUnknownField.kept, true);
  const patched = await srv.http('PATCH', `/api/agents/${id}`, { bio: ['Maps.'], settings: { x: 1 } });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.json.data.bio, ['Maps.']);
  assert.equal(patched.json.data.id, id);
  const dup = await srv.http('POST', '/api/agents', { characterJson: { name: 'Dora' } });
  assert.equal(dup.status, 400);
  assert.equal(dup.json.error.code, 'CREATE_ERROR');

  const stopped = await srv.http('POST', `/api/agents/${id}/stop`);
  assert.deepEqual(stopped.json.data, { message: 'Agent stopped' });
  const user = uuid();
  const dm = await srv.http('GET', `/api/messaging/dm-channel?currentUserId=${user}&targetUserId=${id}`);
  const channelId = dm.json.data.id;
  const silent = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: user, content: 'Hello?', message_server_id: DEFAULT_SERVER, transport: 'http',
  });
  assert.equal(silent.json.agentResponse, null, 'a stopped agent does not answer');
  const started = await srv.http('POST', `/api/agents/${id}/start`);
  assert.equal(started.json.data.status, 'active');
  const answered = await srv.http('POST', `/api/messaging/channels/${channelId}/messages`, {
    author_id: user, content: 'Hello?', message_server_id: DEFAULT_SERVER, transport: 'http',
  });
  assert.equal(answered.json.agentResponse.agentId, id);
  assert.equal((await srv.http('DELETE', `/api/agents/${id}`)).status, 204);
  assert.equal((await srv.http('GET', `/api/agents/${id}`)).status, 404);
  assert.equal((await srv.http('DELETE', `/api/agents/${id}`)).status, 404);
});

test('sse transport streams chunks then done', async () => {
  const user = uuid();
  const dm = await srv.http('GET', `/api/messaging/dm-channel?currentUserId=${user}&targetUserId=${ELIZA}`);
  const res = await fetch(`${srv.url}/api/messaging/channels/${dm.json.data.id}/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author_id: user, content: 'I am unhappy.', message_server_id: DEFAULT_SERVER, transport: 'sse' }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const events = parseSse(await res.text());
  assert.equal(events[0].event, 'user_message');
  const chunks = events.filter((e) => e.event === 'chunk').map((e) => e.data);
  const done = events.at(-1);
  assert.equal(done.event, 'done');
  assert.ok(chunks.length > 0);
  assert.equal(chunks.map((c) => c.chunk).join(''), done.data.text);
  assert.ok(SAD_REPLIES.includes(done.data.text), done.data.text);
});

test('--character and a characters directory replace the default agent', async () => {
  const { mkdtempSync, writeFileSync, mkdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { stringToUuid } = await import('./socket-util.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'confab-chars-'));
  writeFileSync(join(dir, 'hal.json'), JSON.stringify({ name: 'HAL', bio: ['I am putting myself to the fullest possible use.'] }));
  mkdirSync(join(dir, 'characters'));
  const fixedId = uuid();
  writeFileSync(join(dir, 'characters', 'marvin.json'), JSON.stringify({ id: fixedId, name: 'Marvin', plugins: ['x'] }));
  const own = await startServer({ args: ['--character', join(dir, 'hal.json'), '--characters-dir', join(dir, 'characters')] });
  try {
    const agents = (await own.http('GET', '/api/agents')).json.data.agents;
    assert.deepEqual(agents.map((a) => a.name).sort(), ['HAL', 'Marvin']);
    assert.equal(agents.find((a) => a.name === 'HAL').id, stringToUuid('HAL'));
    assert.equal(agents.find((a) => a.name === 'Marvin').id, fixedId);
    assert.equal(agents.find((a) => a.name === 'HAL').bio, 'I am putting myself to the fullest possible use.');
    assert.deepEqual((await own.http('GET', `/api/agents/${fixedId}`)).json.data.plugins, ['x']);
  } finally {
    await own.stop();
  }
});

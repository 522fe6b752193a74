// The sessions API (stored, so sessions survive a restart) and the jobs API (which completes
// with the agent's reply), both with the default ELIZA agent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, waitFor, uuid, DEFAULT_SERVER, checkContract } from './harness.mjs';

// Every response below is checked against the published OpenAPI document (issue 16).
checkContract();
import { joinChannel } from './socket-util.mjs';
import { ELIZA } from './agent-util.mjs';

const MINUTE_MS = 400; // one session "minute", shortened for the tests
let srv;
const dataDir = mkdtempSync(join(tmpdir(), 'confab-sessions-'));
const env = { CONFAB_SESSION_MINUTE_MS: String(MINUTE_MS) };
before(async () => { srv = await startServer({ dataDir, env }); });
after(async () => { await srv.stop(); });

const S = '/api/messaging/sessions';

test('create, send over the socket path, read messages, renew, heartbeat, delete', async () => {
  const userId = uuid();
  const created = await srv.http('POST', S, { agentId: ELIZA, userId, metadata: { plan: 'pro' }, timeoutConfig: { timeoutMinutes: 60 } });
  assert.equal(created.status, 201, created.text);
  const s = created.json;
  assert.ok(s.sessionId && s.channelId);
  assert.equal(s.agentId, ELIZA);
  assert.equal(s.timeoutConfig.timeoutMinutes, 60);
  assert.ok(Date.parse(s.expiresAt) > Date.now());

  // The reply goes to the session's channel room.
  const sock = await srv.connected({ auth: { entityId: userId } });
  await joinChannel(sock, { channelId: s.channelId, entityId: userId, messageServerId: DEFAULT_SERVER });
  const reply = waitFor(sock, 'messageBroadcast', (d) => d.senderId === ELIZA);
  const sent = await srv.http('POST', `${S}/${s.sessionId}/messages`, { content: 'My mother takes care of me.' });
  assert.equal(sent.status, 201, sent.text);
  assert.equal(sent.json.success, true);
  assert.equal(sent.json.userMessage.content, 'My mother takes care of me.');
  assert.equal(sent.json.sessionStatus.wasRenewed, true);
  const r = await reply;
  assert.match(r.text, /family|mother/i, r.text);

  const page = await srv.http('GET', `${S}/${s.sessionId}/messages?limit=10`);
  assert.equal(page.status, 200);
  assert.equal(page.json.messages.length, 2);
  const [newest, oldest] = page.json.messages;
  assert.equal(newest.isAgent, true);
  assert.equal(newest.authorId, ELIZA);
  assert.equal(oldest.isAgent, false);
  assert.equal(oldest.authorId, userId);
  assert.equal(page.json.hasMore, false);
  assert.ok(page.json.cursors.before <= page.json.cursors.after);
  const bad = await srv.http('GET', `${S}/${s.sessionId}/messages?before=yesterday`);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'VALIDATION_ERROR');

  const renewed = await srv.http('POST', `${S}/${s.sessionId}/renew`);
  assert.equal(renewed.status, 200);
  assert.equal(renewed.json.renewalCount, 2);
  const beat = await srv.http('POST', `${S}/${s.sessionId}/heartbeat`);
  assert.equal(beat.json.renewalCount, 3);
  const badTimeout = await srv.http('PATCH', `${S}/${s.sessionId}/timeout`, { timeoutMinutes: 2 });
  assert.equal(badTimeout.status, 400);
  assert.match(badTimeout.json.error.message, /Timeout must be between 5 and 1440 minutes/);
  const okTimeout = await srv.http('PATCH', `${S}/${s.sessionId}/timeout`, { timeoutMinutes: '90' });
  assert.equal(okTimeout.json.timeoutConfig.timeoutMinutes, 90);

  const list = await srv.http('GET', S);
  assert.ok(list.json.sessions.some((x) => x.sessionId === s.sessionId));
  const health = await srv.http('GET', `${S}/health`);
  assert.equal(health.json.status, 'healthy');
  assert.ok(health.json.activeSessions >= 1);

  const del = await srv.http('DELETE', `${S}/${s.sessionId}`);
  assert.equal(del.json.message, `Session ${s.sessionId} deleted successfully`);
  const gone = await srv.http('GET', `${S}/${s.sessionId}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error.code, 'SESSION_NOT_FOUND');
});

test('validation: missing fields, bad UUID, unknown agent, bad content', async () => {
  const missing = await srv.http('POST', S, { agentId: ELIZA });
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error.message, 'Missing required fields: agentId, userId');
  const badUuid = await srv.http('POST', S, { agentId: 'nope', userId: uuid() });
  assert.equal(badUuid.json.error.message, "Invalid UUID format for field 'agentId'");
  const noAgent = await srv.http('POST', S, { agentId: uuid(), userId: uuid() });
  assert.equal(noAgent.status, 404);
  assert.equal(noAgent.json.error.code, 'AGENT_NOT_FOUND');
  const s = (await srv.http('POST', S, { agentId: ELIZA, userId: uuid() })).json;
  for (const content of ['', '   ', 5, 'x'.repeat(4001)]) {
    const r = await srv.http('POST', `${S}/${s.sessionId}/messages`, { content });
    assert.equal(r.status, 400, JSON.stringify(content).slice(0, 20));
    assert.equal(r.json.error.code, 'VALIDATION_ERROR');
  }
});

test('http transport answers with the agent reply; a session expires with 410', async () => {
  const userId = uuid();
  const s = (await srv.http('POST', S, { agentId: ELIZA, userId, timeoutConfig: { timeoutMinutes: 1, autoRenew: false } })).json;
  // Minimum timeout is 5 "minutes"; with autoRenew off it runs from creation.
  assert.equal(s.timeoutConfig.timeoutMinutes, 5);
  const sent = await srv.http('POST', `${S}/${s.sessionId}/messages`, { content: 'I am unhappy.', transport: 'http' });
  assert.equal(sent.status, 201, sent.text);
  assert.equal(sent.json.agentResponse.agentId, ELIZA);
  assert.match(sent.json.agentResponse.text, /unhappy/);
  assert.equal(sent.json.sessionStatus.wasRenewed, false);
  // Wait out the session's lifetime (a deadline, not an event).
  const wait = Date.parse(s.expiresAt) - Date.now() + 50;
  await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  const expired = await srv.http('GET', `${S}/${s.sessionId}`);
  assert.equal(expired.status, 410);
  assert.equal(expired.json.error.code, 'SESSION_EXPIRED');
  const after = await srv.http('GET', `${S}/${s.sessionId}`);
  assert.equal(after.status, 404, 'an expired session is removed');
});

test('sessions survive a restart', async () => {
  const userId = uuid();
  const s = (await srv.http('POST', S, { agentId: ELIZA, userId, timeoutConfig: { timeoutMinutes: 600 } })).json;
  await srv.http('POST', `${S}/${s.sessionId}/messages`, { content: 'Hello there.', transport: 'http' });
  await srv.stop({ keepData: true });
  srv = await startServer({ dataDir, env });
  const again = await srv.http('GET', `${S}/${s.sessionId}`);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.channelId, s.channelId);
  assert.equal(again.json.renewalCount, 1);
  const msgs = await srv.http('GET', `${S}/${s.sessionId}/messages`);
  assert.equal(msgs.json.messages.length, 2);
  const more = await srv.http('POST', `${S}/${s.sessionId}/messages`, { content: 'I am sad.', transport: 'http' });
  assert.equal(more.status, 201);
  assert.ok(more.json.agentResponse.text.length > 0);
});

test('jobs complete with the agent reply', async () => {
  const userId = uuid();
  const created = await srv.http('POST', '/api/messaging/jobs', { userId, content: 'I need some help, that much seems certain.' });
  assert.equal(created.status, 201, created.text);
  const { jobId } = created.json;
  assert.ok(['pending', 'processing', 'completed'].includes(created.json.status));
  assert.ok(created.json.expiresAt > created.json.createdAt);
  // The jobs API is polled by design; poll with a bound.
  let job;
  for (let i = 0; i < 100; i++) {
    job = (await srv.http('GET', `/api/messaging/jobs/${jobId}`)).json;
    if (job.status !== 'pending' && job.status !== 'processing') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(job.status, 'completed', JSON.stringify(job));
  assert.equal(job.agentId, ELIZA);
  assert.equal(job.result.message.authorId, ELIZA);
  assert.match(job.result.message.content, /help/i);
  assert.ok(job.result.processingTimeMs >= 0);
  const list = await srv.http('GET', '/api/messaging/jobs?status=completed');
  assert.ok(list.json.jobs.some((j) => j.jobId === jobId));
  const health = await srv.http('GET', '/api/messaging/jobs/health');
  assert.equal(health.json.healthy, true);
  assert.ok(health.json.statusCounts.completed >= 1);
  const bad = await srv.http('POST', '/api/messaging/jobs', { userId: 'x', content: 'hi' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.success, false);
  const unknown = await srv.http('POST', '/api/messaging/jobs', { userId, content: 'hi', agentId: uuid() });
  assert.equal(unknown.status, 404);
  assert.equal((await srv.http('GET', `/api/messaging/jobs/${uuid()}`)).status, 404);
});

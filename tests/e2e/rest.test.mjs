// The REST API (compat spec §2.1–§2.7, §2.10) against the real binary: success shapes, status
// codes, ElizaOS's error texts, and the socket event each mutating route sends to the room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, record, uuid, DEFAULT_SERVER, checkContract } from './harness.mjs';

// Every response below is checked against the published OpenAPI document (issue 16).
checkContract();
import { ELIZA } from './agent-util.mjs';

const M = '/api/messaging';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function withServer(fn, options) {
  const srv = await startServer(options);
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

/** A socket that has joined `channelId` (ElizaOS's type-1 join). */
async function joined(srv, channelId, entityId = uuid()) {
  const socket = await srv.connected({ auth: { entityId } });
  const ack = waitFor(socket, 'channel_joined', (d) => d.channelId === channelId);
  socket.emit('message', { type: 1, payload: { channelId } });
  await ack;
  return socket;
}

/** A style-B failure with exactly this text. */
function fails(res, status, error) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.success, false, res.text);
  assert.equal(res.json.error, error);
}

/** A group channel with a user and an "agent" participant, so REST posts find a target. */
async function groupChannel(srv, user = uuid(), agent = uuid(), extra = {}) {
  const res = await srv.http('POST', `${M}/channels`, {
    name: 'general',
    message_server_id: DEFAULT_SERVER,
    participantCentralUserIds: [user, agent],
    ...extra,
  });
  assert.equal(res.status, 201, res.text);
  return { channel: res.json.data, user, agent };
}

const postMessage = (srv, channelId, body, prefix = 'channels') =>
  srv.http('POST', `${M}/${prefix}/${channelId}/messages`, body);

const agentReply = (channelId, fields = {}) => ({
  channel_id: channelId,
  message_server_id: DEFAULT_SERVER,
  author_id: uuid(),
  content: 'agent says hi',
  source_type: 'agent_response',
  raw_message: { text: 'agent says hi', thought: 'be nice', actions: ['REPLY'] },
  metadata: { agentName: 'Eliza', agent_id: uuid() },
  ...fields,
});

// ---- §2.3 health ------------------------------------------------------------------------

test('health, ping, status and version routes', async () => {
  await withServer(async (srv) => {
    const healthz = await srv.http('GET', '/healthz');
    assert.equal(healthz.status, 200);
    assert.equal(healthz.json.status, 'ok');
    assert.match(healthz.json.timestamp, ISO);

    // The default ELIZA agent runs.
    const health = await srv.http('GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.json.status, 'OK');
    assert.equal(health.json.agentCount, 1);
    assert.deepEqual(health.json.dependencies, { agents: 'healthy', storage: 'healthy' });
    assert.equal(typeof health.json.version, 'string');
    assert.match(health.json.timestamp, ISO);

    const serverHealth = await srv.http('GET', '/api/server/health');
    assert.equal(serverHealth.status, 200);
    assert.equal(serverHealth.json.status, 'OK');
    assert.equal('agentCount' in serverHealth.json, false);

    const ping = await srv.http('GET', '/api/server/ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.json.pong, true);
    assert.equal(typeof ping.json.timestamp, 'number');

    const hello = await srv.http('GET', '/api/server/hello');
    assert.deepEqual(hello.json, { message: 'Hello World!' });

    const status = await srv.http('GET', '/api/server/status');
    assert.equal(status.json.status, 'ok');
    assert.equal(status.json.agentCount, 1);
    assert.match(status.json.timestamp, ISO);

    const version = await srv.http('GET', '/api/system/version');
    assert.equal(version.status, 200);
    assert.equal(version.json.source, 'server');
    assert.equal(typeof version.json.version, 'string');
    assert.equal(typeof version.json.environment, 'string');
    assert.equal(typeof version.json.uptime, 'number');
    assert.match(version.json.timestamp, ISO);
  });
});

test('server logs: recent entries by level and limit, POST alias, DELETE clears', async () => {
  await withServer(async (srv) => {
    // Deprecated paths log a warning; two of them give two entries.
    await srv.http('GET', `${M}/central-servers`);
    await srv.http('GET', `${M}/central-servers/${DEFAULT_SERVER}/channels`);

    const all = await srv.http('GET', '/api/server/logs?level=warn');
    assert.equal(all.status, 200);
    assert.equal(all.json.requestedLevel, 'warn');
    assert.equal(all.json.agentName, 'all');
    assert.deepEqual(all.json.levels, ['fatal', 'error', 'warn', 'info', 'log', 'progress', 'success', 'debug', 'trace']);
    const deprecations = all.json.logs.filter((l) => l.msg.includes('[DEPRECATED]'));
    assert.ok(deprecations.length >= 2, JSON.stringify(all.json));
    for (const l of all.json.logs) {
      assert.ok(l.level >= 40);
      assert.equal(typeof l.time, 'number');
    }
    assert.equal(all.json.count, all.json.logs.length);
    assert.ok(all.json.total >= all.json.count);

    const one = await srv.http('GET', '/api/server/logs?level=warn&limit=1');
    assert.equal(one.json.logs.length, 1);
    assert.deepEqual(one.json.logs[0], all.json.logs.at(-1), 'the newest entry is kept');

    const errorsOnly = await srv.http('GET', '/api/server/logs?level=50');
    assert.ok(errorsOnly.json.logs.every((l) => l.level >= 50));
    assert.equal(errorsOnly.json.logs.some((l) => l.msg.includes('[DEPRECATED]')), false);

    const viaPost = await srv.http('POST', '/api/server/logs?level=warn');
    assert.equal(viaPost.status, 200);
    assert.ok(viaPost.json.logs.length >= 2);

    const cleared = await srv.http('DELETE', '/api/server/logs');
    assert.equal(cleared.status, 200);
    assert.deepEqual(cleared.json, { status: 'success', message: 'Logs cleared successfully' });
    const after = await srv.http('GET', '/api/server/logs');
    assert.equal(after.json.logs.length, 0);
  }, { env: { LOG_LEVEL: 'warn' } });
});

// ---- §2.1 pipeline ----------------------------------------------------------------------

test('unknown API paths, wrong methods, content types and malformed bodies', async () => {
  await withServer(async (srv) => {
    const notFound = { success: false, error: { message: 'API endpoint not found', code: 404 } };
    const unknown = await srv.http('GET', '/api/does-not-exist');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, notFound);
    const apiRoot = await srv.http('GET', '/api/');
    assert.deepEqual([apiRoot.status, apiRoot.json], [404, notFound]);
    const unknownMessaging = await srv.http('GET', `${M}/nothing/here`);
    assert.equal(unknownMessaging.status, 404);
    assert.deepEqual(unknownMessaging.json, notFound);
    // ElizaOS 1.5+ removed /complete (a 404 for the agents that still call it); confab serves
    // it for them and for @elizaos/api-client's completeMessage: bad fields are a 400, an
    // unknown channel a 404 in the style-B shape.
    const complete = await srv.http('POST', `${M}/complete`, { channel_id: uuid() });
    assert.equal(complete.status, 400);
    assert.equal(complete.json.success, false);
    const nowhere = await srv.http('POST', `${M}/complete`, { channel_id: uuid(), message_server_id: uuid() });
    assert.deepEqual([nowhere.status, nowhere.json], [404, { success: false, error: 'Channel not found' }]);
    // A known path with a method it does not serve is also "not found", as in Express.
    const wrongMethod = await srv.http('PUT', `${M}/channels`, {});
    assert.deepEqual([wrongMethod.status, wrongMethod.json], [404, notFound]);

    const invalidType = {
      success: false,
      error: { code: 'INVALID_CONTENT_TYPE', message: 'Invalid or missing Content-Type header' },
    };
    const plain = await srv.http('POST', `${M}/channels`, 'hello', { 'content-type': 'text/plain' });
    assert.deepEqual([plain.status, plain.json], [400, invalidType]);
    const patchPlain = await srv.http('PATCH', `${M}/channels/${uuid()}`, 'x=1', { 'content-type': 'text/csv' });
    assert.deepEqual([patchPlain.status, patchPlain.json], [400, invalidType]);
    // The check runs before routing, like ElizaOS's /api middleware.
    const unknownPlain = await srv.http('POST', '/api/nowhere', 'hello', { 'content-type': 'text/plain' });
    assert.deepEqual([unknownPlain.status, unknownPlain.json], [400, invalidType]);
    // No body: no content type needed; the handler answers with its own text.
    const empty = await srv.http('POST', `${M}/message-servers`);
    fails(empty, 400, 'Missing required fields: name, sourceType');

    const malformed = await srv.http('POST', `${M}/channels`, '{"name": ', { 'content-type': 'application/json' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.success, false);
    assert.match(malformed.json.error, /^Invalid JSON body/);
    const notObject = await srv.http('POST', `${M}/channels`, '[1, 2]', { 'content-type': 'application/json' });
    fails(notObject, 400, 'Request body must be a JSON object');
    const wrongType = await srv.http('PATCH', `${M}/channels/${uuid()}`, { name: 42 });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.json.success, false);
    assert.match(wrongType.json.error, /^Invalid request body: invalid type/);
  });
});

// ---- §2.6 message servers ---------------------------------------------------------------

test('message servers: current, list, create; new servers accept socket auto-creation', async () => {
  await withServer(async (srv) => {
    const current = await srv.http('GET', `${M}/message-server/current`);
    assert.deepEqual(current.json, { success: true, data: { messageServerId: DEFAULT_SERVER } });

    const list = await srv.http('GET', `${M}/message-servers`);
    assert.equal(list.status, 200);
    const def = list.json.data.messageServers.find((s) => s.id === DEFAULT_SERVER);
    assert.equal(def.name, 'Default Server');
    assert.equal(def.sourceType, 'eliza_default');
    assert.match(def.createdAt, ISO);
    assert.match(def.updatedAt, ISO);

    fails(await srv.http('POST', `${M}/message-servers`, { name: 'x' }), 400, 'Missing required fields: name, sourceType');
    fails(await srv.http('POST', `${M}/message-servers`, { sourceType: 'discord' }), 400, 'Missing required fields: name, sourceType');

    const made = await srv.http('POST', `${M}/message-servers`, {
      name: 'Discord bridge', sourceType: 'discord', sourceId: 'guild-1', metadata: { region: 'eu' },
    });
    assert.equal(made.status, 201);
    const server = made.json.data.server;
    assert.match(server.id, UUID);
    assert.equal(server.name, 'Discord bridge');
    assert.equal(server.sourceType, 'discord');
    assert.equal(server.sourceId, 'guild-1');
    assert.deepEqual(server.metadata, { region: 'eu' });
    assert.match(server.createdAt, ISO);

    // Deprecated POST /servers creates too.
    const legacy = await srv.http('POST', `${M}/servers`, { name: 'Old', sourceType: 'legacy' });
    assert.equal(legacy.status, 201);
    const listed = (await srv.http('GET', `${M}/message-servers`)).json.data.messageServers.map((s) => s.id);
    assert.ok(listed.includes(server.id) && listed.includes(legacy.json.data.server.id));
    // Deprecated GET /central-servers uses the key `servers`.
    const central = await srv.http('GET', `${M}/central-servers`);
    assert.equal(central.status, 200);
    assert.ok(central.json.data.servers.some((s) => s.id === server.id));
    assert.equal('messageServers' in central.json.data, false);

    // A socket message may auto-create a channel on the new server.
    const channelId = uuid();
    const sender = await joined(srv, channelId);
    const ack = waitFor(sender, 'messageAck');
    sender.emit('message', {
      type: 2,
      payload: { channelId, messageServerId: server.id, senderId: uuid(), message: 'first', messageId: uuid() },
    });
    await ack;
    const details = await srv.http('GET', `${M}/channels/${channelId}/details`);
    assert.equal(details.json.data.messageServerId, server.id);
    const channels = await srv.http('GET', `${M}/message-servers/${server.id}/channels`);
    assert.deepEqual(channels.json.data.channels.map((c) => c.id), [channelId]);
    const legacyChannels = await srv.http('GET', `${M}/central-servers/${server.id}/channels`);
    assert.deepEqual(legacyChannels.json.data.channels.map((c) => c.id), [channelId]);
    fails(await srv.http('GET', `${M}/message-servers/nope/channels`), 400, 'Invalid messageServerId');
  });
});

test('message server agents: list, add, remove, per agent, and the /servers aliases', async () => {
  await withServer(async (srv) => {
    const agent = uuid();
    const other = uuid();
    const base = `${M}/message-servers/${DEFAULT_SERVER}/agents`;
    // The default ELIZA agent registers itself on the current server, as ElizaOS agents do.
    assert.deepEqual((await srv.http('GET', base)).json, { success: true, data: { messageServerId: DEFAULT_SERVER, agents: [ELIZA] } });

    const added = await srv.http('POST', base, { agentId: agent });
    assert.equal(added.status, 201);
    assert.deepEqual(added.json.data, {
      messageServerId: DEFAULT_SERVER, agentId: agent, message: 'Agent added to message server successfully',
    });
    const viaAlias = await srv.http('POST', `${M}/servers/${DEFAULT_SERVER}/agents`, { agentId: other });
    assert.equal(viaAlias.status, 201);
    const listed = await srv.http('GET', `${M}/servers/${DEFAULT_SERVER}/agents`);
    assert.deepEqual([...listed.json.data.agents].sort(), [agent, other, ELIZA].sort());

    const servers = await srv.http('GET', `${M}/agents/${agent}/message-servers`);
    assert.deepEqual(servers.json, { success: true, data: { agentId: agent, messageServers: [DEFAULT_SERVER] } });
    fails(await srv.http('GET', `${M}/agents/not-a-uuid/message-servers`), 400, 'Invalid agentId format');

    const removed = await srv.http('DELETE', `${base}/${agent}`);
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.json.data, {
      messageServerId: DEFAULT_SERVER, agentId: agent, message: 'Agent removed from message server successfully',
    });
    assert.equal((await srv.http('DELETE', `${M}/servers/${DEFAULT_SERVER}/agents/${other}`)).status, 200);
    assert.deepEqual((await srv.http('GET', base)).json.data.agents, [ELIZA]);
    assert.deepEqual((await srv.http('GET', `${M}/agents/${agent}/message-servers`)).json.data.messageServers, []);

    fails(await srv.http('GET', `${M}/message-servers/bad/agents`), 400, 'Invalid messageServerId format');
    fails(await srv.http('GET', `${M}/message-servers/${uuid()}/agents`), 403, 'Cannot access agents for a different server');
    fails(await srv.http('POST', base, { agentId: 'bad' }), 400, 'Invalid messageServerId or agentId format');
    fails(await srv.http('POST', `${M}/message-servers/${uuid()}/agents`, { agentId: agent }), 403, 'Cannot modify agents for a different server');
    fails(await srv.http('DELETE', `${base}/bad`), 400, 'Invalid messageServerId or agentId format');
    fails(await srv.http('DELETE', `${M}/message-servers/${uuid()}/agents/${agent}`), 403, 'Cannot modify agents for a different server');
  });
});

// ---- §2.7 channels ----------------------------------------------------------------------

test('POST /channels (and /central-channels): shape, validation texts, unknown server', async () => {
  await withServer(async (srv) => {
    const a = uuid();
    const b = uuid();
    const res = await srv.http('POST', `${M}/channels`, {
      name: 'team', message_server_id: DEFAULT_SERVER, participantCentralUserIds: [a, b], metadata: { topic: 'x' },
    });
    assert.equal(res.status, 201);
    const c = res.json.data;
    assert.match(c.id, UUID);
    assert.equal(c.messageServerId, DEFAULT_SERVER);
    assert.equal(c.name, 'team');
    assert.equal(c.type, 'GROUP');
    assert.deepEqual(c.metadata, { topic: 'x' });
    assert.match(c.createdAt, ISO);
    assert.match(c.updatedAt, ISO);
    assert.deepEqual((await srv.http('GET', `${M}/channels/${c.id}/participants`)).json, { success: true, data: [a, b] });

    // server_id (deprecated) is accepted; type is kept.
    const legacy = await srv.http('POST', `${M}/central-channels`, {
      name: 'dm', server_id: DEFAULT_SERVER, participantCentralUserIds: [a], type: 'DM',
    });
    assert.equal(legacy.status, 201);
    assert.equal(legacy.json.data.type, 'DM');
    assert.deepEqual(legacy.json.data.metadata, {});

    const payload = 'Invalid payload. Required: name, message_server_id (UUID), participantCentralUserIds (array of UUIDs). Optional: type, metadata.';
    fails(await srv.http('POST', `${M}/channels`, { name: 'x', participantCentralUserIds: [] }), 400, 'Invalid message_server_id format');
    fails(await srv.http('POST', `${M}/channels`, { name: 'x', message_server_id: 'nil', participantCentralUserIds: [] }), 400, 'Invalid message_server_id format');
    fails(await srv.http('POST', `${M}/channels`, { message_server_id: DEFAULT_SERVER, participantCentralUserIds: [] }), 400, payload);
    // Without participants (what @elizaos/api-client's createChannel sends) the channel is
    // created; this caller names no entity, so it has none.
    const bare = await srv.http('POST', `${M}/channels`, { name: 'x', message_server_id: DEFAULT_SERVER });
    assert.equal(bare.status, 201);
    assert.deepEqual((await srv.http('GET', `${M}/channels/${bare.json.data.id}/participants`)).json.data, []);
    fails(await srv.http('POST', `${M}/channels`, { name: 'x', message_server_id: DEFAULT_SERVER, participantCentralUserIds: 'nope' }), 400, payload);
    fails(await srv.http('POST', `${M}/channels`, { name: 'x', message_server_id: DEFAULT_SERVER, participantCentralUserIds: ['user-1'] }), 400, payload);

    const unknown = await srv.http('POST', `${M}/channels`, { name: 'x', message_server_id: uuid(), participantCentralUserIds: [] });
    fails(unknown, 404, 'Failed to create group channel');
    assert.match(unknown.json.details, /does not exist/);

    const listed = await srv.http('GET', `${M}/message-servers/${DEFAULT_SERVER}/channels`);
    assert.deepEqual(listed.json.data.channels.map((ch) => ch.id).sort(), [c.id, legacy.json.data.id, bare.json.data.id].sort());
  });
});

test('GET /dm-channel finds or creates one DM channel per pair', async () => {
  await withServer(async (srv) => {
    const [x, y] = [uuid(), uuid()];
    const [small, large] = [x, y].sort();
    const first = await srv.http('GET', `${M}/dm-channel?currentUserId=${x}&targetUserId=${y}`);
    assert.equal(first.status, 200);
    const dm = first.json.data;
    assert.equal(dm.type, 'DM');
    assert.equal(dm.name, `DM-${small}-${large}`);
    assert.deepEqual(dm.metadata, { user1: small, user2: large });
    assert.equal(dm.messageServerId, DEFAULT_SERVER);
    const participants = (await srv.http('GET', `${M}/channels/${dm.id}/participants`)).json.data;
    assert.deepEqual([...participants].sort(), [small, large]);

    // Either direction, concurrently, with an unknown dmServerId (falls back): the same channel.
    const again = await Promise.all([
      srv.http('GET', `${M}/dm-channel?currentUserId=${y}&targetUserId=${x}`),
      srv.http('GET', `${M}/dm-channel?currentUserId=${x}&targetUserId=${y}&dmServerId=${uuid()}`),
    ]);
    for (const r of again) assert.equal(r.json.data.id, dm.id);

    // A DM on another existing server is a different channel.
    const server = (await srv.http('POST', `${M}/message-servers`, { name: 's', sourceType: 't' })).json.data.server;
    const elsewhere = await srv.http('GET', `${M}/dm-channel?currentUserId=${x}&targetUserId=${y}&dmServerId=${server.id}`);
    assert.equal(elsewhere.json.data.messageServerId, server.id);
    assert.notEqual(elsewhere.json.data.id, dm.id);

    fails(await srv.http('GET', `${M}/dm-channel?currentUserId=${x}`), 400, 'Missing targetUserId or currentUserId');
    fails(await srv.http('GET', `${M}/dm-channel?currentUserId=${x}&targetUserId=bob`), 400, 'Missing targetUserId or currentUserId');
    fails(await srv.http('GET', `${M}/dm-channel?currentUserId=${x}&targetUserId=${x}`), 400, 'Cannot create DM channel with oneself');
  });
});

test('channel details, participants and agents (with /central-channels aliases)', async () => {
  await withServer(async (srv) => {
    const { channel, user, agent } = await groupChannel(srv);
    const details = await srv.http('GET', `${M}/channels/${channel.id}/details`);
    assert.deepEqual(details.json, { success: true, data: channel });
    assert.deepEqual((await srv.http('GET', `${M}/central-channels/${channel.id}/details`)).json.data, channel);
    fails(await srv.http('GET', `${M}/channels/nope/details`), 400, 'Invalid channelId');
    fails(await srv.http('GET', `${M}/channels/${uuid()}/details`), 404, 'Channel not found');
    fails(await srv.http('GET', `${M}/channels/nope/participants`), 400, 'Invalid channelId');
    assert.deepEqual((await srv.http('GET', `${M}/central-channels/${channel.id}/participants`)).json.data, [user, agent]);

    const newAgent = uuid();
    const added = await srv.http('POST', `${M}/channels/${channel.id}/agents`, { agentId: newAgent });
    assert.equal(added.status, 201);
    assert.deepEqual(added.json.data, { channelId: channel.id, agentId: newAgent, message: 'Agent added to channel successfully' });
    const viaAlias = await srv.http('POST', `${M}/central-channels/${channel.id}/agents`, { agentId: uuid() });
    assert.equal(viaAlias.status, 201);
    fails(await srv.http('POST', `${M}/channels/${channel.id}/agents`, { agentId: 'x' }), 400, 'Invalid channelId or agentId format');
    fails(await srv.http('POST', `${M}/channels/${uuid()}/agents`, { agentId: newAgent }), 404, 'Channel not found');

    const agents = await srv.http('GET', `${M}/channels/${channel.id}/agents`);
    assert.equal(agents.json.data.channelId, channel.id);
    assert.deepEqual(agents.json.data.participants.slice(0, 3), [user, agent, newAgent]);
    assert.equal(agents.json.data.participants.length, 4);
    assert.equal((await srv.http('GET', `${M}/central-channels/${channel.id}/agents`)).json.data.participants.length, 4);
    fails(await srv.http('GET', `${M}/channels/x/agents`), 400, 'Invalid channelId format');

    const removed = await srv.http('DELETE', `${M}/channels/${channel.id}/agents/${newAgent}`);
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.json.data, { channelId: channel.id, agentId: newAgent, message: 'Agent removed from channel successfully' });
    fails(await srv.http('DELETE', `${M}/channels/${channel.id}/agents/${newAgent}`), 404, 'Agent is not a participant in this channel');
    fails(await srv.http('DELETE', `${M}/channels/${uuid()}/agents/${newAgent}`), 404, 'Channel not found');
    fails(await srv.http('DELETE', `${M}/channels/${channel.id}/agents/nope`), 400, 'Invalid channelId or agentId format');
    assert.equal((await srv.http('DELETE', `${M}/central-channels/${channel.id}/agents/${agent}`)).status, 200);
    assert.equal((await srv.http('GET', `${M}/channels/${channel.id}/participants`)).json.data.includes(agent), false);
  });
});

test('PATCH /channels/:id updates and announces channelUpdated to the room', async () => {
  await withServer(async (srv) => {
    const { channel } = await groupChannel(srv);
    const watcher = await joined(srv, channel.id);
    const newUser = uuid();
    const updated = waitFor(watcher, 'channelUpdated', (d) => d.channelId === channel.id);
    const res = await srv.http('PATCH', `${M}/channels/${channel.id}`, {
      name: 'renamed', metadata: { color: 'blue' }, participantCentralUserIds: [newUser],
    });
    assert.equal(res.status, 200);
    const data = res.json.data;
    assert.equal(data.id, channel.id);
    assert.equal(data.name, 'renamed');
    assert.deepEqual(data.metadata, { color: 'blue' });
    assert.equal(data.createdAt, channel.createdAt);
    const event = await updated;
    assert.equal(event.roomId, channel.id);
    assert.deepEqual(event.updates, data, 'updates carries the full channel');
    assert.deepEqual((await srv.http('GET', `${M}/channels/${channel.id}/participants`)).json.data, [newUser]);

    // The deprecated path works the same; omitted fields are kept.
    const renamed = waitFor(watcher, 'channelUpdated', (d) => d.updates.name === 'again');
    const alias = await srv.http('PATCH', `${M}/central-channels/${channel.id}`, { name: 'again' });
    assert.equal(alias.status, 200);
    assert.deepEqual(alias.json.data.metadata, { color: 'blue' });
    await renamed;

    fails(await srv.http('PATCH', `${M}/channels/not-a-uuid`, { name: 'x' }), 400, 'Invalid channelId');
    const missing = await srv.http('PATCH', `${M}/channels/${uuid()}`, { name: 'x' });
    fails(missing, 404, 'Channel not found');
    // Bad input on a missing channel is still the caller's error (was a 500: issue 16).
    fails(await srv.http('PATCH', `${M}/channels/${uuid()}`), 404, 'Channel not found');
    for (const body of [{ name: 5 }, { participantCentralUserIds: ['x'] }, { metadata: 'x', name: [] }]) {
      const res = await srv.http('PATCH', `${M}/channels/${uuid()}`, body);
      assert.equal(res.status, 400, res.text);
      assert.equal(typeof res.json.error, 'string', res.text);
    }
  });
});

test('DELETE /channels/:id removes it and announces channelDeleted', async () => {
  await withServer(async (srv) => {
    const { channel, user } = await groupChannel(srv);
    await postMessage(srv, channel.id, { author_id: user, content: 'bye', message_server_id: DEFAULT_SERVER });
    const watcher = await joined(srv, channel.id);
    const deleted = waitFor(watcher, 'channelDeleted', (d) => d.channelId === channel.id);
    const res = await srv.http('DELETE', `${M}/channels/${channel.id}`);
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    const event = await deleted;
    assert.equal(event.roomId, channel.id);
    fails(await srv.http('GET', `${M}/channels/${channel.id}/details`), 404, 'Channel not found');
    assert.deepEqual((await srv.http('GET', `${M}/channels/${channel.id}/messages`)).json.data.messages, []);
    assert.deepEqual((await srv.http('GET', `${M}/channels/${channel.id}/participants`)).json.data, []);

    // Via the alias, and for a channel that does not exist: still 204 with the event.
    const ghost = uuid();
    const ghostWatcher = await joined(srv, ghost);
    const ghostDeleted = waitFor(ghostWatcher, 'channelDeleted', (d) => d.channelId === ghost);
    assert.equal((await srv.http('DELETE', `${M}/central-channels/${ghost}`)).status, 204);
    await ghostDeleted;
    fails(await srv.http('DELETE', `${M}/channels/nope`), 400, 'Invalid channelId');
  });
});

test('DELETE /channels/:id/messages clears the history and announces channelCleared', async () => {
  await withServer(async (srv) => {
    const { channel, user } = await groupChannel(srv);
    for (const text of ['one', 'two']) {
      await postMessage(srv, channel.id, { author_id: user, content: text, message_server_id: DEFAULT_SERVER });
    }
    const watcher = await joined(srv, channel.id);
    const cleared = waitFor(watcher, 'channelCleared', (d) => d.channelId === channel.id);
    const res = await srv.http('DELETE', `${M}/channels/${channel.id}/messages`);
    assert.equal(res.status, 204);
    assert.equal((await cleared).roomId, channel.id);
    assert.deepEqual((await srv.http('GET', `${M}/channels/${channel.id}/messages`)).json.data.messages, []);
    // The channel itself stays.
    assert.equal((await srv.http('GET', `${M}/channels/${channel.id}/details`)).status, 200);

    const again = waitFor(watcher, 'channelCleared', (d) => d.channelId === channel.id);
    assert.equal((await srv.http('DELETE', `${M}/central-channels/${channel.id}/messages`)).status, 204);
    await again;
    fails(await srv.http('DELETE', `${M}/channels/nope/messages`), 400, 'Invalid channelId');
  });
});

test('DELETE /channels/:id/messages/:messageId deletes one message and announces messageDeleted', async () => {
  await withServer(async (srv) => {
    const { channel, user } = await groupChannel(srv);
    const ids = [];
    for (const text of ['keep', 'drop']) {
      const r = await postMessage(srv, channel.id, { author_id: user, content: text, message_server_id: DEFAULT_SERVER });
      ids.push(r.json.userMessage.id);
    }
    const watcher = await joined(srv, channel.id);
    const deleted = waitFor(watcher, 'messageDeleted', (d) => d.messageId === ids[1]);
    const res = await srv.http('DELETE', `${M}/channels/${channel.id}/messages/${ids[1]}`);
    assert.equal(res.status, 204);
    const event = await deleted;
    assert.equal(event.channelId, channel.id);
    assert.equal(event.roomId, channel.id);
    const left = (await srv.http('GET', `${M}/channels/${channel.id}/messages`)).json.data.messages;
    assert.deepEqual(left.map((m) => m.id), [ids[0]]);

    // A message that does not exist: 204 all the same, and the event still goes out.
    const ghost = uuid();
    const ghostEvent = waitFor(watcher, 'messageDeleted', (d) => d.messageId === ghost);
    assert.equal((await srv.http('DELETE', `${M}/central-channels/${channel.id}/messages/${ghost}`)).status, 204);
    await ghostEvent;
    fails(await srv.http('DELETE', `${M}/channels/${channel.id}/messages/nope`), 400, 'Invalid channelId or messageId');
    fails(await srv.http('DELETE', `${M}/channels/nope/messages/${ghost}`), 400, 'Invalid channelId or messageId');
  });
});

// ---- §2.7 channel messages ----------------------------------------------------------------

test('POST /channels/:id/messages (websocket transport): 201 userMessage and a room broadcast', async () => {
  await withServer(async (srv) => {
    const { channel, user } = await groupChannel(srv);
    const watcher = await joined(srv, channel.id);
    const broadcast = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'hello from REST');
    const inReplyTo = uuid();
    const res = await postMessage(srv, channel.id, {
      author_id: user,
      content: 'hello from REST',
      message_server_id: DEFAULT_SERVER,
      in_reply_to_message_id: inReplyTo,
      raw_message: { text: 'hello from REST' },
      metadata: { user_display_name: 'Ada' },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.success, true);
    // ElizaOS answers userMessage only; confab adds the stored message as `data`, which is
    // what @elizaos/api-client's postMessage returns.
    const m = res.json.userMessage;
    assert.equal(res.json.data.id, m.id);
    assert.equal(res.json.data.content, 'hello from REST');
    assert.match(m.id, UUID);
    assert.equal(m.channel_id, channel.id);
    assert.equal(m.message_server_id, DEFAULT_SERVER);
    assert.equal(m.author_id, user);
    assert.equal(m.author_display_name, 'Ada');
    assert.equal(m.content, 'hello from REST');
    assert.equal(m.source_type, 'eliza_gui');
    assert.equal(m.in_reply_to_message_id, inReplyTo);
    assert.deepEqual(m.raw_message, { text: 'hello from REST' });
    assert.deepEqual(m.metadata, { user_display_name: 'Ada' });
    assert.equal(typeof m.created_at, 'number');

    const b = await broadcast;
    assert.equal(b.id, m.id);
    assert.equal(b.senderId, user);
    assert.equal(b.senderName, 'Ada');
    assert.equal(b.roomId, channel.id);
    assert.equal(b.messageServerId, DEFAULT_SERVER);
    assert.equal(b.createdAt, m.created_at);
    assert.equal(b.source, 'eliza_gui');

    // The deprecated path, server_id instead of message_server_id, mode instead of transport,
    // a custom source type, and "User" as the default sender name.
    const second = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'legacy');
    const legacy = await postMessage(srv, channel.id, {
      author_id: user, content: 'legacy', server_id: DEFAULT_SERVER, mode: 'websocket', source_type: 'api',
    }, 'central-channels');
    assert.equal(legacy.status, 201, legacy.text);
    const b2 = await second;
    assert.equal(b2.senderName, 'User');
    assert.equal(b2.source, 'api');
  });
});

test('POST /channels/:id/messages: http and sse transports (no agents yet), validation texts', async () => {
  await withServer(async (srv) => {
    const { channel, user } = await groupChannel(srv);
    const watcher = await joined(srv, channel.id);
    const seen = record(watcher, 'messageBroadcast');
    const base = { author_id: user, message_server_id: DEFAULT_SERVER };

    const http = await postMessage(srv, channel.id, { ...base, content: 'sync please', transport: 'http' });
    assert.equal(http.status, 201, http.text);
    assert.equal(http.json.success, true);
    assert.equal(http.json.agentResponse, null);
    assert.equal(http.json.userMessage.content, 'sync please');
    const viaMode = await postMessage(srv, channel.id, { ...base, content: 'legacy sync', mode: 'sync' });
    assert.equal(viaMode.status, 201);
    assert.equal('agentResponse' in viaMode.json, true);

    const sse = await postMessage(srv, channel.id, { ...base, content: 'stream please', transport: 'sse' });
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type'), /^text\/event-stream/);
    const events = sse.text.trim().split('\n\n').map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      return { event: eventLine.replace('event: ', ''), data: JSON.parse(dataLine.replace('data: ', '')) };
    });
    assert.deepEqual(events.map((e) => e.event), ['user_message', 'done']);
    assert.equal(events[0].data.content, 'stream please');
    assert.equal(events[0].data.channel_id, channel.id);
    // `record` listens with `on`; waiting with a later `on` listener sees every earlier event.
    const lastBroadcast = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'legacy stream');
    const streamMode = await postMessage(srv, channel.id, { ...base, content: 'legacy stream', mode: 'stream' });
    assert.match(streamMode.headers.get('content-type'), /^text\/event-stream/);

    // confab broadcasts for every transport (see the deviation note in messages.rs).
    await lastBroadcast;
    assert.deepEqual(seen.map((b) => b.text), ['sync please', 'legacy sync', 'stream please', 'legacy stream']);

    fails(await postMessage(srv, channel.id, { ...base, content: 'x', transport: 'carrier-pigeon' }), 400,
      'Invalid transport "carrier-pigeon". Must be one of: http, sse, websocket, sync, stream');
    fails(await postMessage(srv, channel.id, { ...base, content: 'x', mode: 'fast' }), 400,
      'Invalid transport "fast". Must be one of: http, sse, websocket, sync, stream');
    fails(await postMessage(srv, channel.id, { ...base, content: 'x', transport: 7 }), 400,
      'Invalid transport type "number". Transport must be a string.');
    const missing = 'Missing required fields: channelId, message_server_id, author_id, content';
    fails(await postMessage(srv, channel.id, { ...base, content: '' }), 400, missing);
    fails(await postMessage(srv, channel.id, { content: 'x', message_server_id: DEFAULT_SERVER, author_id: 'ada' }), 400, missing);
    // A missing server defaults (tests/e2e/api-client.test.mjs); a malformed one is refused.
    fails(await postMessage(srv, channel.id, { content: 'x', author_id: user, message_server_id: 'default' }), 400, missing);
    fails(await postMessage(srv, 'not-a-uuid', { ...base, content: 'x' }), 400, missing);
    // Transport is validated before the required fields, as in ElizaOS.
    fails(await postMessage(srv, channel.id, { transport: 'nope' }), 400,
      'Invalid transport "nope". Must be one of: http, sse, websocket, sync, stream');

    // None of the refused posts was stored or broadcast.
    const marker = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'marker');
    await postMessage(srv, channel.id, { ...base, content: 'marker' });
    await marker;
    assert.equal(seen.length, 5);
    const stored = (await srv.http('GET', `${M}/channels/${channel.id}/messages`)).json.data.messages;
    assert.equal(stored.length, 5);
  });
});

test('POST /channels/:id/messages: auto-created channels, unknown server, no agent to answer', async () => {
  await withServer(async (srv) => {
    const user = uuid();
    const agent = uuid();

    // A DM channel created by the first message, with the target as second participant.
    const dmId = uuid();
    const watcher = await joined(srv, dmId);
    const broadcast = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'hi agent');
    const res = await postMessage(srv, dmId, {
      author_id: user, content: 'hi agent', message_server_id: DEFAULT_SERVER,
      metadata: { isDm: true, targetUserId: agent, channelType: 'DM' },
    });
    assert.equal(res.status, 201, res.text);
    await broadcast;
    const details = (await srv.http('GET', `${M}/channels/${dmId}/details`)).json.data;
    assert.equal(details.type, 'DM');
    assert.equal(details.name, `DM ${dmId.slice(0, 8)}`);
    assert.equal(details.sourceType, 'auto_created');
    assert.equal(details.metadata.created_by, 'gui_auto_creation');
    assert.equal(details.metadata.created_for_user, user);
    assert.equal(details.metadata.channel_type, 'DM');
    assert.equal(details.metadata.isDm, true);
    assert.match(details.metadata.created_at, ISO);
    assert.deepEqual((await srv.http('GET', `${M}/channels/${dmId}/participants`)).json.data, [user, agent]);

    // A group channel named by targetAgentId only.
    const groupId = uuid();
    const group = await postMessage(srv, groupId, {
      author_id: user, content: 'hi group', message_server_id: DEFAULT_SERVER, metadata: { targetAgentId: agent },
    });
    assert.equal(group.status, 201, group.text);
    const groupDetails = (await srv.http('GET', `${M}/channels/${groupId}/details`)).json.data;
    assert.equal(groupDetails.type, 'GROUP');
    assert.equal(groupDetails.name, `Chat ${groupId.slice(0, 8)}`);

    // Nobody to answer: 400, and (unlike ElizaOS) nothing stored.
    const lonelyId = uuid();
    fails(await postMessage(srv, lonelyId, { author_id: user, content: 'anyone?', message_server_id: DEFAULT_SERVER }), 400,
      'No agent found in channel participants');
    assert.deepEqual((await srv.http('GET', `${M}/channels/${lonelyId}/messages`)).json.data.messages, []);
    // Another author in that channel has a counterpart (the creator) and may post.
    assert.equal((await postMessage(srv, lonelyId, { author_id: uuid(), content: 'me!', message_server_id: DEFAULT_SERVER })).status, 201);

    const ghostServer = uuid();
    fails(await postMessage(srv, uuid(), { author_id: user, content: 'x', message_server_id: ghostServer }), 404,
      `Server ${ghostServer} does not exist`);
  });
});

test('GET /channels/:id/messages: history shape, newest first, limit, before (ms or ISO)', async () => {
  await withServer(async (srv) => {
    const { channel, user } = await groupChannel(srv);
    const ids = [];
    for (let i = 0; i < 4; i++) {
      const r = await postMessage(srv, channel.id, {
        author_id: user, content: `m${i}`, message_server_id: DEFAULT_SERVER, metadata: { user_display_name: 'Ada', attachments: [{ url: 'https://example.com/a.png' }] },
      });
      ids.push(r.json.userMessage);
    }
    const inReplyTo = ids[3].id;
    const reply = await srv.http('POST', `${M}/submit`, agentReply(channel.id, { in_reply_to_message_id: inReplyTo }));
    assert.equal(reply.status, 201, reply.text);

    const page = await srv.http('GET', `${M}/channels/${channel.id}/messages`);
    assert.equal(page.status, 200);
    const msgs = page.json.data.messages;
    assert.deepEqual(msgs.map((m) => m.content), ['agent says hi', 'm3', 'm2', 'm1', 'm0']);
    const agentMsg = msgs[0];
    assert.equal(agentMsg.channelId, channel.id);
    assert.equal(agentMsg.sourceType, 'agent_response');
    assert.equal(agentMsg.inReplyToRootMessageId, inReplyTo);
    assert.equal(agentMsg.metadata.thought, 'be nice');
    assert.deepEqual(agentMsg.metadata.actions, ['REPLY']);
    assert.equal(agentMsg.metadata.agentName, 'Eliza');
    assert.deepEqual(agentMsg.rawMessage.actions, ['REPLY']);
    const userMsg = msgs[1];
    assert.equal(userMsg.id, ids[3].id);
    assert.equal(userMsg.authorId, user);
    assert.equal(userMsg.inReplyToRootMessageId, null);
    assert.deepEqual(userMsg.metadata.attachments, [{ url: 'https://example.com/a.png' }]);
    assert.equal(userMsg.metadata.user_display_name, 'Ada');
    assert.match(userMsg.createdAt, ISO);
    assert.match(userMsg.updatedAt, ISO);
    assert.equal(userMsg.created_at, Date.parse(userMsg.createdAt));
    assert.equal(userMsg.updated_at, Date.parse(userMsg.updatedAt));

    const two = await srv.http('GET', `${M}/channels/${channel.id}/messages?limit=2`);
    assert.deepEqual(two.json.data.messages.map((m) => m.content), ['agent says hi', 'm3']);
    // `before` is exclusive; epoch ms and ISO give the same page.
    const pivot = msgs[2];
    const byMs = await srv.http('GET', `${M}/channels/${channel.id}/messages?before=${pivot.created_at}`);
    const byIso = await srv.http('GET', `${M}/channels/${channel.id}/messages?before=${encodeURIComponent(pivot.createdAt)}`);
    assert.ok(byMs.json.data.messages.every((m) => m.created_at < pivot.created_at));
    assert.deepEqual(byIso.json.data.messages, byMs.json.data.messages);
    const legacy = await srv.http('GET', `${M}/central-channels/${channel.id}/messages?limit=1`);
    assert.deepEqual(legacy.json.data.messages.map((m) => m.content), ['agent says hi']);

    assert.deepEqual((await srv.http('GET', `${M}/channels/${uuid()}/messages`)).json, { success: true, data: { messages: [] } });
    fails(await srv.http('GET', `${M}/channels/nope/messages`), 400, 'Invalid channelId');
  });
});

// ---- §2.5 core --------------------------------------------------------------------------

test('POST /submit stores the agent reply and broadcasts the agent variant', async () => {
  await withServer(async (srv) => {
    const { channel } = await groupChannel(srv);
    const watcher = await joined(srv, channel.id);
    const replyId = uuid();
    const inReplyTo = uuid();
    const broadcast = waitFor(watcher, 'messageBroadcast', (d) => d.id === replyId);
    const body = agentReply(channel.id, { messageId: replyId, in_reply_to_message_id: inReplyTo });
    const res = await srv.http('POST', `${M}/submit`, body);
    assert.equal(res.status, 201, res.text);
    const data = res.json.data;
    assert.equal(data.id, replyId);
    assert.equal(data.channelId, channel.id);
    assert.equal(data.authorId, body.author_id);
    assert.equal(data.content, 'agent says hi');
    assert.equal(data.sourceType, 'agent_response');
    assert.equal(data.inReplyToRootMessageId, inReplyTo);
    assert.deepEqual(data.rawMessage, body.raw_message);
    assert.deepEqual(data.metadata, body.metadata);
    assert.match(data.createdAt, ISO);

    const b = await broadcast;
    assert.equal(b.senderId, body.author_id);
    assert.equal(b.senderName, 'Eliza');
    assert.equal(b.text, 'agent says hi');
    assert.equal(b.roomId, channel.id);
    assert.equal(b.serverId, DEFAULT_SERVER);
    assert.equal(b.source, 'agent_response');
    assert.equal(b.thought, 'be nice');
    assert.deepEqual(b.actions, ['REPLY']);
    assert.equal(b.createdAt, Date.parse(data.createdAt));

    // Without messageId the server picks the id; server_id is accepted for message_server_id.
    const { message_server_id: _, ...rest } = agentReply(channel.id);
    const second = await srv.http('POST', `${M}/submit`, { ...rest, server_id: DEFAULT_SERVER });
    assert.equal(second.status, 201, second.text);
    assert.match(second.json.data.id, UUID);
    assert.equal('inReplyToRootMessageId' in second.json.data, false);

    const missing = 'Missing required fields: channel_id, message_server_id, author_id, content, source_type, raw_message';
    for (const drop of ['channel_id', 'message_server_id', 'author_id', 'content', 'source_type', 'raw_message']) {
      const partial = agentReply(channel.id);
      delete partial[drop];
      fails(await srv.http('POST', `${M}/submit`, partial), 400, missing);
    }
    fails(await srv.http('POST', `${M}/submit`, agentReply('general')), 400, missing);
    fails(await srv.http('POST', `${M}/submit`, agentReply(channel.id, { in_reply_to_message_id: 'x' })), 400, 'Invalid in_reply_to_message_id format');
    fails(await srv.http('POST', `${M}/submit`, agentReply(channel.id, { messageId: 'x' })), 400, 'Invalid messageId format');
    const unknown = await srv.http('POST', `${M}/submit`, agentReply(uuid()));
    fails(unknown, 404, 'Failed to submit agent message');
    assert.match(unknown.json.details, /not found/);
    // Reusing an id fails the insert.
    fails(await srv.http('POST', `${M}/submit`, agentReply(channel.id, { messageId: replyId })), 500, 'Failed to submit agent message');
  });
});

test('POST /action and PATCH /action/:id broadcast the action variant, updated in place', async () => {
  await withServer(async (srv) => {
    const { channel } = await groupChannel(srv);
    const watcher = await joined(srv, channel.id);
    const actionId = uuid();
    const created = waitFor(watcher, 'messageBroadcast', (d) => d.id === actionId);
    const body = agentReply(channel.id, {
      messageId: actionId, content: 'Executing action: SEARCH', source_type: 'agent_action',
      raw_message: { text: 'Executing action: SEARCH', actions: ['SEARCH'], actionStatus: 'executing' },
    });
    const res = await srv.http('POST', `${M}/action`, body);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.data.id, actionId);
    assert.equal(res.json.data.sourceType, 'agent_action');
    const b = await created;
    assert.equal(b.source, 'agent_action');
    assert.equal(b.senderName, 'Eliza');
    assert.equal(b.messageServerId, DEFAULT_SERVER);
    assert.equal(typeof b.updatedAt, 'number');
    assert.deepEqual(b.rawMessage, body.raw_message);
    assert.deepEqual(b.actions, ['SEARCH']);

    const updated = waitFor(watcher, 'messageBroadcast', (d) => d.id === actionId && d.text === 'Action done: SEARCH');
    const patch = await srv.http('PATCH', `${M}/action/${actionId}`, {
      content: 'Action done: SEARCH',
      raw_message: { text: 'Action done: SEARCH', actions: ['SEARCH'], actionStatus: 'completed' },
    });
    assert.equal(patch.status, 200, patch.text);
    assert.equal(patch.json.success, true);
    assert.equal(patch.json.data.id, actionId);
    assert.equal(patch.json.data.content, 'Action done: SEARCH');
    assert.equal(patch.json.data.rawMessage.actionStatus, 'completed');
    assert.deepEqual(patch.json.data.metadata, body.metadata, 'metadata kept when not given');
    assert.equal(patch.json.data.inReplyToRootMessageId, null);
    const u = await updated;
    assert.equal(u.source, 'agent_action');
    assert.equal(u.rawMessage.actionStatus, 'completed');
    assert.ok(u.updatedAt >= b.updatedAt);
    // Still one message, edited.
    const stored = (await srv.http('GET', `${M}/channels/${channel.id}/messages`)).json.data.messages;
    assert.deepEqual(stored.map((m) => [m.id, m.content]), [[actionId, 'Action done: SEARCH']]);

    const missing = 'Missing required fields: channel_id, message_server_id, author_id, content, source_type, raw_message';
    fails(await srv.http('POST', `${M}/action`, { ...body, source_type: undefined, messageId: uuid() }), 400, missing);
    fails(await srv.http('POST', `${M}/action`, agentReply(channel.id, { messageId: 'nope' })), 400, 'Invalid messageId format');
    fails(await srv.http('POST', `${M}/action`, agentReply(uuid())), 404, 'Failed to create action');
    fails(await srv.http('PATCH', `${M}/action/${uuid()}`, { content: 'x' }), 404, 'Message not found');
    fails(await srv.http('PATCH', `${M}/action/not-a-uuid`, { content: 'x' }), 400, 'Invalid message id');
    fails(await srv.http('PATCH', `${M}/action/${actionId}`, { author_id: 'bob' }), 400, 'Invalid author_id format');
    fails(await srv.http('PATCH', `${M}/action/${actionId}`, { in_reply_to_message_id: 'x' }), 400, 'Invalid in_reply_to_message_id format');
  });
});

test('POST /ingest-external stores, broadcasts the ingest variant, auto-creates the channel', async () => {
  await withServer(async (srv) => {
    const { channel } = await groupChannel(srv);
    const watcher = await joined(srv, channel.id);
    const author = uuid();
    const broadcast = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'from discord');
    const res = await srv.http('POST', `${M}/ingest-external`, {
      channel_id: channel.id, message_server_id: DEFAULT_SERVER, author_id: author, content: 'from discord',
      author_display_name: 'Grace', source_type: 'discord', source_id: 'discord-msg-1', raw_message: { id: 1 },
    });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.json.success, true);
    assert.equal(res.json.message, 'Message ingested and published to bus');
    assert.match(res.json.data.messageId, UUID);
    const b = await broadcast;
    assert.equal(b.id, res.json.data.messageId);
    assert.equal(b.senderId, author);
    assert.equal(b.senderName, 'Grace');
    assert.equal(b.roomId, channel.id);
    assert.equal(b.messageServerId, DEFAULT_SERVER);
    assert.equal(b.source, 'discord');
    const stored = (await srv.http('GET', `${M}/channels/${channel.id}/messages`)).json.data.messages[0];
    assert.equal(stored.sourceId, 'discord-msg-1');
    assert.deepEqual(stored.rawMessage, { id: 1 });

    // An unknown channel is created (confab extension; ElizaOS fails here).
    const fresh = uuid();
    const freshWatcher = await joined(srv, fresh);
    const freshBroadcast = waitFor(freshWatcher, 'messageBroadcast', (d) => d.text === 'new thread');
    const created = await srv.http('POST', `${M}/ingest-external`, {
      channel_id: fresh, server_id: DEFAULT_SERVER, author_id: author, content: 'new thread',
    });
    assert.equal(created.status, 202, created.text);
    assert.equal((await freshBroadcast).senderName, 'User');
    const details = (await srv.http('GET', `${M}/channels/${fresh}/details`)).json.data;
    assert.equal(details.metadata.created_by, 'external_ingest_auto_creation');

    for (const drop of ['channel_id', 'message_server_id', 'author_id', 'content']) {
      const body = { channel_id: channel.id, message_server_id: DEFAULT_SERVER, author_id: author, content: 'x' };
      delete body[drop];
      fails(await srv.http('POST', `${M}/ingest-external`, body), 400, 'Invalid external message payload');
    }
    const ghostServer = uuid();
    fails(await srv.http('POST', `${M}/ingest-external`, {
      channel_id: uuid(), message_server_id: ghostServer, author_id: author, content: 'x',
    }), 404, `Server ${ghostServer} does not exist`);
    // Wrongly typed fields are the caller's error too (were a 500: issue 16).
    for (const bad of [{ channel_id: 5, message_server_id: 7, author_id: true, content: 1 },
      { channel_id: [1], message_server_id: { a: 1 }, author_id: 'a', content: 'x' }]) {
      const res = await srv.http('POST', `${M}/ingest-external`, bad);
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(bad)}: ${res.status}`);
      assert.equal(res.json.success, false);
    }
  });
});

// ---- confab extension ---------------------------------------------------------------------

test('GET /channels/:id/presence lists connected entities with their connection counts', async () => {
  await withServer(async (srv) => {
    const channelId = uuid();
    const empty = await srv.http('GET', `${M}/channels/${channelId}/presence`);
    assert.deepEqual(empty.json, { success: true, data: { channelId, entities: [] } });

    const ada = uuid();
    const bob = uuid();
    await joined(srv, channelId, ada);
    await joined(srv, channelId, ada);
    const bobSocket = await joined(srv, channelId, bob);
    const present = await srv.http('GET', `${M}/channels/${channelId}/presence`);
    assert.equal(present.status, 200);
    const byEntity = Object.fromEntries(present.json.data.entities.map((e) => [e.entityId, e.connections]));
    assert.deepEqual(byEntity, { [ada]: 2, [bob]: 1 });

    // Bob leaves: the others see userLeft, and presence drops him.
    const [observer] = [await joined(srv, channelId, uuid())];
    const left = waitFor(observer, 'userLeft', (d) => d.entityId === bob);
    bobSocket.disconnect();
    await left;
    const after = await srv.http('GET', `${M}/channels/${channelId}/presence`);
    assert.equal(after.json.data.entities.some((e) => e.entityId === bob), false);
  });
});

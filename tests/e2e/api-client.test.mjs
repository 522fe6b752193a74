// The messaging calls of the real `@elizaos/api-client` 1.7.2 (issue 17, part 2) against the
// real binary: each call below failed against confab before (400 or 404). The client is used
// as its users use it (`new ElizaClient({ baseUrl })`), so these tests pin the request and
// response shapes that package sends and unwraps. Runs on SQLite and, with
// CONFAB_TEST_DATABASE_URL, PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElizaClient, ApiError } from '@elizaos/api-client';
import { startServer, waitFor, uuid, DEFAULT_SERVER, checkContract } from './harness.mjs';

// Every response below is checked against the published OpenAPI document (issue 16).
checkContract();
import { ELIZA } from './agent-util.mjs';
import { signJwt, nowSecs } from './security-util.mjs';

/** confab's author for a post that names none from a caller with no entity. */
const DEFAULT_AUTHOR = '00000000-0000-0000-0000-000000000001';

async function withServer(fn, options) {
  const srv = await startServer(options);
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

/** The client's call rejects with an ApiError of this HTTP status. */
async function rejects(promise, status) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof ApiError, `not an ApiError: ${e}`);
    assert.equal(e.status, status, `${e.code} ${e.message}`);
    return true;
  });
}

/** A socket of `entityId` in the channel's room (ElizaOS's type-1 join). */
async function joined(srv, channelId, auth = { entityId: uuid() }) {
  const socket = await srv.connected({ auth });
  const ack = waitFor(socket, 'channel_joined', (d) => d.channelId === channelId);
  socket.emit('message', { type: 1, payload: { channelId } });
  await ack;
  return socket;
}

test('createChannel without participants, postMessage without author or server, getMessage', async () => {
  await withServer(async (srv) => {
    const client = new ElizaClient({ baseUrl: srv.url });
    const { messaging } = client;

    // No participantCentralUserIds: created in the default server, nobody in it (the caller
    // names no entity).
    const ch = await messaging.createChannel({ name: 'api-client room', type: 'GROUP' });
    assert.match(ch.id, /^[0-9a-f-]{36}$/);
    assert.equal(ch.name, 'api-client room');
    assert.equal(ch.type, 'GROUP');
    assert.equal(ch.messageServerId, DEFAULT_SERVER);
    assert.deepEqual(await messaging.getChannelParticipants(ch.id), []);
    assert.equal((await messaging.getChannelDetails(ch.id)).id, ch.id);

    // A caller that names its entity is the channel's participant and the post's author.
    const me = uuid();
    const mine = new ElizaClient({ baseUrl: srv.url, headers: { 'X-Entity-Id': me } }).messaging;
    const own = await mine.createChannel({ name: 'mine' });
    assert.deepEqual(await mine.getChannelParticipants(own.id), [me]);

    // A post needs someone to answer it, as in ElizaOS.
    await messaging.addAgentToChannel(ch.id, ELIZA);
    await mine.addAgentToChannel(own.id, ELIZA);
    const watcher = await joined(srv, ch.id);
    const seen = waitFor(watcher, 'messageBroadcast', (d) => d.text === 'hello from the api-client');

    // postMessage sends only content and metadata; the client unwraps `data`.
    const posted = await messaging.postMessage(ch.id, 'hello from the api-client', { user_display_name: 'Ann' });
    assert.equal(posted.content, 'hello from the api-client');
    assert.equal(posted.channelId, ch.id);
    assert.equal(posted.authorId, DEFAULT_AUTHOR);
    assert.equal(posted.metadata.user_display_name, 'Ann');
    const broadcast = await seen;
    assert.equal(broadcast.id, posted.id);
    assert.equal(broadcast.senderId, DEFAULT_AUTHOR);
    assert.equal(broadcast.messageServerId, DEFAULT_SERVER);

    const ownPost = await mine.postMessage(own.id, 'mine to say');
    assert.equal(ownPost.authorId, me);

    // getMessage: the stored message, as the history lists it.
    const got = await messaging.getMessage(posted.id);
    assert.equal(got.id, posted.id);
    assert.equal(got.content, 'hello from the api-client');
    assert.equal(got.authorId, DEFAULT_AUTHOR);
    assert.equal(got.channelId, ch.id);
    assert.equal(got.createdAt, posted.createdAt);
    const history = await messaging.getChannelMessages(ch.id, { limit: 50 });
    assert.deepEqual(history.messages.find((m) => m.id === posted.id), got);

    // Bad input is the caller's error, never a 500; nothing is stored.
    await rejects(messaging.getMessage(uuid()), 404);
    await rejects(messaging.getMessage('not-a-uuid'), 400);
    const before = (await messaging.getChannelMessages(ch.id)).messages.length;
    const bad = await srv.http('POST', `/api/messaging/channels/${ch.id}/messages`, { content: 'x', author_id: 'someone' });
    assert.equal(bad.status, 400, bad.text);
    const badServer = await srv.http('POST', `/api/messaging/channels/${ch.id}/messages`, { content: 'x', message_server_id: 7 });
    assert.equal(badServer.status, 400, badServer.text);
    await rejects(messaging.createChannel({ type: 'GROUP' }), 400);
    assert.equal((await messaging.getChannelMessages(ch.id)).messages.length, before);
  });
});

test('deleteMessageServer removes its channels and messages; the default server stays', async () => {
  await withServer(async (srv) => {
    const { messaging } = new ElizaClient({ baseUrl: srv.url });
    const { server } = await messaging.createMessageServer({ name: 'doomed', sourceType: 'test' });
    const ch = await messaging.createChannel({ name: 'in doomed', type: 'GROUP', messageServerId: server.id });
    assert.equal(ch.messageServerId, server.id);
    await messaging.addAgentToChannel(ch.id, ELIZA);
    const posted = await messaging.postMessage(ch.id, 'soon gone');
    assert.equal(posted.channelId, ch.id);
    // A channel of the default server, which must survive.
    const kept = await messaging.createChannel({ name: 'kept' });
    await messaging.addAgentToChannel(kept.id, ELIZA);
    const keptPost = await messaging.postMessage(kept.id, 'still here');

    const watcher = await joined(srv, ch.id);
    const deletedEvent = waitFor(watcher, 'channelDeleted', (d) => d.channelId === ch.id);
    assert.deepEqual(await messaging.deleteMessageServer(server.id), { success: true });
    await deletedEvent;

    const { messageServers } = await messaging.listMessageServers();
    assert.ok(!messageServers.some((s) => s.id === server.id));
    assert.ok(messageServers.some((s) => s.id === DEFAULT_SERVER));
    await rejects(messaging.getChannelDetails(ch.id), 404);
    await rejects(messaging.getMessage(posted.id), 404);
    assert.deepEqual((await messaging.getMessageServerChannels(server.id)).channels, []);
    assert.equal((await messaging.getMessage(keptPost.id)).content, 'still here');

    // Again: gone. The default server: refused, with a clear error, and nothing removed.
    await rejects(messaging.deleteMessageServer(server.id), 404);
    const refused = await srv.http('DELETE', `/api/messaging/message-servers/${DEFAULT_SERVER}`);
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.json, { success: false, error: 'The default message server cannot be deleted' });
    await rejects(messaging.deleteMessageServer('not-a-uuid'), 400);
    assert.equal((await messaging.getChannelDetails(kept.id)).id, kept.id);
    assert.equal((await messaging.getMessage(keptPost.id)).id, keptPost.id);
  });
});

test('with authentication: the author is the token\'s entity, reads need the channel, deleting a server needs an operator', async () => {
  const KEY = 'api-client-key';
  const OPS = 'api-client-operator';
  const SECRET = 'api-client-secret';
  const token = (sub) => signJwt({ sub, exp: nowSecs() + 600 }, { secret: SECRET });
  await withServer(async (srv) => {
    const A = uuid();
    const C = uuid();
    const as = (headers) => new ElizaClient({ baseUrl: srv.url, apiKey: KEY, headers }).messaging;
    const member = as({ Authorization: `Bearer ${token(A)}` });
    const outsider = as({ Authorization: `Bearer ${token(C)}` });
    const operator = new ElizaClient({ baseUrl: srv.url, apiKey: OPS }).messaging;

    // A member's channel: the token's entity is its participant and its posts' author.
    const ch = await member.createChannel({ name: 'private', type: 'GROUP', metadata: { private: true } });
    assert.deepEqual(await member.getChannelParticipants(ch.id), [A]);
    await operator.addAgentToChannel(ch.id, ELIZA);
    const posted = await member.postMessage(ch.id, 'for members only');
    assert.equal(posted.authorId, A);
    assert.equal((await member.getMessage(posted.id)).content, 'for members only');
    // Someone else learns nothing, not even that the message exists.
    await rejects(outsider.getMessage(posted.id), 404);
    await rejects(outsider.postMessage(ch.id, 'let me in'), 403);

    const { server } = await operator.createMessageServer({ name: 'ops only', sourceType: 'test' });
    await rejects(member.deleteMessageServer(server.id), 403);
    assert.ok((await operator.listMessageServers()).messageServers.some((s) => s.id === server.id));
    await rejects(operator.deleteMessageServer(DEFAULT_SERVER), 400);
    assert.deepEqual(await operator.deleteMessageServer(server.id), { success: true });
  }, {
    env: { ELIZA_SERVER_AUTH_TOKEN: KEY, CONFAB_ADMIN_KEY: OPS, JWT_SECRET: SECRET },
  });
});

test('updateMessage stores the edit, tells the channel\'s members with messageUpdated, and the history shows it', async () => {
  await withServer(async (srv) => {
    const me = uuid();
    const { messaging } = new ElizaClient({ baseUrl: srv.url, headers: { 'X-Entity-Id': me } });
    const ch = await messaging.createChannel({ name: 'edits', type: 'GROUP' });
    await messaging.addAgentToChannel(ch.id, ELIZA);
    const other = await messaging.createChannel({ name: 'elsewhere', type: 'GROUP' });
    const member = await joined(srv, ch.id);
    const outsider = await joined(srv, other.id);
    const outsiderEvents = [];
    outsider.on('messageUpdated', (d) => outsiderEvents.push(d));

    const posted = await messaging.postMessage(ch.id, 'helo wrold');
    assert.equal(posted.updatedAt, posted.createdAt);
    assert.equal(posted.metadata.edited, undefined);

    const event = waitFor(member, 'messageUpdated', (d) => d.messageId === posted.id);
    const edited = await messaging.updateMessage(posted.id, 'hello world');
    assert.equal(edited.id, posted.id);
    assert.equal(edited.content, 'hello world');
    assert.equal(edited.authorId, me);
    assert.equal(edited.metadata.edited, true);
    assert.equal(edited.createdAt, posted.createdAt);
    assert.ok(edited.updated_at >= edited.created_at);

    const e = await event;
    assert.equal(e.text, 'hello world');
    assert.equal(e.senderId, me);
    assert.equal(e.channelId, ch.id);
    assert.equal(e.messageServerId, DEFAULT_SERVER);
    assert.equal(e.edited, true);
    assert.equal(e.updatedAt, edited.updated_at);

    // Stored: the message and the history show the edit, once, in its place.
    assert.deepEqual(await messaging.getMessage(posted.id), edited);
    const history = (await messaging.getChannelMessages(ch.id)).messages;
    assert.deepEqual(history.filter((m) => m.id === posted.id), [edited]);
    assert.ok(!history.some((m) => m.content === 'helo wrold'));

    // Bad input changes nothing.
    await rejects(messaging.updateMessage(posted.id, ''), 400);
    await rejects(messaging.updateMessage(posted.id, undefined), 400);
    const numeric = await srv.http('PATCH', `/api/messaging/messages/${posted.id}`, { content: 42 });
    assert.equal(numeric.status, 400, numeric.text);
    await rejects(messaging.updateMessage(uuid(), 'nobody'), 404);
    await rejects(messaging.updateMessage('not-a-uuid', 'x'), 400);
    assert.equal((await messaging.getMessage(posted.id)).content, 'hello world');

    // A second edit is another event; the other channel's socket heard none of them.
    const second = waitFor(member, 'messageUpdated', (d) => d.text === 'hello, world');
    await messaging.updateMessage(posted.id, 'hello, world');
    await second;
    assert.deepEqual(outsiderEvents, []);
  });
});

test('with authentication an edit needs Write on the channel', async () => {
  const KEY = 'api-client-key';
  const SECRET = 'api-client-secret';
  const token = (sub) => signJwt({ sub, exp: nowSecs() + 600 }, { secret: SECRET });
  await withServer(async (srv) => {
    const A = uuid();
    const C = uuid();
    const as = (sub) => new ElizaClient({ baseUrl: srv.url, apiKey: KEY, headers: { Authorization: `Bearer ${token(sub)}` } }).messaging;
    const member = as(A);
    const ch = await member.createChannel({ name: 'private', metadata: { private: true } });
    await member.addAgentToChannel(ch.id, ELIZA);
    const posted = await member.postMessage(ch.id, 'mine');
    await rejects(as(C).updateMessage(posted.id, 'defaced'), 404);
    assert.equal((await member.getMessage(posted.id)).content, 'mine');
    assert.equal((await member.updateMessage(posted.id, 'mine, edited')).content, 'mine, edited');
  }, { env: { ELIZA_SERVER_AUTH_TOKEN: KEY, JWT_SECRET: SECRET } });
});

test('searchMessages: full text, ranked, paged, filtered, only channels the caller may read', async () => {
  const KEY = 'api-client-key';
  const SECRET = 'api-client-secret';
  const token = (sub) => signJwt({ sub, exp: nowSecs() + 600 }, { secret: SECRET });
  await withServer(async (srv) => {
    const A = uuid();
    const C = uuid();
    const as = (sub) => new ElizaClient({ baseUrl: srv.url, apiKey: KEY, headers: { Authorization: `Bearer ${token(sub)}` } }).messaging;
    const alice = as(A);
    const carol = as(C);
    const open = await alice.createChannel({ name: 'open' });
    const secret = await alice.createChannel({ name: 'secret', metadata: { private: true } });
    for (const ch of [open, secret]) await alice.addAgentToChannel(ch.id, ELIZA);

    const say = (ch, text) => alice.postMessage(ch.id, text);
    const best = await say(open, 'Zebra zebra zebra: the zebra report');
    const plain = await say(open, 'I saw a zebra at the zoo');
    await say(open, 'nothing about stripes');
    const hidden = await say(secret, 'the secret zebra plan');
    const other = await say(open, 'zebras are not a zebra?');
    // The author speaks in the open channel too, so authorId has something to tell apart.
    const carolSays = await carol.postMessage(open.id, 'carol likes the zebra');

    // Ranked: the message that is mostly "zebra" first; "zebras" is another word.
    const forAlice = await alice.searchMessages({ query: 'ZEBRA' });
    const ids = forAlice.messages.map((m) => m.id);
    assert.equal(ids[0], best.id);
    assert.deepEqual([...ids].sort(), [best.id, plain.id, hidden.id, other.id, carolSays.id].sort());
    assert.equal(forAlice.messages.find((m) => m.id === plain.id).content, 'I saw a zebra at the zoo');

    // Carol may not read the private channel: its message is left out, the rest is found.
    const forCarol = (await carol.searchMessages({ query: 'zebra' })).messages.map((m) => m.id);
    assert.deepEqual([...forCarol].sort(), [best.id, plain.id, other.id, carolSays.id].sort());
    await rejects(carol.searchMessages({ query: 'zebra', channelId: secret.id }), 403);
    assert.deepEqual((await alice.searchMessages({ query: 'zebra', channelId: secret.id })).messages.map((m) => m.id), [hidden.id]);

    // Every word is required; filters by author and time.
    assert.deepEqual((await alice.searchMessages({ query: 'zebra zoo' })).messages.map((m) => m.id), [plain.id]);
    assert.deepEqual((await alice.searchMessages({ query: 'zebra', authorId: C })).messages.map((m) => m.id), [carolSays.id]);
    const after = new Date(Date.parse(other.createdAt));
    const late = (await alice.searchMessages({ query: 'zebra', from: after })).messages.map((m) => m.id);
    // (Messages stored within the same millisecond as `other` count as at or after it.)
    const expected = forAlice.messages.filter((m) => m.created_at >= after.getTime()).map((m) => m.id);
    assert.ok(expected.includes(other.id) && expected.includes(carolSays.id) && !expected.includes(best.id));
    assert.deepEqual([...late].sort(), [...expected].sort());
    assert.deepEqual((await alice.searchMessages({ query: 'zebra', to: new Date(0) })).messages, []);

    // Pages of Carol's readable hits: disjoint, in rank order, together the whole result.
    const p1 = await carol.searchMessages({ query: 'zebra', limit: 2 });
    const p2 = await carol.searchMessages({ query: 'zebra', limit: 2, page: 2 });
    const p3 = await carol.searchMessages({ query: 'zebra', limit: 2, offset: 4 });
    assert.equal(p1.messages.length, 2);
    assert.equal(p2.messages.length, 2);
    assert.deepEqual(p3.messages, []);
    assert.deepEqual([...p1.messages, ...p2.messages].map((m) => m.id), forCarol);

    // An edit is searched as edited.
    await alice.updateMessage(plain.id, 'I saw a giraffe at the zoo');
    assert.ok(!(await alice.searchMessages({ query: 'zebra' })).messages.some((m) => m.id === plain.id));
    assert.deepEqual((await alice.searchMessages({ query: 'giraffe' })).messages.map((m) => m.id), [plain.id]);

    // Bad input: 400, never a 500; query syntax is only words.
    await rejects(alice.searchMessages({}), 400);
    await rejects(alice.searchMessages({ query: '  !!! ' }), 400);
    await rejects(alice.searchMessages({ query: 'zebra', channelId: 'nope' }), 400);
    await rejects(alice.searchMessages({ query: 'zebra', limit: -1 }), 400);
    await rejects(alice.searchMessages({ query: 'zebra', from: 'yesterday-ish' }), 400);
    for (const query of ['"zebra', 'zebra OR stripes', 'zebra*', 'NEAR(zebra zoo)', "'; DROP TABLE central_messages; --"]) {
      await alice.searchMessages({ query });
    }
    assert.ok((await alice.searchMessages({ query: 'zebra' })).messages.length > 0);
  }, { env: { ELIZA_SERVER_AUTH_TOKEN: KEY, JWT_SECRET: SECRET } });
});

test('syncMessageServerChannels creates new source ids, renames known ones, and refuses bad input', async () => {
  await withServer(async (srv) => {
    const { messaging } = new ElizaClient({ baseUrl: srv.url });
    const { server } = await messaging.createMessageServer({ name: 'discord guild', sourceType: 'discord' });
    const first = await messaging.syncMessageServerChannels(server.id, {
      channels: [
        { name: 'general', type: 'GROUP', sourceId: 'd-1' },
        { name: 'random', type: 'GROUP', sourceId: 'd-2' },
      ],
    });
    assert.deepEqual(first, { synced: 2 });
    const names = async () => (await messaging.getMessageServerChannels(server.id)).channels
      .map((c) => c.name).sort();
    assert.deepEqual(await names(), ['general', 'random']);

    // The same list again changes nothing; a renamed channel is renamed in place (its members
    // told with channelUpdated), a new source id added.
    assert.deepEqual(await messaging.syncMessageServerChannels(server.id, {
      channels: [{ name: 'general', type: 'GROUP', sourceId: 'd-1' }],
    }), { synced: 0 });
    const random = (await messaging.getMessageServerChannels(server.id)).channels
      .find((c) => c.name === 'random');
    const watcher = await joined(srv, random.id);
    const updated = waitFor(watcher, 'channelUpdated', (d) => d.channelId === random.id);
    assert.deepEqual(await messaging.syncMessageServerChannels(server.id, {
      channels: [
        { name: 'off-topic', type: 'GROUP', sourceId: 'd-2' },
        { name: 'voice', type: 'GROUP', sourceId: 'd-3' },
      ],
    }), { synced: 2 });
    await updated;
    assert.deepEqual(await names(), ['general', 'off-topic', 'voice']);
    assert.equal((await messaging.getChannelDetails(random.id)).name, 'off-topic');

    // Bad input: a clear 400 or 404, and nothing changes.
    await rejects(messaging.syncMessageServerChannels(server.id, { channels: 'nope' }), 400);
    await rejects(messaging.syncMessageServerChannels(server.id, {
      channels: [{ name: '', type: 'GROUP', sourceId: 'd-9' }],
    }), 400);
    await rejects(messaging.syncMessageServerChannels(server.id, { channels: [{ name: 'x', type: 'GROUP' }] }), 400);
    await rejects(messaging.syncMessageServerChannels('not-a-uuid', { channels: [] }), 400);
    await rejects(messaging.syncMessageServerChannels(uuid(), { channels: [] }), 404);
    assert.deepEqual(await names(), ['general', 'off-topic', 'voice']);
  });
});

test('completeMessage (api-client shape) and ElizaOS 1.4\'s {channel_id, server_id} both reach the room as messageComplete', async () => {
  await withServer(async (srv) => {
    const { messaging } = new ElizaClient({ baseUrl: srv.url });
    const ch = await messaging.createChannel({ name: 'completion room' });
    // A post needs someone to answer it, as in ElizaOS.
    await messaging.addAgentToChannel(ch.id, ELIZA);
    const posted = await messaging.postMessage(ch.id, 'a reply to finish');
    const watcher = await joined(srv, ch.id);

    // (Eliza's own run in this channel ends with a messageComplete of its own: wait for ours.)
    const byMessage = waitFor(watcher, 'messageComplete', (d) => d.channelId === ch.id && d.agentId === posted.authorId);
    assert.deepEqual(await messaging.completeMessage({ messageId: posted.id, status: 'completed' }), { success: true });
    const event = await byMessage;
    assert.equal(event.messageServerId ?? event.serverId, DEFAULT_SERVER);

    const byChannel = waitFor(watcher, 'messageComplete', (d) => d.channelId === ch.id && !d.agentId);
    const old = await srv.http('POST', '/api/messaging/complete', { channel_id: ch.id, server_id: DEFAULT_SERVER });
    assert.equal(old.status, 200);
    assert.equal(old.json.message, 'Completion event emitted');
    await byChannel;

    await rejects(messaging.completeMessage({ messageId: uuid(), status: 'completed' }), 404);
    await rejects(messaging.completeMessage({ messageId: posted.id, status: 'done' }), 400);
    await rejects(messaging.completeMessage({ messageId: 'nope', status: 'completed' }), 400);
    const missing = await srv.http('POST', '/api/messaging/complete', { channel_id: ch.id });
    assert.equal(missing.status, 400);
    const unknown = await srv.http('POST', '/api/messaging/complete', { channel_id: uuid(), server_id: DEFAULT_SERVER });
    assert.equal(unknown.status, 404);
  });
});

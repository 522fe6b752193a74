// Strict handshake authentication (ElizaOS 1.6+, compat spec §1.2): started with --strict-auth or
// CONFAB_STRICT_AUTH=true, a connection without a UUID auth.entityId is refused with
// connect_error "Valid entityId required"; a valid one connects as that entity.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import ioV2 from 'socket.io-client-v2';
import { startServer, waitFor, uuid } from './harness.mjs';
import { joinChannel, send } from './socket-util.mjs';

const REFUSED = 'Valid entityId required';

const byFlag = await startServer({ args: ['--strict-auth'] });
const byEnv = await startServer({ env: { CONFAB_STRICT_AUTH: 'true' } });
after(() => Promise.all([byFlag.stop(), byEnv.stop()]));

/** Resolves with the connect_error, or fails if the socket connects instead. */
function refusal(socket) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('neither connect nor connect_error within 5000 ms')), 5000);
    socket.once('connect', () => { clearTimeout(timer); reject(new Error('connected although it should be refused')); });
    socket.once('connect_error', (err) => { clearTimeout(timer); resolve(err); });
  });
}

for (const [how, srv] of [['--strict-auth', byFlag], ['CONFAB_STRICT_AUTH=true', byEnv]]) {
  test(`${how}: no auth, or an entityId that is not a UUID, is refused with "${REFUSED}"`, async () => {
    const cases = [
      ['no auth', {}],
      ['empty auth', { auth: {} }],
      ['non-UUID string', { auth: { entityId: 'user-123' } }],
      ['empty string', { auth: { entityId: '' } }],
      ['a number', { auth: { entityId: 42 } }],
      ['braced UUID', { auth: { entityId: `{${uuid()}}` } }],
      ['UUID without dashes', { auth: { entityId: uuid().replaceAll('-', '') } }],
      ['no auth over polling', { transports: ['polling'] }],
    ];
    for (const [label, opts] of cases) {
      const s = srv.connect(opts);
      const err = await refusal(s);
      assert.equal(err.message, REFUSED, label);
      assert.equal(s.connected, false, label);
    }
  });

  test(`${how}: a UUID auth.entityId connects as that entity and can chat`, async () => {
    for (const entityId of [uuid(), '00000000-0000-0000-0000-000000000000']) {
      const s = srv.connect({ auth: { entityId } });
      const auth = await waitFor(s, 'authenticated');
      assert.equal(auth.entityId, entityId);
      const channelId = uuid();
      await joinChannel(s, { channelId });
      const own = waitFor(s, 'messageBroadcast', (d) => d.text === 'strict hello');
      await send(s, { channelId, message: 'strict hello' });
      assert.equal((await own).senderId, entityId);
    }
  });
}

test('strict mode: a v2 client (no auth object in that protocol) is refused', async () => {
  const s = ioV2(byFlag.url, { forceNew: true, reconnection: false });
  try {
    const err = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no refusal within 5000 ms')), 5000);
      s.once('connect', () => { clearTimeout(timer); reject(new Error('connected without auth')); });
      // socket.io-client v2 reports a namespace refusal as `error` with the data.
      s.once('error', (e) => { clearTimeout(timer); resolve(e); });
    });
    assert.equal(typeof err === 'string' ? err : err.message, REFUSED);
  } finally {
    s.close();
  }
});

test('lenient mode (the default) lets the same handshakes in', async () => {
  const srv = await startServer();
  try {
    for (const opts of [{}, { auth: { entityId: 'user-123' } }, { auth: { entityId: 42 } }]) {
      const s = srv.connect(opts);
      await waitFor(s, 'authenticated');
      assert.equal(s.connected, true, JSON.stringify(opts));
    }
  } finally {
    await srv.stop();
  }
});

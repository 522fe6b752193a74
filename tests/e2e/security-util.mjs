// Helpers for the security-*.test.mjs files: JSON Web Tokens signed with node:crypto (HS256,
// RS256, ES256, EdDSA), bounded waits for refusals and errors.
import { createHmac, sign as cryptoSign, generateKeyPairSync } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './harness.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
export const nowSecs = () => Math.floor(Date.now() / 1000);

/** A signed JWT. `alg` HS256 (with `secret`) or RS256 / ES256 / EdDSA (with `privateKey`). */
export function signJwt(claims, { alg = 'HS256', secret, privateKey, kid } = {}) {
  const header = { alg, typ: 'JWT', ...(kid ? { kid } : {}) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  let sig;
  if (alg === 'HS256') sig = createHmac('sha256', secret).update(input).digest();
  else if (alg === 'RS256') sig = cryptoSign('sha256', Buffer.from(input), privateKey);
  else if (alg === 'ES256') sig = cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'EdDSA') sig = cryptoSign(null, Buffer.from(input), privateKey);
  else throw new Error(`unsupported alg ${alg}`);
  return `${input}.${b64url(sig)}`;
}

/** A key pair: `type` 'rsa' | 'ec' | 'ed25519'; the public key written as PEM and as a JWKS. */
export function keyPair(type, kid = `${type}-key`) {
  const opts = type === 'rsa' ? { modulusLength: 2048 } : type === 'ec' ? { namedCurve: 'P-256' } : {};
  const { publicKey, privateKey } = generateKeyPairSync(type, opts);
  const dir = mkdtempSync(join(tmpdir(), 'confab-keys-'));
  const pemFile = join(dir, 'public.pem');
  writeFileSync(pemFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  return { publicKey, privateKey, pemFile, jwksFile, kid };
}

/** Resolves with the connect_error, or fails if the socket connects instead. */
export function refusal(socket, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`neither connect nor connect_error within ${ms} ms`)), ms);
    socket.once('connect', () => { clearTimeout(timer); reject(new Error('connected although it should be refused')); });
    socket.once('connect_error', (err) => { clearTimeout(timer); resolve(err); });
  });
}

/** Emits `payload` on `event` with an ack and resolves with {reply, error} (the messageError). */
export async function expectRefused(socket, event, payload, match = () => true, ms = 5000) {
  const error = waitFor(socket, 'messageError', match, ms);
  const reply = socket.timeout(ms).emitWithAck(event, payload);
  return { reply: await reply, error: await error };
}

/** Everything a socket receives, with event names, from now on. */
export function recordAll(socket) {
  const seen = [];
  socket.onAny((event, ...args) => seen.push({ event, data: args[0] }));
  return seen;
}

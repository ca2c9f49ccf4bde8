/**
 * The agent's key exchange on node:crypto (agent/keys/x25519.ts) against libsodium, the reference it replaced
 * (a development dependency): the same public keys, shared secrets and crypto_kx session keys on both sides,
 * for random and seeded pairs and for arbitrary 32-byte public keys, and the same refusals of low-order points.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isAgentError } from '../../agent/errors.ts';
import { type KeyPair, x25519 } from '../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';

const reference = await libsodiumReference();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const random32 = () => new Uint8Array(randomBytes(32));

/** What libsodium's crypto_scalarmult gives, or 'refused' where it throws. */
function referenceShared(privateKey: Uint8Array, publicKey: Uint8Array): string {
  try {
    return hex(reference.crypto_scalarmult(privateKey, publicKey));
  } catch {
    return 'refused';
  }
}

/** What ours gives, or 'refused' where it throws KEY_INVALID (any other error fails the test). */
function ourShared(privateKey: Uint8Array, publicKey: Uint8Array): string {
  try {
    return hex(x25519.sharedSecret(privateKey, publicKey));
  } catch (err) {
    if (isAgentError(err) && err.code === 'KEY_INVALID') return 'refused';
    throw err;
  }
}

function assertSessionKeysAgree(client: KeyPair, server: KeyPair, what: string): void {
  const ours = { client: x25519.clientSessionKeys(client, server.publicKey), server: x25519.serverSessionKeys(server, client.publicKey) };
  const theirs = {
    client: reference.crypto_kx_client_session_keys(client.publicKey, client.privateKey, server.publicKey),
    server: reference.crypto_kx_server_session_keys(server.publicKey, server.privateKey, client.publicKey),
  };
  assert.equal(hex(ours.client.rx), hex(theirs.client.sharedRx), `${what}: client rx`);
  assert.equal(hex(ours.client.tx), hex(theirs.client.sharedTx), `${what}: client tx`);
  assert.equal(hex(ours.server.rx), hex(theirs.server.sharedRx), `${what}: server rx`);
  assert.equal(hex(ours.server.tx), hex(theirs.server.sharedTx), `${what}: server tx`);
  assert.equal(hex(ours.client.tx), hex(ours.server.rx), `${what}: client tx == server rx`);
  assert.equal(hex(ours.client.rx), hex(ours.server.tx), `${what}: client rx == server tx`);
}

test('public keys: ours from libsodium private keys, libsodium from ours, and of arbitrary 32-byte scalars', () => {
  for (let i = 0; i < 200; i++) {
    const theirs = reference.crypto_kx_keypair();
    assert.equal(hex(x25519.publicKey(theirs.privateKey)), hex(theirs.publicKey));
    const ours = x25519.keyPair();
    assert.equal(ours.privateKey.length, 32);
    assert.equal(hex(reference.crypto_scalarmult_base(ours.privateKey)), hex(ours.publicKey));
  }
  // Unclamped extremes: clamping is each side's own business and must come out the same.
  for (const scalar of [new Uint8Array(32), new Uint8Array(32).fill(0xff), unhex(`01${'00'.repeat(31)}`), unhex(`${'00'.repeat(31)}80`)]) {
    assert.equal(hex(x25519.publicKey(scalar)), hex(reference.crypto_scalarmult_base(scalar)), hex(scalar));
  }
});

test('crypto_kx session keys, both sides, agree with libsodium for random and seeded pairs', () => {
  for (let i = 0; i < 200; i++) assertSessionKeysAgree(reference.crypto_kx_keypair(), x25519.keyPair(), `random pair ${i}`);
  for (let i = 0; i < 100; i++) {
    const seed = (first: number) => Uint8Array.from({ length: 32 }, (_, j) => (first + j * 7 + i) & 0xff);
    assertSessionKeysAgree(reference.crypto_kx_seed_keypair(seed(0)), reference.crypto_kx_seed_keypair(seed(0x80)), `seeded pair ${i}`);
  }
});

test('scalarmult agrees with libsodium on arbitrary 32-byte public keys (top bit set, twist points, non-canonical)', () => {
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) keys.push(random32());
  // u at and above p = 2^255 - 19, encoded without reduction, with and without the top bit that X25519 masks.
  for (let low = 0xe0; low <= 0xff; low++) {
    const u = unhex(`${low.toString(16)}${'ff'.repeat(30)}7f`);
    keys.push(
      u,
      Uint8Array.from(u, (b, j) => (j === 31 ? b | 0x80 : b)),
    );
  }
  for (const publicKey of keys) {
    const privateKey = random32();
    assert.equal(ourShared(privateKey, publicKey), referenceShared(privateKey, publicKey), `public key ${hex(publicKey)}`);
  }
});

// The points of small order, as libsodium lists them (has_small_order in its X25519 code): 0, 1, the two of
// order 8, and p - 1, p, p + 1 unreduced; each also with the top bit set, which X25519 ignores.
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].flatMap((h) => [h, `${h.slice(0, 62)}${(Number.parseInt(h.slice(62), 16) | 0x80).toString(16)}`]);

test('low-order public keys are refused where libsodium refuses them: scalarmult and both sides of crypto_kx', () => {
  const own = x25519.keyPair();
  for (const h of LOW_ORDER) {
    const point = unhex(h);
    assert.equal(referenceShared(own.privateKey, point), 'refused', `libsodium accepts ${h}?`);
    assert.equal(ourShared(own.privateKey, point), 'refused', h);
    assert.throws(() => reference.crypto_kx_client_session_keys(own.publicKey, own.privateKey, point), `libsodium accepts ${h} in crypto_kx?`);
    for (const side of [() => x25519.clientSessionKeys(own, point), () => x25519.serverSessionKeys(own, point)]) {
      assert.throws(side, (err: unknown) => isAgentError(err) && err.code === 'KEY_INVALID' && /low-order/.test(err.message), h);
    }
  }
});

test('keys of the wrong length are refused with KEY_INVALID, not handed to OpenSSL', () => {
  const own = x25519.keyPair();
  for (const bad of [new Uint8Array(31), new Uint8Array(33)]) {
    assert.throws(
      () => x25519.publicKey(bad),
      (err: unknown) => isAgentError(err) && err.code === 'KEY_INVALID',
    );
    assert.throws(
      () => x25519.sharedSecret(own.privateKey, bad),
      (err: unknown) => isAgentError(err) && err.code === 'KEY_INVALID',
    );
    assert.throws(
      () => x25519.clientSessionKeys({ ...own, publicKey: bad }, own.publicKey),
      (err: unknown) => isAgentError(err) && err.code === 'KEY_INVALID',
    );
  }
});

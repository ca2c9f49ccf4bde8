/**
 * X25519 key exchange on node:crypto (OpenSSL, which Node carries anyway), byte for byte what libsodium's
 * crypto_kx_* and crypto_scalarmult* compute. Why not libsodium: for a handful of key exchanges made at start,
 * its WebAssembly build cost every start ≈130 ms of CPU and the running agent ≈1.7 MiB of anonymous memory
 * (3.6 MiB of RSS) and 0.45 MB of bundle (docs/benchmarks.md, "Key exchange on node:crypto"). test/keys/x25519-reference.test.ts checks every operation here
 * against libsodium (a development dependency only), and test/vectors/ against the keys libsodium derived.
 *
 * crypto_kx, as libsodium defines it (x25519blake2b): q = X25519(own private, peer public), refused when all
 * zeros; then BLAKE2b-512(q ‖ client public ‖ server public) = 64 bytes. The client receives with the first 32
 * and sends with the last 32; the server the other way round, so client tx == server rx.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, type KeyObject, randomBytes } from 'node:crypto';
import { AgentError } from '../errors.ts';

export const X25519_KEY_BYTES = 32;

export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** One direction each: `rx` opens what the peer sealed, `tx` seals what the peer opens. */
export interface SessionKeys {
  rx: Uint8Array;
  tx: Uint8Array;
}

/** What the agent and the receiver need of X25519; passed where the key helpers need it (keys.ts). */
export interface KeyExchange {
  /** A new pair: 32 random bytes as the private key (as crypto_kx_keypair; clamping happens in each use). */
  keyPair(): KeyPair;
  /** The public key of a private key (crypto_scalarmult_base). */
  publicKey(privateKey: Uint8Array): Uint8Array;
  /** X25519(private, public) (crypto_scalarmult); KEY_INVALID when the result is all zeros (a low-order point). */
  sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** crypto_kx_client_session_keys: the device's side. */
  clientSessionKeys(client: KeyPair, serverPublic: Uint8Array): SessionKeys;
  /** crypto_kx_server_session_keys: the centre's side. */
  serverSessionKeys(server: KeyPair, clientPublic: Uint8Array): SessionKeys;
}

// DER wrappings of a raw X25519 key (RFC 8410): the fixed prefix for OID 1.3.101.110, then the 32 key bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

function checkLength(bytes: Uint8Array, what: string): void {
  if (bytes.length !== X25519_KEY_BYTES) throw new AgentError('KEY_INVALID', `an X25519 ${what} key is ${X25519_KEY_BYTES} bytes, not ${bytes.length}`);
}

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  checkLength(privateKey, 'private');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  checkLength(publicKey, 'public');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
}

function allZeros(bytes: Uint8Array): boolean {
  let any = 0;
  for (const b of bytes) any |= b;
  return any === 0;
}

function lowOrder(cause?: unknown): AgentError {
  return new AgentError(
    'KEY_INVALID',
    'the X25519 shared secret is all zeros: the public key is a low-order point',
    cause === undefined ? undefined : { cause },
  );
}

function publicKey(privateKey: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}

function sharedSecret(privateKey: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  let q: Buffer;
  try {
    q = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(peerPublic) });
  } catch (cause) {
    // OpenSSL refuses an all-zero result itself (RFC 7748 section 6.1), as libsodium does; anything else is ours to see.
    if ((cause as { code?: unknown }).code === 'ERR_OSSL_FAILED_DURING_DERIVATION') throw lowOrder(cause);
    throw cause;
  }
  if (allZeros(q)) throw lowOrder();
  return new Uint8Array(q);
}

/** BLAKE2b-512(q ‖ client public ‖ server public), split: first half, second half. */
function sessionHalves(q: Uint8Array, clientPublic: Uint8Array, serverPublic: Uint8Array): [Uint8Array, Uint8Array] {
  const keys = createHash('blake2b512').update(q).update(clientPublic).update(serverPublic).digest();
  q.fill(0);
  const first = new Uint8Array(keys.subarray(0, 32));
  const second = new Uint8Array(keys.subarray(32, 64));
  keys.fill(0);
  return [first, second];
}

export const x25519: KeyExchange = {
  keyPair() {
    const privateKey = new Uint8Array(randomBytes(X25519_KEY_BYTES));
    return { privateKey, publicKey: publicKey(privateKey) };
  },
  publicKey,
  sharedSecret,
  clientSessionKeys(client, serverPublic) {
    checkLength(client.publicKey, 'public');
    const [rx, tx] = sessionHalves(sharedSecret(client.privateKey, serverPublic), client.publicKey, serverPublic);
    return { rx, tx };
  },
  serverSessionKeys(server, clientPublic) {
    checkLength(server.publicKey, 'public');
    const [tx, rx] = sessionHalves(sharedSecret(server.privateKey, clientPublic), clientPublic, server.publicKey);
    return { rx, tx };
  },
};

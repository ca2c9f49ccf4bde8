/**
 * Ed25519 on node:crypto (native code, so private keys never sit in a WebAssembly heap), with keys as raw
 * 32-byte values: base64url without padding in files, configs and documents.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
const B64URL_KEY = /^[A-Za-z0-9_-]{43}$/;
// The PKCS#8 DER prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows it.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The base64url text of a raw 32-byte key, or undefined if `text` is not one. */
export function decodeKey(text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || !B64URL_KEY.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.length === KEY_BYTES && bytes.toString('base64url') === text ? bytes : undefined;
}

export function encodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** Key id: the first 16 hex characters of SHA-256 of the raw public key. */
export function keyIdOf(publicKey: string | Uint8Array): string {
  const raw = typeof publicKey === 'string' ? decodeKey(publicKey) : publicKey;
  if (!raw) throw new TypeError('not a base64url Ed25519 public key');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export interface Ed25519Pair {
  /** base64url of the raw public key */
  public: string;
  /** base64url of the raw 32-byte private seed */
  private: string;
}

export function generatePair(): Ed25519Pair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { public: jwk.x!, private: jwk.d! };
}

/** The pair of a 32-byte seed (test vectors, and checking that a key file's halves belong together). */
export function pairFromSeed(seed: Uint8Array): Ed25519Pair {
  const key = privateKeyObject(seed);
  return { public: createPublicKey(key).export({ format: 'jwk' }).x!, private: encodeKey(seed) };
}

function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function publicKeyObject(publicKey: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
}

export function signBytes(pair: Ed25519Pair, data: Uint8Array): Buffer {
  return sign(null, data, privateKeyObject(Buffer.from(pair.private, 'base64url')));
}

/** False for a wrong signature, a signature of the wrong length, or a key that is no curve point. */
export function verifyBytes(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}

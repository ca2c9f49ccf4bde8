import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { AgentError } from '../errors.ts';
import { KEY_ID_BYTES } from '../envelope/header.ts';
import { ackMacKey } from '../envelope/ack.ts';
import { makeDirs } from '../util/make-dirs.ts';
import type { KeyExchange, KeyPair } from './x25519.ts';

export type { KeyExchange, KeyPair } from './x25519.ts';

/** Key id: the first 8 bytes of SHA-256 of the X25519 public key. Lets keys rotate with overlap. */
export function keyId(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest().subarray(0, KEY_ID_BYTES));
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

// Key files hold one line: "<kind> <base64 of 32 bytes>", so a public key pasted where a private one belongs
// is caught instead of failing later as an authentication error.
const PRIVATE = 'x25519-private';
const PUBLIC = 'x25519-public';

function parseKeyFile(path: string, kind: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AgentError('KEY_UNREADABLE', `cannot read key file ${path}`, { cause });
  }
  const [label, b64, extra] = text.trim().split(/\s+/);
  if (label !== kind || !b64 || extra !== undefined)
    throw new AgentError('KEY_INVALID', `${path} is not an ${kind} key file (expected one line "${kind} <base64>")`);
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== b64) throw new AgentError('KEY_INVALID', `${path}: key must be 32 bytes of base64`);
  return new Uint8Array(bytes);
}

/** Loads a private key, refusing a file that anyone but its owner can read or write. */
export function loadPrivateKey(kx: KeyExchange, path: string): KeyPair {
  // Content first: a public key file (written 0644) given here must say so, not ask for a chmod that would
  // only lead to that error next.
  const privateKey = parseKeyFile(path, PRIVATE);
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (cause) {
    throw new AgentError('KEY_UNREADABLE', `cannot read key file ${path}`, { cause });
  }
  if ((mode & 0o077) !== 0) {
    throw new AgentError('KEY_PERMISSIONS', `private key ${path} is accessible by others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  }
  return { privateKey, publicKey: kx.publicKey(privateKey) };
}

export function loadPublicKey(path: string): Uint8Array {
  return parseKeyFile(path, PUBLIC);
}

// Any scalar will do: a result of all zeros is refused, and every low-order point gives it after clamping.
const PROBE_SCALAR = new Uint8Array(32).fill(9);

/**
 * A public key file whose key can take part in a key exchange: a low-order point (all zeros, say) would make
 * every session key a constant anyone can compute; the key exchange refuses it (x25519.ts) and this says which file.
 */
export function loadUsablePublicKey(kx: KeyExchange, path: string): Uint8Array {
  const key = loadPublicKey(path);
  try {
    kx.sharedSecret(PROBE_SCALAR, key);
  } catch (cause) {
    throw new AgentError('KEY_INVALID', `${path}: not a usable X25519 public key (a low-order point, such as all zeros)`, { cause });
  }
  return key;
}

/** Writes `<base>.key` (0600) and `<base>.pub`; refuses to overwrite an existing private key. */
export function writeKeyPair(kx: KeyExchange, basePath: string, pair: KeyPair = kx.keyPair()): { privatePath: string; publicPath: string } {
  const privatePath = `${basePath}.key`;
  const publicPath = `${basePath}.pub`;
  if (existsSync(privatePath)) throw new AgentError('USAGE', `${privatePath} exists already; refusing to overwrite a private key`);
  makeDirs(dirname(basePath));
  writeFileSync(privatePath, `${PRIVATE} ${Buffer.from(pair.privateKey).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(privatePath, 0o600); // the umask may have narrowed it further, never widened it; make it exact
  writeFileSync(publicPath, `${PUBLIC} ${Buffer.from(pair.publicKey).toString('base64')}\n`, { mode: 0o644 });
  return { privatePath, publicPath };
}

/** Session keys per crypto_kx: the device is the client, the centre the server. Device tx == centre rx. */
export function deviceSendKey(kx: KeyExchange, device: KeyPair, centrePublic: Uint8Array): Uint8Array {
  return kx.clientSessionKeys(device, centrePublic).tx;
}

export function centreReceiveKey(kx: KeyExchange, centre: KeyPair, devicePublic: Uint8Array): Uint8Array {
  return kx.serverSessionKeys(centre, devicePublic).rx;
}

/**
 * The end-to-end acknowledgement key (agent/envelope/ack.ts): from the same key exchange as the envelopes,
 * in the other direction (centre tx == device rx), then through a label of its own.
 */
export function deviceAckKey(kx: KeyExchange, device: KeyPair, centrePublic: Uint8Array): Uint8Array {
  return ackMacKey(kx.clientSessionKeys(device, centrePublic).rx);
}

export function centreAckKey(kx: KeyExchange, centre: KeyPair, devicePublic: Uint8Array): Uint8Array {
  return ackMacKey(kx.serverSessionKeys(centre, devicePublic).tx);
}

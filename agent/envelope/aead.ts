/**
 * XChaCha20-Poly1305 (IETF, as libsodium's crypto_aead_xchacha20poly1305_ietf_*) on node:crypto.
 *
 * Why not libsodium's: its WebAssembly heap grows to hold the largest message it ever saw and never shrinks,
 * so one forged 255 MB envelope left the receiver at 1.2 GB resident. node:crypto works on ordinary buffers
 * that are freed with the message. The construction (draft-irtf-cfrg-xchacha): subkey = HChaCha20(key,
 * nonce[0..16]); then ChaCha20-Poly1305 (RFC 8439) under the subkey with nonce 0x00000000 ‖ nonce[16..24].
 * test/vectors/ proves byte compatibility with what libsodium sealed.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const KEY_BYTES = 32;
export const XNONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

const rotl = (v: number, n: number): number => (v << n) | (v >>> (32 - n));

/** HChaCha20: 20 ChaCha rounds over (constants, key, 16 bytes of nonce), words 0–3 and 12–15 out. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const k = new DataView(key.buffer, key.byteOffset, KEY_BYTES);
  const n = new DataView(nonce16.buffer, nonce16.byteOffset, 16);
  const s = new Uint32Array(16);
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) s[4 + i] = k.getUint32(i * 4, true);
  for (let i = 0; i < 4; i++) s[12 + i] = n.getUint32(i * 4, true);
  const qr = (a: number, b: number, c: number, d: number) => {
    s[a] = s[a]! + s[b]!;
    s[d] = rotl(s[d]! ^ s[a]!, 16);
    s[c] = s[c]! + s[d]!;
    s[b] = rotl(s[b]! ^ s[c]!, 12);
    s[a] = s[a]! + s[b]!;
    s[d] = rotl(s[d]! ^ s[a]!, 8);
    s[c] = s[c]! + s[d]!;
    s[b] = rotl(s[b]! ^ s[c]!, 7);
  };
  for (let round = 0; round < 10; round++) {
    qr(0, 4, 8, 12);
    qr(1, 5, 9, 13);
    qr(2, 6, 10, 14);
    qr(3, 7, 11, 15);
    qr(0, 5, 10, 15);
    qr(1, 6, 11, 12);
    qr(2, 7, 8, 13);
    qr(3, 4, 9, 14);
  }
  const out = new Uint8Array(32);
  const o = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) {
    o.setUint32(i * 4, s[i]!, true);
    o.setUint32(16 + i * 4, s[12 + i]!, true);
  }
  return out;
}

function subkeyAndNonce(key: Uint8Array, nonce: Uint8Array): { subkey: Uint8Array; iv: Uint8Array } {
  if (key.length !== KEY_BYTES) throw new RangeError(`key must be ${KEY_BYTES} bytes`);
  if (nonce.length !== XNONCE_BYTES) throw new RangeError(`nonce must be ${XNONCE_BYTES} bytes`);
  const iv = new Uint8Array(12);
  iv.set(nonce.subarray(16, 24), 4);
  return { subkey: hchacha20(key, nonce.subarray(0, 16)), iv };
}

/** prefix ‖ ciphertext ‖ tag, in one allocation (the envelope passes its header as prefix and associated data). */
export function xchachaSeal(plain: Uint8Array, aad: Uint8Array, nonce: Uint8Array, key: Uint8Array, prefix: Uint8Array = new Uint8Array(0)): Uint8Array {
  const { subkey, iv } = subkeyAndNonce(key, nonce);
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: AEAD_TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plain.length });
  const head = cipher.update(plain);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(prefix.length + head.length + tail.length + AEAD_TAG_BYTES);
  out.set(prefix, 0);
  out.set(head, prefix.length);
  out.set(tail, prefix.length + head.length);
  out.set(tag, prefix.length + head.length + tail.length);
  return out;
}

/** The plaintext, or undefined when the tag does not verify (nothing of an unauthenticated body escapes). */
export function xchachaOpen(sealed: Uint8Array, aad: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  if (sealed.length < AEAD_TAG_BYTES) return undefined;
  const { subkey, iv } = subkeyAndNonce(key, nonce);
  const cipherLength = sealed.length - AEAD_TAG_BYTES;
  const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: AEAD_TAG_BYTES });
  decipher.setAAD(aad, { plaintextLength: cipherLength });
  decipher.setAuthTag(sealed.subarray(cipherLength));
  const head = decipher.update(sealed.subarray(0, cipherLength));
  try {
    const tail = decipher.final();
    return tail.length === 0 ? new Uint8Array(head.buffer, head.byteOffset, head.length) : new Uint8Array(Buffer.concat([head, tail]));
  } catch {
    return undefined;
  }
}

import type sodiumModule from 'libsodium-wrappers';
import { AgentError } from '../errors.ts';
import { malformed } from './malformed.ts';
import { decodeHeader, encodeHeader, NONCE_BYTES, type EnvelopeHeader } from './header.ts';

type Sodium = typeof sodiumModule;
export const TAG_BYTES = 16;

/** header ‖ XChaCha20-Poly1305(body, associated data = header). `body` is the compressed CBOR array. */
export function seal(sodium: Sodium, header: EnvelopeHeader, body: Uint8Array, key: Uint8Array): Uint8Array {
  if (header.nonce.length !== NONCE_BYTES) throw new AgentError('ENVELOPE_MALFORMED', 'nonce must be 24 bytes');
  const head = encodeHeader(header);
  const cipher = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(body, head, null, header.nonce, key);
  const out = new Uint8Array(head.length + cipher.length);
  out.set(head, 0);
  out.set(cipher, head.length);
  return out;
}

/**
 * Authenticates and decrypts. `keyFor` maps the header to the session key (device and centre key ids), or
 * throws ENVELOPE_UNKNOWN_KEY. Any change to header or ciphertext fails here with ENVELOPE_AUTH_FAILED.
 */
export function open(sodium: Sodium, bytes: Uint8Array, keyFor: (header: EnvelopeHeader) => Uint8Array): { header: EnvelopeHeader; body: Uint8Array } {
  const { header, length } = decodeHeader(bytes);
  if (bytes.length - length < TAG_BYTES) throw malformed('truncated-tag', 'envelope truncated: no room for the authentication tag');
  const key = keyFor(header);
  let body: Uint8Array;
  try {
    body = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, bytes.subarray(length), bytes.subarray(0, length), header.nonce, key);
  } catch (cause) {
    throw new AgentError(
      'ENVELOPE_AUTH_FAILED',
      `batch ${header.device}/${header.stream}#${header.seq} failed authentication (tampered, truncated or sealed for another key)`,
      { cause },
    );
  }
  return { header, body };
}

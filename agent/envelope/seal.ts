import { AgentError } from '../errors.ts';
import { AEAD_TAG_BYTES, xchachaOpen, xchachaSeal } from './aead.ts';
import { malformed } from './malformed.ts';
import { decodeHeader, encodeHeader, NONCE_BYTES, type EnvelopeHeader } from './header.ts';

export const TAG_BYTES = AEAD_TAG_BYTES;

/** header ‖ XChaCha20-Poly1305(body, associated data = header). `body` is the compressed CBOR array. */
export function seal(header: EnvelopeHeader, body: Uint8Array, key: Uint8Array): Uint8Array {
  if (header.nonce.length !== NONCE_BYTES) throw new AgentError('ENVELOPE_MALFORMED', 'nonce must be 24 bytes');
  const head = encodeHeader(header);
  return xchachaSeal(body, head, header.nonce, key, head);
}

/**
 * Authenticates and decrypts. `keyFor` maps the header to the session key (device and centre key ids), or
 * throws ENVELOPE_UNKNOWN_KEY. Any change to header or ciphertext fails here with ENVELOPE_AUTH_FAILED.
 */
export function open(bytes: Uint8Array, keyFor: (header: EnvelopeHeader) => Uint8Array): { header: EnvelopeHeader; body: Uint8Array } {
  const { header, length } = decodeHeader(bytes);
  if (bytes.length - length < TAG_BYTES) throw malformed('truncated-tag', 'envelope truncated: no room for the authentication tag');
  const key = keyFor(header);
  const body = xchachaOpen(bytes.subarray(length), bytes.subarray(0, length), header.nonce, key);
  if (body === undefined) {
    throw new AgentError(
      'ENVELOPE_AUTH_FAILED',
      `batch ${header.device}/${header.stream}#${header.seq} failed authentication (tampered, truncated or sealed for another key)`,
    );
  }
  return { header, body };
}

import type { DocumentOf } from './documents.ts';
import { type DocumentKind, type Envelope, pae, payloadTypeOf } from './dsse.ts';
import { type Ed25519Pair, keyIdOf, signBytes } from './ed25519.ts';

/**
 * A DSSE envelope of `document` signed by every key in `signers` (root keys for root, operator-cert and
 * revocations; one operator key for config and command, whose certificate is attached).
 */
export function signEnvelope<K extends DocumentKind>(kind: K, document: DocumentOf[K], signers: readonly Ed25519Pair[], certificate?: Envelope): Envelope {
  if (document.kind !== kind) throw new TypeError(`a ${document.kind} document cannot go in a ${kind} envelope`);
  if (signers.length === 0) throw new TypeError('an envelope needs at least one signer');
  const payloadType = payloadTypeOf(kind);
  const payload = Buffer.from(JSON.stringify(document), 'utf8');
  const message = pae(payloadType, payload);
  return {
    payloadType,
    payload: payload.toString('base64'),
    signatures: signers.map((signer) => ({ keyid: keyIdOf(signer.public), sig: signBytes(signer, message).toString('base64') })),
    ...(certificate ? { certificate } : {}),
  };
}

/** RFC 3339 UTC, to the second: how documents write times. */
export function rfc3339(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

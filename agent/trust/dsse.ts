/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse): the payload's exact bytes are signed through
 * PAE, so no canonical JSON is needed. This file knows the envelope's shape, not what the payload means.
 */
import { Refusal } from './refusal.ts';

export const DOCUMENT_KINDS = ['root', 'operator-cert', 'revocations', 'config', 'command', 'update-manifest', 'update-timestamp'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

const PAYLOAD_TYPE = /^application\/vnd\.edge-agent\.([a-z-]+)\+json$/;
/** Default cap on one envelope, certificate included, checked before parsing (fleet.max_message_bytes). */
export const DEFAULT_MAX_ENVELOPE_BYTES = 256 * 1024;
/** More signatures than any real root needs; bounds the verification work one message can ask for. */
export const MAX_SIGNATURES = 32;

export interface Signature {
  keyid: string;
  sig: string;
}

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: Signature[];
  certificate?: Envelope;
}

/** An envelope whose fields are checked and whose payload and signatures are decoded. */
export interface ParsedEnvelope {
  kind: DocumentKind;
  payloadType: string;
  payload: Buffer;
  signatures: { keyid: string; sig: Buffer }[];
  certificate?: ParsedEnvelope;
  /** The envelope as received (re-signing or storing it keeps every byte). */
  raw: Envelope;
}

export function payloadTypeOf(kind: DocumentKind): string {
  return `application/vnd.edge-agent.${kind}+json`;
}

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in decimal bytes. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/**
 * Turns what arrived (the message's bytes or text, or JSON already parsed) into a checked envelope. The size
 * is measured before anything is parsed; an object is measured as its JSON text.
 */
export function parseEnvelope(input: unknown, maxBytes = DEFAULT_MAX_ENVELOPE_BYTES): ParsedEnvelope {
  return checkEnvelope(parseMessage(input, maxBytes), 'envelope', true);
}

/** The JSON value of a message, its size checked first (`malformed` if too large or not JSON). */
export function parseMessage(input: unknown, maxBytes = DEFAULT_MAX_ENVELOPE_BYTES): unknown {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
    if (size > maxBytes) throw new Refusal('malformed', `message of ${size} bytes is over the ${maxBytes}-byte limit`);
    try {
      return JSON.parse(typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.length).toString('utf8'));
    } catch (cause) {
      throw new Refusal('malformed', 'not JSON', { cause });
    }
  }
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(input) ?? '');
  } catch (cause) {
    throw new Refusal('malformed', 'not JSON', { cause });
  }
  if (size > maxBytes) throw new Refusal('malformed', `message of ${size} bytes is over the ${maxBytes}-byte limit`);
  return input;
}

/** Checks one envelope's fields and decodes its payload and signatures; `where` names it in refusals. */
export function checkEnvelope(value: unknown, where: string, mayCarryCertificate: boolean): ParsedEnvelope {
  if (!isObject(value)) throw new Refusal('malformed', `${where} is not a JSON object`);
  const { payloadType, payload, signatures, certificate } = value;
  if (typeof payloadType !== 'string') throw new Refusal('malformed', `${where}.payloadType is not a string`);
  if (typeof payload !== 'string') throw new Refusal('malformed', `${where}.payload is not a string`);
  if (!Array.isArray(signatures) || signatures.length === 0) throw new Refusal('malformed', `${where}.signatures is not a non-empty array`);
  if (signatures.length > MAX_SIGNATURES) throw new Refusal('malformed', `${where} has ${signatures.length} signatures, more than ${MAX_SIGNATURES}`);
  const match = PAYLOAD_TYPE.exec(payloadType);
  const kind = match?.[1];
  if (!kind || !(DOCUMENT_KINDS as readonly string[]).includes(kind))
    throw new Refusal('unsupported', `${where}.payloadType ${JSON.stringify(payloadType.slice(0, 80))} is no edge-agent document type`);
  const decoded = signatures.map((entry: unknown, i) => {
    if (!isObject(entry) || typeof entry.keyid !== 'string' || typeof entry.sig !== 'string')
      throw new Refusal('malformed', `${where}.signatures[${i}] needs string keyid and sig`);
    return { keyid: entry.keyid, sig: decodeBase64(entry.sig, `${where}.signatures[${i}].sig`) };
  });
  let parsedCertificate: ParsedEnvelope | undefined;
  if (certificate !== undefined) {
    if (!mayCarryCertificate) throw new Refusal('malformed', `${where}.certificate: a certificate cannot carry a certificate`);
    parsedCertificate = checkEnvelope(certificate, `${where}.certificate`, false);
  }
  return {
    kind: kind as DocumentKind,
    payloadType,
    payload: decodeBase64(payload, `${where}.payload`),
    signatures: decoded,
    ...(parsedCertificate ? { certificate: parsedCertificate } : {}),
    raw: value as unknown as Envelope,
  };
}

/** Standard or URL-safe base64 (DSSE allows both), padded or not; anything else is refused, not skipped. */
function decodeBase64(text: string, where: string): Buffer {
  const standard = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(standard) || standard.length % 4 === 1) throw new Refusal('malformed', `${where} is not base64`);
  const bytes = Buffer.from(standard, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== standard) throw new Refusal('malformed', `${where} is not canonical base64`);
  return bytes;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

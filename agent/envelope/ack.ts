/**
 * The centre's end-to-end acknowledgement (docs/wire-format.md, "Acknowledgement"): "the batches of
 * (device, stream, epoch) with these sequence ranges are in the centre's durable output". The gateway deletes
 * rows on it, so it is authenticated: an HMAC-SHA256 tag (cut to 16 bytes) under a key derived, with its own
 * label, from the same X25519 key agreement the envelopes use, in the centre → device direction. Whoever can
 * merely publish on the broker cannot make one.
 *
 * No nonce or counter is needed against replay: an acknowledgement states a fact about batches that never
 * change (a queue never reuses a sequence within its epoch), so replaying one to its own device acknowledges
 * again what was already acknowledged; replayed to another device it fails the tag (another key) and names
 * another device.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AgentError } from '../errors.ts';
import { EPOCH_BYTES, KEY_ID_BYTES } from './header.ts';

export const ACK_MAGIC = [0x45, 0x4b] as const; // "EK"
export const ACK_VERSION = 1;
export const ACK_TAG_BYTES = 16;
/** Ranges in one acknowledgement at most: 16 KiB of ranges, so one message stays small whatever happened. */
export const ACK_MAX_RANGES = 1024;
/** The label that separates the acknowledgement key from every other use of the session key. */
const ACK_KEY_LABEL = 'edge-agent ack key v1';

/** An inclusive range of batch sequences. */
export type SeqRange = readonly [first: number, last: number];

export interface BatchAck {
  device: string;
  stream: string;
  /** The gateway queue's epoch (8 bytes): sequences are unique within it. */
  epoch: Uint8Array;
  deviceKeyId: Uint8Array;
  centreKeyId: Uint8Array;
  /** Ascending, non-overlapping, each first ≤ last. */
  ranges: SeqRange[];
}

/** The acknowledgement MAC key: HMAC-SHA256(key = the centre → device session key, message = the label). */
export function ackMacKey(sessionKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', sessionKey).update(ACK_KEY_LABEL).digest());
}

function tag(macKey: Uint8Array, signed: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', macKey).update(signed).digest().subarray(0, ACK_TAG_BYTES));
}

function malformedAck(message: string): AgentError {
  return new AgentError('ACK_MALFORMED', `acknowledgement: ${message}`);
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeAck(ack: BatchAck, macKey: Uint8Array): Uint8Array {
  const device = utf8.encode(ack.device);
  const stream = utf8.encode(ack.stream);
  if (device.length < 1 || device.length > 255 || stream.length < 1 || stream.length > 255) throw malformedAck('device and stream must be 1–255 bytes');
  if (ack.epoch.length !== EPOCH_BYTES || ack.deviceKeyId.length !== KEY_ID_BYTES || ack.centreKeyId.length !== KEY_ID_BYTES) {
    throw malformedAck('epoch and key ids must be 8 bytes');
  }
  if (ack.ranges.length < 1 || ack.ranges.length > ACK_MAX_RANGES) throw malformedAck(`1–${ACK_MAX_RANGES} ranges`);
  const signedLength = 3 + 1 + device.length + 1 + stream.length + EPOCH_BYTES + 2 * KEY_ID_BYTES + 2 + 16 * ack.ranges.length;
  const out = new Uint8Array(signedLength + ACK_TAG_BYTES);
  const view = new DataView(out.buffer);
  let o = 0;
  out[o++] = ACK_MAGIC[0];
  out[o++] = ACK_MAGIC[1];
  out[o++] = ACK_VERSION;
  out[o++] = device.length;
  out.set(device, o);
  o += device.length;
  out[o++] = stream.length;
  out.set(stream, o);
  o += stream.length;
  out.set(ack.epoch, o);
  o += EPOCH_BYTES;
  out.set(ack.deviceKeyId, o);
  o += KEY_ID_BYTES;
  out.set(ack.centreKeyId, o);
  o += KEY_ID_BYTES;
  view.setUint16(o, ack.ranges.length);
  o += 2;
  let previous = -1;
  for (const [first, last] of ack.ranges) {
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first <= previous || last < first || first < 0) {
      throw malformedAck('ranges must be ascending, non-overlapping, within 0 … 2^53 − 1');
    }
    view.setBigUint64(o, BigInt(first));
    view.setBigUint64(o + 8, BigInt(last));
    o += 16;
    previous = last;
  }
  out.set(tag(macKey, out.subarray(0, signedLength)), signedLength);
  return out;
}

/** Parses without authenticating: the key ids and device say which key checks the tag (`verifyAck`). */
export function decodeAck(bytes: Uint8Array): { ack: BatchAck; signedLength: number } {
  const need = (o: number, n: number) => {
    if (o + n > bytes.length) throw malformedAck(`truncated at byte ${o} (have ${bytes.length})`);
  };
  need(0, 3);
  if (bytes[0] !== ACK_MAGIC[0] || bytes[1] !== ACK_MAGIC[1]) throw malformedAck('bad magic (not an edge-agent acknowledgement)');
  if (bytes[2] !== ACK_VERSION) throw new AgentError('ACK_MALFORMED', `acknowledgement version ${bytes[2]} is not supported (this build reads ${ACK_VERSION})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 3;
  const name = (what: string): string => {
    need(o, 1);
    const len = bytes[o++]!;
    if (len === 0) throw malformedAck(`empty ${what}`);
    need(o, len);
    try {
      const text = utf8Decoder.decode(bytes.subarray(o, o + len));
      o += len;
      return text;
    } catch {
      throw malformedAck(`${what} is not UTF-8`);
    }
  };
  const device = name('device id');
  const stream = name('stream');
  need(o, EPOCH_BYTES + 2 * KEY_ID_BYTES + 2);
  const epoch = bytes.slice(o, o + EPOCH_BYTES);
  o += EPOCH_BYTES;
  const deviceKeyId = bytes.slice(o, o + KEY_ID_BYTES);
  o += KEY_ID_BYTES;
  const centreKeyId = bytes.slice(o, o + KEY_ID_BYTES);
  o += KEY_ID_BYTES;
  const count = view.getUint16(o);
  o += 2;
  if (count < 1 || count > ACK_MAX_RANGES) throw malformedAck(`${count} ranges (1–${ACK_MAX_RANGES})`);
  need(o, 16 * count + ACK_TAG_BYTES);
  if (bytes.length !== o + 16 * count + ACK_TAG_BYTES) throw malformedAck(`${bytes.length - (o + 16 * count + ACK_TAG_BYTES)} bytes after the tag`);
  const ranges: SeqRange[] = [];
  let previous = -1n;
  for (let i = 0; i < count; i++, o += 16) {
    const first = view.getBigUint64(o);
    const last = view.getBigUint64(o + 8);
    if (last > BigInt(Number.MAX_SAFE_INTEGER) || first <= previous || last < first) throw malformedAck(`range ${i} is out of order or above 2^53 − 1`);
    ranges.push([Number(first), Number(last)]);
    previous = last;
  }
  return { ack: { device, stream, epoch, deviceKeyId, centreKeyId, ranges }, signedLength: o };
}

/**
 * Parses and authenticates. `macKeyFor` returns the acknowledgement key for the ack's device and key ids, or
 * undefined (ACK_UNKNOWN_KEY). A tag that does not verify is ACK_AUTH_FAILED.
 */
export function verifyAck(bytes: Uint8Array, macKeyFor: (ack: BatchAck) => Uint8Array | undefined): BatchAck {
  const { ack, signedLength } = decodeAck(bytes);
  const macKey = macKeyFor(ack);
  if (!macKey) throw new AgentError('ACK_UNKNOWN_KEY', `acknowledgement for device ${JSON.stringify(ack.device)} under keys this gateway does not hold`);
  const expected = tag(macKey, bytes.subarray(0, signedLength));
  if (!timingSafeEqual(expected, bytes.subarray(signedLength))) {
    throw new AgentError('ACK_AUTH_FAILED', `acknowledgement for ${ack.device}/${ack.stream} failed authentication (forged, altered or for another device)`);
  }
  return ack;
}

/** Sorted, merged ranges of a set of sequences. */
export function toRanges(seqs: Iterable<number>): SeqRange[] {
  const sorted = [...seqs].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const seq of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && seq <= last[1] + 1) last[1] = Math.max(last[1], seq);
    else ranges.push([seq, seq]);
  }
  return ranges;
}

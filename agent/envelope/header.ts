import { AgentError } from '../errors.ts';
import { malformed } from './malformed.ts';
import { COMPRESSION_ID, compressionFromId, type Compression } from './codec.ts';

/**
 * Envelope v1 header; byte layout in docs/wire-format.md. Everything here travels in clear text and is
 * authenticated as the AEAD's associated data, so a flipped bit anywhere in it fails decryption.
 */
export interface EnvelopeHeader {
  device: string;
  stream: string;
  /**
   * Identity of the queue that numbered this batch (8 random bytes made with the queue). A queue that is
   * replaced (new SD card, quarantined file) starts a new epoch, so its sequences 1, 2, 3… are new batches
   * to the centre, not replays.
   */
  epoch: Uint8Array;
  seq: number;
  count: number;
  /** Batch creation time, ms since the epoch. */
  created: number;
  compression: Compression;
  deviceKeyId: Uint8Array;
  centreKeyId: Uint8Array;
  nonce: Uint8Array;
}

export const MAGIC = [0x45, 0x41] as const; // "EA"
export const VERSION = 1;
export const KEY_ID_BYTES = 8;
export const EPOCH_BYTES = 8;
export const NONCE_BYTES = 24;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function nameBytes(what: string, value: string): Uint8Array {
  const bytes = utf8.encode(value);
  if (bytes.length < 1 || bytes.length > 255) throw new AgentError('ENVELOPE_MALFORMED', `${what} must be 1–255 bytes of UTF-8`);
  return bytes;
}

export function encodeHeader(h: EnvelopeHeader): Uint8Array {
  const device = nameBytes('device id', h.device);
  const stream = nameBytes('stream', h.stream);
  if (h.deviceKeyId.length !== KEY_ID_BYTES || h.centreKeyId.length !== KEY_ID_BYTES) throw new AgentError('ENVELOPE_MALFORMED', 'key ids must be 8 bytes');
  if (h.nonce.length !== NONCE_BYTES) throw new AgentError('ENVELOPE_MALFORMED', 'nonce must be 24 bytes');
  if (h.epoch.length !== EPOCH_BYTES) throw new AgentError('ENVELOPE_MALFORMED', 'epoch must be 8 bytes');
  const out = new Uint8Array(4 + 1 + device.length + 1 + stream.length + EPOCH_BYTES + 8 + 4 + 8 + KEY_ID_BYTES * 2 + NONCE_BYTES);
  const view = new DataView(out.buffer);
  let o = 0;
  out[o++] = MAGIC[0];
  out[o++] = MAGIC[1];
  out[o++] = VERSION;
  out[o++] = COMPRESSION_ID[h.compression];
  out[o++] = device.length;
  out.set(device, o);
  o += device.length;
  out[o++] = stream.length;
  out.set(stream, o);
  o += stream.length;
  out.set(h.epoch, o);
  o += EPOCH_BYTES;
  view.setBigUint64(o, BigInt(h.seq));
  o += 8;
  view.setUint32(o, h.count);
  o += 4;
  view.setBigUint64(o, BigInt(h.created));
  o += 8;
  out.set(h.deviceKeyId, o);
  o += KEY_ID_BYTES;
  out.set(h.centreKeyId, o);
  o += KEY_ID_BYTES;
  out.set(h.nonce, o);
  return out;
}

/**
 * Parses the header at the start of `bytes`; `length` is where the ciphertext begins. Checks run front to
 * back, each on the bytes it needs (docs/wire-format.md, "Decisions"): the magic, then the version (so
 * `45 41 02` is an unsupported version, whatever follows), then the compression id, the names, the fixed
 * fields, and last the range of seq and created.
 */
export function decodeHeader(bytes: Uint8Array): { header: EnvelopeHeader; length: number } {
  const need = (o: number, n: number) => {
    if (o + n > bytes.length) throw malformed('truncated-header', `envelope header: truncated at byte ${o} (have ${bytes.length})`);
  };
  for (let i = 0; i < MAGIC.length; i++) {
    need(i, 1);
    if (bytes[i] !== MAGIC[i]) throw malformed('bad-magic', 'envelope header: bad magic (not an edge-agent envelope)');
  }
  need(2, 1);
  if (bytes[2] !== VERSION) {
    throw new AgentError('ENVELOPE_UNSUPPORTED', `envelope format version ${bytes[2]} is not supported (this build reads ${VERSION})`, {
      details: { reason: 'version' },
    });
  }
  need(3, 1);
  const compression =
    compressionFromId(bytes[3]!) ??
    (() => {
      throw malformed('bad-compression', `envelope header: unknown compression id ${bytes[3]}`);
    })();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 4;
  const name = (what: string): string => {
    need(o, 1);
    const len = bytes[o++]!;
    if (len === 0) throw malformed('empty-name', `envelope header: empty ${what}`);
    need(o, len);
    let text = '';
    try {
      text = utf8Decoder.decode(bytes.subarray(o, o + len));
    } catch (cause) {
      throw malformed('invalid-utf8', `envelope header: ${what} is not UTF-8`, cause);
    }
    o += len;
    return text;
  };
  const device = name('device id');
  const stream = name('stream');
  need(o, EPOCH_BYTES + 8 + 4 + 8 + KEY_ID_BYTES * 2 + NONCE_BYTES);
  const epoch = bytes.slice(o, o + EPOCH_BYTES);
  o += EPOCH_BYTES;
  const seq = view.getBigUint64(o);
  o += 8;
  const count = view.getUint32(o);
  o += 4;
  const created = view.getBigUint64(o);
  o += 8;
  if (seq > BigInt(Number.MAX_SAFE_INTEGER) || created > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw malformed('out-of-range', `envelope header: seq ${seq} or created ${created} is above 2^53 - 1`);
  }
  const deviceKeyId = bytes.slice(o, o + KEY_ID_BYTES);
  o += KEY_ID_BYTES;
  const centreKeyId = bytes.slice(o, o + KEY_ID_BYTES);
  o += KEY_ID_BYTES;
  const nonce = bytes.slice(o, o + NONCE_BYTES);
  o += NONCE_BYTES;
  return { header: { device, stream, epoch, seq: Number(seq), count, created: Number(created), compression, deviceKeyId, centreKeyId, nonce }, length: o };
}

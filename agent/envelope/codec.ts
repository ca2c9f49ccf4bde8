import { Encoder } from 'cbor-x';
import zlib from 'node:zlib';
import type { AgentRecord } from '../domain/record.ts';
import { AgentError } from '../errors.ts';
import { decodeBody, MAX_NESTING, type DecodeOptions } from './cbor-decode.ts';
import { malformed } from './malformed.ts';

/**
 * Records are encoded as one plain CBOR (RFC 8949) array: after compression cbor-x's records extension saved
 * only ~6 % here (8.3 vs 8.8 B/record, 1000 sensor records, deflate 1), not worth making every receiver in
 * another language understand a private extension.
 */
// tagUint8Array: false writes a Uint8Array as a plain byte string; cbor-x's default under Node wraps it in
// tag 64 (RFC 8746), which a receiver in another language would have to unwrap. Decoding accepts both.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, structuredClone: false, tagUint8Array: false });

export const COMPRESSIONS = ['none', 'deflate', 'brotli', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/**
 * `batch.compression` when the config names none. zstd at level 1 against deflate at level 1, on 1000-record
 * chunks of the benchmark's realistic records: 40–60 % less CPU and 10–19 % fewer bytes on the wire
 * (scripts/bench/codec-bench.ts; docs/benchmarks.md, "Session 11: zstd by default; sizing SQLite rows by type").
 */
export const DEFAULT_COMPRESSION: Compression = 'zstd';

/** Wire ids of the compression methods (header byte 3). */
export const COMPRESSION_ID: Record<Compression, number> = { none: 0, deflate: 1, brotli: 2, zstd: 3 };

export function compressionFromId(id: number): Compression | undefined {
  return COMPRESSIONS[id];
}

export interface CodecSettings {
  compression: Compression;
  /** Method-specific level; undefined picks a gateway-friendly default (deflate 1, brotli 4, zstd 1). */
  level: number | undefined;
}

/** What encoding a batch found and fixed, for the caller to count. */
export interface EncodeStats {
  /** Records in which a string (value or key, at any depth) was not well-formed UTF-16 and was repaired. */
  repaired: number;
}

let repairedInRecord = false;

/** `text` with each lone surrogate replaced by U+FFFD, noted for the record being prepared. */
function wellFormed(text: string): string {
  repairedInRecord = true;
  return text.toWellFormed();
}

/**
 * Keys already seen well-formed. Records of a stream share a few keys, and a Set lookup costs about half an
 * `isWellFormed` call (6 vs 12 ns, one-byte strings); bounded so that records with ever-new keys cannot grow it.
 */
const wellFormedKeys = new Set<string>();
function rememberKey(key: string): void {
  if (wellFormedKeys.size >= 4096) wellFormedKeys.clear();
  wellFormedKeys.add(key);
}

const isBigNumber = (v: number): boolean => v > 0xffffffff || v < -0x100000000;

/**
 * Readies a value for the wire, in place (the records are the queue's by now), in the one walk encoding
 * already needs:
 * - cbor-x writes an integer outside ±2^32 (every millisecond timestamp) as a float64: such a value becomes a
 *   BigInt, so it goes out as a CBOR integer (major type 0/1) that a typed receiver reads as int64;
 * - a string holding a lone UTF-16 surrogate (a truncated emoji, a bad decode upstream) would go out as
 *   invalid UTF-8, which a strict receiver refuses with the whole batch: each lone surrogate becomes U+FFFD,
 *   in values and keys at any depth. `isWellFormed` is a cheap check (immediate for one-byte strings), so
 *   only a string that needs it is copied;
 * - nesting deeper than the receiver reads (MAX_NESTING) throws, so the record is dropped as invalid at
 *   ingest instead of losing its whole batch at the centre.
 */
function prepared(value: unknown, depth: number): unknown {
  if (typeof value === 'number') return isBigNumber(value) && Number.isSafeInteger(value) ? BigInt(value) : value;
  if (typeof value === 'string') return value.isWellFormed() ? value : wellFormed(value);
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    if (depth > MAX_NESTING) throw new AgentError('RECORD_INVALID', `record nested deeper than ${MAX_NESTING - 1} levels`);
    // Only what needs it is visited and written back: an array of plain floats (readings) stays untouched,
    // so it keeps its unboxed double storage and costs no call per element.
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'number' ? isBigNumber(v) : typeof v === 'string' ? !v.isWellFormed() : typeof v === 'object' && v !== null) {
        value[i] = prepared(v, depth + 1);
      }
    }
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    if (depth > MAX_NESTING) throw new AgentError('RECORD_INVALID', `record nested deeper than ${MAX_NESTING - 1} levels`);
    const record = value as Record<string, unknown>;
    let badKey = false;
    for (const key in record) {
      if (!wellFormedKeys.has(key)) {
        if (key.isWellFormed()) rememberKey(key);
        else badKey = true;
      }
      const v = record[key];
      if (typeof v === 'number' ? isBigNumber(v) : typeof v === 'string' ? !v.isWellFormed() : typeof v === 'object' && v !== null) {
        record[key] = prepared(v, depth + 1);
      }
    }
    if (badKey) repairKeys(record);
  }
  return value;
}

/**
 * Rewrites an object's keys as well-formed text, in place and in order. Two keys that differ only in their
 * lone surrogates become the same key: the later value wins, as it would in any JSON object.
 */
function repairKeys(record: Record<string, unknown>): void {
  const entries = Object.keys(record).map((key) => [key.isWellFormed() ? key : wellFormed(key), record[key]] as const);
  for (const key of Object.keys(record)) delete record[key];
  for (const [key, v] of entries) setOwn(record, key, v);
}

/** An own enumerable property, `__proto__` included (plain assignment would set the prototype). */
function setOwn(record: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}

/**
 * Encodes records as a batch body. Works in place (see `prepared`); `stats.repaired` counts the records whose
 * text had to be repaired to well-formed UTF-8 (they are kept, with U+FFFD where a lone surrogate was).
 */
export function encodeRecords(records: readonly AgentRecord[], stats?: EncodeStats): Uint8Array {
  // Indexed, not for-of: called once per chunk, an unoptimised for-of allocates an iterator result per record.
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    repairedInRecord = false;
    prepared(record, 2);
    if (repairedInRecord && stats) stats.repaired++;
  }
  return cbor.encode(records);
}

/**
 * Decodes a batch body (docs/wire-format.md, "Body" and "Decisions"): strictly, as the receiver must. The
 * queue reads its own chunks back with `text: 'replace'`: a chunk written by a build before the ingest repair
 * may hold invalid UTF-8, and the queue must not lose it for that.
 */
export function decodeRecords(bytes: Uint8Array, options: DecodeOptions = { text: 'strict' }): AgentRecord[] {
  return decodeBody(bytes, options);
}

export function compress(bytes: Uint8Array, settings: CodecSettings): Uint8Array {
  switch (settings.compression) {
    case 'none':
      return bytes;
    case 'deflate':
      return zlib.deflateRawSync(bytes, { level: settings.level ?? 1 });
    case 'brotli':
      return zlib.brotliCompressSync(bytes, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: settings.level ?? 4, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
      });
    case 'zstd':
      return zlib.zstdCompressSync(bytes, { params: { [zlib.constants.ZSTD_c_compressionLevel]: settings.level ?? 1 } });
  }
}

/**
 * Decompresses with an output limit, so a hostile batch cannot inflate into all of the centre's memory. The
 * body must be exactly one compressed stream: bytes after its end are refused, not ignored.
 */
export function decompress(bytes: Uint8Array, compression: Compression, maxOutputLength: number): Uint8Array {
  if (compression === 'none') return bytes;
  let result: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    const options = { maxOutputLength, info: true } as const;
    switch (compression) {
      case 'deflate':
        result = zlib.inflateRawSync(bytes, options) as unknown as typeof result;
        break;
      case 'brotli':
        result = zlib.brotliDecompressSync(bytes, options) as unknown as typeof result;
        break;
      case 'zstd':
        result = zlib.zstdDecompressSync(bytes, options) as unknown as typeof result;
        break;
    }
  } catch (cause) {
    if ((cause as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw malformed('too-large', `batch body inflates to more than ${maxOutputLength} bytes`, cause);
    }
    throw malformed('decompress-failed', `batch body does not decompress as ${compression}`, cause);
  }
  const consumed = result.engine.bytesWritten;
  if (consumed !== bytes.length) {
    throw malformed('trailing-compressed', `${bytes.length - consumed} bytes after the end of the ${compression} stream`);
  }
  return result.buffer;
}

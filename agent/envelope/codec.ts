import { Encoder } from 'cbor-x';
import zlib from 'node:zlib';
import type { AgentRecord } from '../domain/record.ts';
import { AgentError } from '../errors.ts';

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

/** Wire ids of the compression methods (header byte 3). */
export const COMPRESSION_ID: Record<Compression, number> = { none: 0, deflate: 1, brotli: 2, zstd: 3 };

export function compressionFromId(id: number): Compression | undefined {
  return COMPRESSIONS[id];
}

export interface CodecSettings {
  compression: Compression;
  /** Method-specific level; undefined picks a gateway-friendly default (deflate 1, brotli 4, zstd 3). */
  level: number | undefined;
}

/**
 * cbor-x writes an integer outside ±2^32 (every millisecond timestamp) as a float64. Such a value is turned
 * into a BigInt here so it goes out as a CBOR integer (major type 0/1) that a typed receiver reads as int64.
 * Works in place on plain objects and arrays: the records are the queue's by now.
 */
function integersAsIntegers(value: unknown): unknown {
  if (typeof value === 'number') {
    return (value > 0xffffffff || value < -0x100000000) && Number.isSafeInteger(value) ? BigInt(value) : value;
  }
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = integersAsIntegers(value[i]);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key in record) {
      const v = record[key];
      if (typeof v === 'number' ? v > 0xffffffff || v < -0x100000000 : typeof v === 'object' && v !== null) record[key] = integersAsIntegers(v);
    }
  }
  return value;
}

/** The reverse on decode: cbor-x returns every 64-bit integer as a BigInt; those a number holds exactly become numbers. */
function safeIntegersAsNumbers(value: unknown): unknown {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = safeIntegersAsNumbers(value[i]);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key in record) {
      const v = record[key];
      if (typeof v === 'bigint' || (typeof v === 'object' && v !== null)) record[key] = safeIntegersAsNumbers(v);
    }
  }
  return value;
}

export function encodeRecords(records: readonly AgentRecord[]): Uint8Array {
  for (const record of records) integersAsIntegers(record);
  return cbor.encode(records);
}

export function decodeRecords(bytes: Uint8Array): AgentRecord[] {
  const value = cbor.decode(bytes) as unknown;
  if (!Array.isArray(value)) throw new AgentError('ENVELOPE_MALFORMED', 'batch body is not a CBOR array');
  return safeIntegersAsNumbers(value) as AgentRecord[];
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
      return zlib.zstdCompressSync(bytes, { params: { [zlib.constants.ZSTD_c_compressionLevel]: settings.level ?? 3 } });
  }
}

/** Decompresses with an output limit, so a hostile batch cannot inflate into all of the centre's memory. */
export function decompress(bytes: Uint8Array, compression: Compression, maxOutputLength: number): Uint8Array {
  try {
    switch (compression) {
      case 'none':
        return bytes;
      case 'deflate':
        return zlib.inflateRawSync(bytes, { maxOutputLength });
      case 'brotli':
        return zlib.brotliDecompressSync(bytes, { maxOutputLength });
      case 'zstd':
        return zlib.zstdDecompressSync(bytes, { maxOutputLength });
    }
  } catch (cause) {
    throw new AgentError('ENVELOPE_MALFORMED', `batch body does not decompress as ${compression}`, { cause });
  }
}

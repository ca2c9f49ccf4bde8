/**
 * Turning an emit's records into stored chunks. Records are written as CBOR when they are handed to the
 * queue (record-writer.ts), so only bytes wait for the commit; here a commit cuts a stream's waiting records
 * into chunks (the batch array's head, then the records' bytes as written) and compresses each, so a full
 * chunk can later leave as a batch body as it is.
 */
import type { Logger } from '../log.ts';
import type { AgentRecord, RecordRows } from '../domain/record.ts';
import { compress, type CodecSettings } from '../envelope/codec.ts';
import { arrayHeadBytes, writeArrayHead } from '../envelope/cbor-head.ts';
import type { EncodedRecords, RecordWriter } from '../envelope/record-writer.ts';
import type { Ledger } from './ledger.ts';

export interface EncodedChunk {
  count: number;
  payload: Uint8Array;
  /** Bytes of CBOR before compression: what batch.max_bytes (and the centre's max_batch_bytes) bound. */
  cborBytes: number;
}

/** An emit's records, written, with the number whose text was repaired (counted when committed). */
export interface WrittenEmit {
  records: EncodedRecords;
  repaired: number;
}

/**
 * Writes an emit's records as CBOR. A record that cannot be encoded is dropped (counted as `invalid` in the
 * ledger), one too large for any batch likewise (counted as `too_large`: the centre could never take it,
 * docs/wire-format.md "Limits"), and the rest of the emit goes on: a source must never stall on one bad row.
 */
export function writeEmit(
  writer: RecordWriter,
  stream: string,
  records: readonly AgentRecord[] | RecordRows,
  batchMaxBytes: number,
  ledger: Ledger,
  log: Logger,
  stampTs?: number,
): WrittenEmit {
  const out = writer.write(records, batchMaxBytes, stampTs);
  if (out.invalid > 0) {
    ledger.countDrop(stream, 'invalid', out.invalid);
    log.error({ stream, records: out.invalid, err: (out.invalidExample as Error)?.message }, 'records that cannot be encoded were dropped');
  }
  if (out.tooLarge > 0) {
    ledger.countDrop(stream, 'too_large', out.tooLarge);
    log.error({ stream, records: out.tooLarge, maxBytes: batchMaxBytes }, 'records larger than batch.max_bytes were dropped: no batch can carry them');
  }
  return { records: out.records, repaired: out.repaired };
}

/** A chunk's CBOR is assembled here before compression; a buffer grown past this is let go after the chunk. */
const KEPT_ASSEMBLY_BYTES = 512 * 1024;
let assembly = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * A buffer of at least `size` bytes to assemble one chunk's CBOR in, reused chunk after chunk: compression
 * reads it synchronously and returns bytes of its own. A fresh buffer per chunk (≈80 KB for 1000 records of
 * 120 B) was garbage outside V8's heap until the next collection: 2.5 MB of malloc heap at its peak in a
 * full-speed run under heaptrack (docs/benchmarks.md, "Full-speed memory").
 */
function assemblyBuffer(size: number): Buffer {
  if (assembly.length < size) assembly = Buffer.allocUnsafeSlow(Math.max(size, assembly.length * 2));
  return assembly;
}

/**
 * `compress`, with Node's shared Buffer pool out of its reach. zlib's synchronous calls take their output
 * (a 16 KiB buffer, then the joined result) from the pool when they are under half its size (64 KiB slabs in
 * Node 24), so every payload was a view of a pool slab; a slab stays the pool's until it is used up, which at
 * full speed outlives two scavenges, so every slab was promoted and freed only by a full collection: 9.6 MB
 * of malloc heap at its peak in a full-speed run under heaptrack (docs/benchmarks.md, "Full-speed memory").
 * Out of the pool a payload is a buffer of its own, young garbage once committed. Compression runs
 * synchronously: nothing else allocates while the pool is set aside.
 */
function compressOutsidePool(bytes: Buffer, codec: CodecSettings): Uint8Array {
  const poolSize = Buffer.poolSize;
  Buffer.poolSize = 0;
  try {
    return compress(bytes, codec);
  } finally {
    Buffer.poolSize = poolSize;
  }
}

/**
 * Cuts a stream's waiting records, in order, into chunks of at most `maxRecords` records and `maxBytes` of
 * CBOR (each record fits on its own: `writeEmit` dropped the rest), and compresses each. Each record is
 * encoded once: a chunk over `maxBytes` used to be encoded again as two halves.
 */
export function chunkRecords(emits: readonly EncodedRecords[], maxRecords: number, maxBytes: number, codec: CodecSettings): EncodedChunk[] {
  const out: EncodedChunk[] = [];
  // The current chunk: spans [from, to) of emits' bytes, flattened as emit index, from, to.
  const spans: number[] = [];
  let count = 0;
  let bytes = 0;
  const close = () => {
    const total = arrayHeadBytes(count) + bytes;
    const cbor = assemblyBuffer(total).subarray(0, total);
    let at = writeArrayHead(cbor, 0, count);
    for (let s = 0; s < spans.length; s += 3) {
      const from = spans[s + 1]!;
      const to = spans[s + 2]!;
      emits[spans[s]!]!.bytes.copy(cbor, at, from, to);
      at += to - from;
    }
    const compressed = compressOutsidePool(cbor, codec);
    // Without compression the payload is the assembly buffer itself, which the next chunk overwrites.
    out.push({ count, payload: compressed === cbor ? Buffer.from(cbor) : compressed, cborBytes: total });
    spans.length = 0;
    count = 0;
    bytes = 0;
  };
  for (let e = 0; e < emits.length; e++) {
    const { ends } = emits[e]!;
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      const end = ends[i]!;
      const length = end - start;
      if (count > 0 && (count === maxRecords || arrayHeadBytes(count + 1) + bytes + length > maxBytes)) close();
      const last = spans.length - 3;
      if (count > 0 && spans[last] === e && spans[last + 2] === start) spans[last + 2] = end;
      else spans.push(e, start, end);
      count++;
      bytes += length;
      start = end;
    }
  }
  if (count > 0) close();
  if (assembly.length > KEPT_ASSEMBLY_BYTES) assembly = Buffer.allocUnsafeSlow(64 * 1024);
  return out;
}

/** The waiting emits' chunks and repaired-record counts, by stream (a stream's emits in the order made). */
export function chunkByStream(
  emits: readonly { stream: string; written: WrittenEmit }[],
  maxRecords: number,
  maxBytes: number,
  codec: CodecSettings,
): Map<string, { chunks: EncodedChunk[]; repaired: number }> {
  const byStream = new Map<string, { records: EncodedRecords[]; repaired: number }>();
  for (let i = 0; i < emits.length; i++) {
    const { stream, written } = emits[i]!;
    let entry = byStream.get(stream);
    if (!entry) byStream.set(stream, (entry = { records: [], repaired: 0 }));
    entry.records.push(written.records);
    entry.repaired += written.repaired;
  }
  const out = new Map<string, { chunks: EncodedChunk[]; repaired: number }>();
  for (const [stream, { records, repaired }] of byStream) out.set(stream, { chunks: chunkRecords(records, maxRecords, maxBytes, codec), repaired });
  return out;
}

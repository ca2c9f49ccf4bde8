/**
 * Turning records into stored chunks: the CBOR encoding and compression done once, at ingest, so a full
 * chunk can later leave as a batch body as it is. Kept out of the queue's commit so the commit only orders
 * writes; the cost of encoding is here.
 */
import type { AgentRecord } from '../domain/record.ts';
import { compress, encodeRecords, type CodecSettings, type EncodeStats } from '../envelope/codec.ts';
import type { Ledger } from './ledger.ts';
import type { QueueOptions } from './types.ts';

export interface EncodedChunk {
  count: number;
  payload: Uint8Array;
}

/**
 * Cuts one stream's records into chunks of at most `maxRecords`, halving a chunk whose CBOR exceeds
 * `maxBytes` (one record is always a chunk of its own, whatever its size), and compresses each. Records whose
 * text was repaired to well-formed UTF-8 are counted in `stats` (once: the repair is in place, so a halved
 * chunk's second encoding finds nothing left to repair).
 */
export function encodeChunks(records: readonly AgentRecord[], maxRecords: number, maxBytes: number, codec: CodecSettings, stats?: EncodeStats): EncodedChunk[] {
  const out: EncodedChunk[] = [];
  const add = (slice: readonly AgentRecord[]) => {
    const cbor = encodeRecords(slice, stats);
    if (cbor.length > maxBytes && slice.length > 1) {
      const half = Math.ceil(slice.length / 2);
      add(slice.slice(0, half));
      add(slice.slice(half));
      return;
    }
    out.push({ count: slice.length, payload: compress(cbor, codec) });
  };
  for (let i = 0; i < records.length; i += maxRecords) add(records.slice(i, i + maxRecords));
  return out;
}

/**
 * Encodes what waits for a commit, all of a stream's records together. A record that cannot be encoded is
 * dropped (counted as `invalid` in the ledger) and the rest of its stream goes on. `repaired` is the number of
 * the stream's records kept with lone UTF-16 surrogates replaced by U+FFFD (docs/wire-format.md, "Decisions").
 */
export function encodeByStream(
  emits: readonly { stream: string; records: AgentRecord[] }[],
  opts: QueueOptions,
  ledger: Ledger,
): Map<string, { chunks: EncodedChunk[]; repaired: number }> {
  const byStream = new Map<string, { stream: string; records: AgentRecord[] }[]>();
  for (const e of emits) {
    let list = byStream.get(e.stream);
    if (!list) byStream.set(e.stream, (list = []));
    list.push(e);
  }
  const out = new Map<string, { chunks: EncodedChunk[]; repaired: number }>();
  const { batchMaxRecords, batchMaxBytes, codec } = opts;
  for (const [stream, list] of byStream) {
    const records = list.length === 1 ? list[0]!.records : list.flatMap((e) => e.records);
    const stats: EncodeStats = { repaired: 0 };
    try {
      out.set(stream, { chunks: encodeChunks(records, batchMaxRecords, batchMaxBytes, codec, stats), repaired: stats.repaired });
    } catch {
      // Some record holds a value CBOR cannot carry (a function, a symbol…): that record alone is dropped
      // and counted; the rest, and the source's cursor, go on. A source must never stall on one bad row.
      const good: AgentRecord[] = [];
      let bad = 0;
      let example: unknown;
      for (const record of records) {
        try {
          encodeRecords([record], stats);
          good.push(record);
        } catch (err) {
          bad++;
          example ??= err;
        }
      }
      ledger.countDrop(stream, 'invalid', bad);
      opts.log.error({ stream, records: bad, err: (example as Error)?.message }, 'records that cannot be encoded were dropped');
      out.set(stream, { chunks: encodeChunks(good, batchMaxRecords, batchMaxBytes, codec, stats), repaired: stats.repaired });
    }
  }
  return out;
}

/**
 * Turning records into stored chunks: the CBOR encoding and compression done once, at ingest, so a full
 * chunk can later leave as a batch body as it is. Kept out of the queue's commit so the commit only orders
 * writes; the cost of encoding is here.
 */
import type { AgentRecord } from '../domain/record.ts';
import { compress, encodeRecords, type CodecSettings, type EncodeStats } from '../envelope/codec.ts';
import { AgentError } from '../errors.ts';
import type { Ledger } from './ledger.ts';
import type { QueueOptions } from './types.ts';

export interface EncodedChunk {
  count: number;
  payload: Uint8Array;
  /** Bytes of CBOR before compression: what batch.max_bytes (and the centre's max_batch_bytes) bound. */
  cborBytes: number;
}

/**
 * Encodes slices of at most `maxRecords` records as chunks, halving a slice whose CBOR exceeds `maxBytes`,
 * and compresses each. A record larger than `maxBytes` on its own throws (encodeByStream drops it). Records whose
 * text was repaired to well-formed UTF-8 are counted in `stats` (once: the repair is in place, so a halved
 * chunk's second encoding finds nothing left to repair).
 */
export function encodeChunks(slices: readonly (readonly AgentRecord[])[], maxBytes: number, codec: CodecSettings, stats?: EncodeStats): EncodedChunk[] {
  const out: EncodedChunk[] = [];
  const add = (slice: readonly AgentRecord[]) => {
    const cbor = encodeRecords(slice, stats);
    if (cbor.length > maxBytes && slice.length > 1) {
      const half = Math.ceil(slice.length / 2);
      add(slice.slice(0, half));
      add(slice.slice(half));
      return;
    }
    if (cbor.length > maxBytes) throw new AgentError('RECORD_INVALID', `record of ${cbor.length} bytes of CBOR exceeds batch.max_bytes (${maxBytes})`);
    out.push({ count: slice.length, payload: compress(cbor, codec), cborBytes: cbor.length });
  };
  for (const slice of slices) add(slice);
  return out;
}

/**
 * The records of a stream's emits, in order, cut every `maxRecords`: each slice is one array made at its
 * size, and an emit that is a whole slice on its own is used as it is (the queue owns the records by now).
 * Joining the emits first and slicing that (as before) copied every record's reference twice.
 */
export function sliceEmits(lists: readonly (readonly AgentRecord[])[], maxRecords: number): (readonly AgentRecord[])[] {
  let left = 0;
  for (const list of lists) left += list.length;
  const out: (readonly AgentRecord[])[] = [];
  let current: AgentRecord[] | undefined;
  let filled = 0;
  for (const list of lists) {
    if (current === undefined && list.length === maxRecords) {
      out.push(list);
      left -= list.length;
      continue;
    }
    for (let i = 0; i < list.length; i++) {
      if (current === undefined) {
        current = new Array<AgentRecord>(Math.min(maxRecords, left));
        filled = 0;
      }
      current[filled++] = list[i]!;
      left--;
      if (filled === current.length) {
        out.push(current);
        current = undefined;
      }
    }
  }
  return out;
}

/**
 * Encodes what waits for a commit, all of a stream's records together. A record that cannot be encoded is
 * dropped (counted as `invalid` in the ledger), one too large for any batch likewise (counted as
 * `too_large`: the centre could never take it, docs/wire-format.md "Limits"), and the rest of its stream goes on. `repaired` is the number of
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
    const stats: EncodeStats = { repaired: 0 };
    try {
      const slices = sliceEmits(
        list.map((e) => e.records),
        batchMaxRecords,
      );
      out.set(stream, { chunks: encodeChunks(slices, batchMaxBytes, codec, stats), repaired: stats.repaired });
    } catch {
      const records = list.flatMap((e) => e.records);
      // Some record holds a value CBOR cannot carry (a function, a symbol…): that record alone is dropped
      // and counted; the rest, and the source's cursor, go on. A source must never stall on one bad row.
      const good: AgentRecord[] = [];
      let bad = 0;
      let tooLarge = 0;
      let example: unknown;
      for (const record of records) {
        try {
          if (encodeRecords([record], stats).length > batchMaxBytes) tooLarge++;
          else good.push(record);
        } catch (err) {
          bad++;
          example ??= err;
        }
      }
      if (bad > 0) {
        ledger.countDrop(stream, 'invalid', bad);
        opts.log.error({ stream, records: bad, err: (example as Error)?.message }, 'records that cannot be encoded were dropped');
      }
      if (tooLarge > 0) {
        ledger.countDrop(stream, 'too_large', tooLarge);
        opts.log.error({ stream, records: tooLarge, maxBytes: batchMaxBytes }, 'records larger than batch.max_bytes were dropped: no batch can carry them');
      }
      out.set(stream, { chunks: encodeChunks(sliceEmits([good], batchMaxRecords), batchMaxBytes, codec, stats), repaired: stats.repaired });
    }
  }
  return out;
}

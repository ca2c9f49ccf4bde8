import type { AgentRecord } from '../domain/record.ts';
import { compress, encodeRecords, type CodecSettings } from '../envelope/codec.ts';

export interface EncodedChunk {
  count: number;
  payload: Uint8Array;
}

/**
 * Cuts one stream's records into chunks of at most `maxRecords`, halving a chunk whose CBOR exceeds
 * `maxBytes` (one record is always a chunk of its own, whatever its size), and compresses each.
 */
export function encodeChunks(records: readonly AgentRecord[], maxRecords: number, maxBytes: number, codec: CodecSettings): EncodedChunk[] {
  const out: EncodedChunk[] = [];
  const add = (slice: readonly AgentRecord[]) => {
    const cbor = encodeRecords(slice);
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

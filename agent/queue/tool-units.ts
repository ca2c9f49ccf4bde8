/**
 * The units the queue tools work in, read from a healthy queue file page by page. A unit is what the queue
 * itself never splits: a recorded batch (its sequence names it at the centre, so it is exported, purged and
 * replayed whole) or a chunk not yet in a batch (records the centre has never seen). Reading is paged by
 * bytes, each page one short read, so memory stays bounded however large the file and the agent's
 * checkpoints are held back by one page at most.
 */
import { crc32 } from 'node:zlib';
import type { AgentRecord } from '../domain/record.ts';
import { compressionFromId, decodeRecords, decompress } from '../envelope/codec.ts';
import { AgentError } from '../errors.ts';
import { hasChunkChecksums, type ToolFile } from './tool-file.ts';

export interface QueueUnit {
  stream: string;
  /** The batch's sequence when the records are in a recorded batch; null when they are not numbered yet. */
  seq: number | null;
  /** Chunk ids the unit spans (first and last; equal for a lone chunk). */
  firstChunk: number;
  lastChunk: number;
  /** Commit time (ms) of the unit's first chunk. */
  created: number;
  /** Compressed bytes as stored. */
  storedBytes: number;
  /** Records in the unit (as the rows count them). */
  count: number;
  /** The records, decoded; empty when read with `decode: false`. */
  records: AgentRecord[];
}

/** Which units a tool works on; every field narrows. Times are commit times (ms). */
export interface Selection {
  streams?: readonly string[];
  since?: number;
  until?: number;
  /** Sequences of recorded batches (inclusive); given, records not yet in a batch are left out. */
  seqFrom?: number;
  seqTo?: number;
}

export function selects(selection: Selection, unit: { stream: string; seq: number | null; created: number }): boolean {
  if (selection.streams && selection.streams.length > 0 && !selection.streams.includes(unit.stream)) return false;
  if (selection.since !== undefined && unit.created < selection.since) return false;
  if (selection.until !== undefined && unit.created >= selection.until) return false;
  if (selection.seqFrom !== undefined || selection.seqTo !== undefined) {
    if (unit.seq === null) return false;
    if (selection.seqFrom !== undefined && unit.seq < selection.seqFrom) return false;
    if (selection.seqTo !== undefined && unit.seq > selection.seqTo) return false;
  }
  return true;
}

interface ChunkRow {
  id: number;
  count: number;
  created: number;
  codec: number;
  size: number;
  /** Absent when read with `decode: false`. */
  payload?: Buffer;
  /** The payload's CRC-32 as written; null or absent when not known (an older build's chunk or file). */
  crc32?: number | null;
}

interface BatchRange {
  seq: number;
  first: number;
  last: number;
}

/** Compressed bytes read per page: with records decompressing 5–10×, a page costs a few MB of heap at most. */
export const PAGE_BYTES = 1024 * 1024;
/** A chunk decompresses to at most this (a batch is far smaller; this only stops a bomb). */
const MAX_CHUNK_CBOR = 64 * 1024 * 1024;

export function decodeChunk(codec: number, payload: Uint8Array): AgentRecord[] {
  const compression = compressionFromId(codec);
  if (!compression) throw new Error(`unknown compression id ${codec}`);
  return decodeRecords(decompress(payload, compression, MAX_CHUNK_CBOR), { text: 'replace' });
}

/**
 * Yields the selected units of a healthy file, stream by stream, in chunk order. Synchronous per page, so a
 * caller that awaits between units (to write with backpressure) never holds a read open across the await.
 * A batch the agent acknowledged while it was being read (its chunks gone half-way) is left out: it is
 * delivered.
 */
export function* readUnits(file: ToolFile, selection: Selection, options: { decode: boolean } = { decode: true }): Generator<QueueUnit> {
  const columns = options.decode ? `payload, length(payload) AS size${hasChunkChecksums(file.db) ? ', crc32' : ''}` : 'length(payload) AS size';
  const page = file.db.prepare(`SELECT id, count, created, codec, ${columns} FROM chunks WHERE stream_id = ? AND id > ? ORDER BY id`);
  const batchesOf = file.db.prepare('SELECT seq, first_chunk AS first, last_chunk AS last FROM batches WHERE stream_id = ? ORDER BY first_chunk');
  for (const [streamId, stream] of file.streams) {
    if (selection.streams && selection.streams.length > 0 && !selection.streams.includes(stream)) continue;
    let after = 0;
    let open: { range: BatchRange; chunks: ChunkRow[] } | undefined;
    for (;;) {
      // The recorded batches are read again with each page: the agent records new ones as it runs.
      const ranges = batchesOf.all(streamId) as BatchRange[];
      const rows: ChunkRow[] = [];
      let bytes = 0;
      for (const row of page.iterate(streamId, after) as IterableIterator<ChunkRow>) {
        rows.push(row);
        // Without payloads a page is rows of a few numbers: bounded by count instead.
        bytes += options.decode ? row.size : 256;
        if (bytes >= PAGE_BYTES) break; // ends the statement, and with it the read
      }
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.id;
      for (const row of rows) {
        if (open && row.id > open.range.last) open = undefined; // its last chunk is gone: acknowledged meanwhile
        const range = open?.range ?? ranges.find((r) => r.first <= row.id && row.id <= r.last);
        if (!range) {
          const unit = toUnit(stream, null, [row]);
          if (selects(selection, unit)) yield unit;
          continue;
        }
        if (!open) open = { range, chunks: [] };
        open.chunks.push(row);
        if (row.id === range.last) {
          const unit = toUnit(stream, range.seq, open.chunks);
          open = undefined;
          if (selects(selection, unit)) yield unit;
        }
      }
    }
  }
}

function toUnit(stream: string, seq: number | null, chunks: ChunkRow[]): QueueUnit {
  const records: AgentRecord[] = [];
  let storedBytes = 0;
  let count = 0;
  for (const c of chunks) {
    storedBytes += c.size;
    count += c.count;
    if (!c.payload) continue;
    if (c.crc32 != null && crc32(c.payload) !== c.crc32) {
      throw new AgentError('QUEUE_CORRUPT', `chunk ${c.id} of stream ${stream} is damaged (its checksum differs); read the file with edge-agent queue salvage`);
    }
    let decoded: AgentRecord[];
    try {
      decoded = decodeChunk(c.codec, c.payload);
    } catch (cause) {
      throw new AgentError('QUEUE_CORRUPT', `chunk ${c.id} of stream ${stream} cannot be decoded; read the file with edge-agent queue salvage`, { cause });
    }
    for (const r of decoded) records.push(r);
  }
  const first = chunks[0]!;
  return { stream, seq, firstChunk: first.id, lastChunk: chunks[chunks.length - 1]!.id, created: first.created, storedBytes, count, records };
}

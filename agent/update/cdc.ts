/**
 * Content-defined chunking (FastCDC: a gear rolling hash with normalised chunking). A cut depends only on the
 * bytes just before it, so a change in one place of an executable moves the cuts near it and leaves the rest
 * of the chunks, and their hashes, as they were: the device copies those from the executable it runs and
 * fetches only the others (docs/update.md, "Delivery").
 *
 * Both sides must cut the same way: the parameters and the gear table are fixed here, part of the format.
 * Memory is one read block plus one chunk, whatever the file's size.
 */
import { createHash } from 'node:crypto';

export const CDC_MIN_BYTES = 4 * 1024;
export const CDC_AVG_BYTES = 16 * 1024;
/** The largest chunk, and so the largest piece of data one message carries. */
export const CDC_MAX_BYTES = 64 * 1024;
const READ_BYTES = 1024 * 1024;

/** Harder to cut before the average size, easier after (FastCDC's normalisation, level 2). */
const MASK_SMALL = 0xffff_0000 >>> 0; // 16 bits: more than log2(avg) = 14
const MASK_LARGE = 0xfff0_0000 >>> 0; // 12 bits

/**
 * 256 fixed 32-bit values, derived from a label so that every build and every device has the same table.
 * Made at the first cut, not when the module loads: every start of the agent evaluates this module (the
 * update's delivery is part of `run`), and 256 SHA-256s were ≈ 2 ms of each start.
 */
let gear: Uint32Array | undefined;
function gearTable(): Uint32Array {
  if (gear) return gear;
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`edge-agent-cdc-gear-${i}`).digest().readUInt32BE(0);
  gear = table;
  return table;
}

export interface CdcChunk {
  offset: number;
  length: number;
  sha256: Buffer;
}

/** Where the next chunk starting at `start` ends in `data[start, end)`, or -1 if more bytes are needed to know. */
export function cutPoint(data: Uint8Array, start: number, end: number, eof: boolean): number {
  const available = end - start;
  if (available <= CDC_MIN_BYTES) return eof ? end : -1;
  const limit = Math.min(available, CDC_MAX_BYTES);
  const normal = Math.min(limit, CDC_AVG_BYTES);
  const table = gearTable();
  let hash = 0;
  let i = CDC_MIN_BYTES;
  for (; i < normal; i++) {
    hash = ((hash << 1) + table[data[start + i]!]!) >>> 0;
    if ((hash & MASK_SMALL) === 0) return start + i + 1;
  }
  for (; i < limit; i++) {
    hash = ((hash << 1) + table[data[start + i]!]!) >>> 0;
    if ((hash & MASK_LARGE) === 0) return start + i + 1;
  }
  if (limit === CDC_MAX_BYTES || eof) return start + limit;
  return -1;
}

/** The chunks of a file, in order, read block by block (the event loop runs between blocks). */
export async function* cdcChunksOfFile(path: string): AsyncGenerator<CdcChunk> {
  // node:fs/promises on use: every start evaluates this module (remote control's update delivery).
  const handle = await process.getBuiltinModule('node:fs/promises').open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(READ_BYTES + CDC_MAX_BYTES);
    let filled = 0;
    let consumed = 0; // bytes of the file before buffer[0]
    let eof = false;
    while (true) {
      if (!eof && filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, consumed + filled);
        if (bytesRead === 0) eof = true;
        filled += bytesRead;
      }
      let start = 0;
      while (start < filled) {
        const cut = cutPoint(buffer, start, filled, eof);
        if (cut < 0) break;
        yield { offset: consumed + start, length: cut - start, sha256: createHash('sha256').update(buffer.subarray(start, cut)).digest() };
        start = cut;
      }
      if (eof && start >= filled) return;
      buffer.copy(buffer, 0, start, filled);
      filled -= start;
      consumed += start;
    }
  } finally {
    await handle.close();
  }
}

/** Every chunk of a file (for the operator's side, which builds the manifest; 44 bytes a chunk). */
export async function cdcOfFile(path: string): Promise<CdcChunk[]> {
  const chunks: CdcChunk[] = [];
  for await (const chunk of cdcChunksOfFile(path)) chunks.push(chunk);
  return chunks;
}

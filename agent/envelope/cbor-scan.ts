/**
 * The receiver's memory guard in front of the batch decoder (cbor-decode.ts): a walk over a body's CBOR that
 * counts records and nesting and builds nothing.
 */
import { malformed } from './malformed.ts';

const BREAK = 0xff;
const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Walks a batch body's first item without building anything, so that a body whose decoding would exhaust
 * memory (a million empty maps inflate from 1 KB) is refused first: more than `maxRecords` elements in the
 * batch array (too-many-records) or nesting deeper than `maxNesting` (too-deep), with the byte where the
 * limit was passed. Heads that cannot be walked (truncated, reserved) are cbor-invalid; everything else
 * (keys, tags, UTF-8, what follows the item) is left to the decoder, whose memory is then bounded by these
 * limits and the body's size. Iterative: a hostile depth cannot exhaust the stack either.
 */
export function scanBody(bytes: Uint8Array, maxRecords: number, maxNesting: number): { records: number; items: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const invalid = (why: string, at: number): never => {
    throw malformed('cbor-invalid', `${why} at body byte ${at}`);
  };
  let pos = bytes.length >= 3 && bytes[0] === 0xd9 && bytes[1] === 0xd9 && bytes[2] === 0xf7 ? 3 : 0;
  const need = (n: number, at: number) => {
    if (n > bytes.length - pos) invalid(`item runs past the end (${n} more bytes needed)`, at);
  };
  const argument = (info: number, at: number): number => {
    if (info < 24) return info;
    const width = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : invalid(`reserved additional information ${info}`, at);
    need(width, at);
    const start = pos;
    pos += width;
    if (width === 1) return bytes[start]!;
    if (width === 2) return view.getUint16(start);
    if (width === 4) return view.getUint32(start);
    const big = view.getBigUint64(start);
    return big > BigInt(SAFE) ? Number.POSITIVE_INFINITY : Number(big);
  };
  // Per open container: items still expected (Infinity until a break for an indefinite one), and whether
  // it is the batch array (depth 1), whose elements are the records.
  const remaining: number[] = [];
  let records = 0;
  let items = 0;
  let topIsArray = false;
  /** A tag's content is still to come (at the top level too). */
  let tagged = false;
  const opened = (count: number, at: number, kind: string) => {
    if (remaining.length + 1 > maxNesting) throw malformed('too-deep', `${kind} at body byte ${at} is nested deeper than ${maxNesting} levels`);
    if (remaining.length === 0 && count !== Number.POSITIVE_INFINITY && count > maxRecords) {
      throw malformed('too-many-records', `batch array at body byte ${at} holds ${count} records (receiver.max_records is ${maxRecords})`);
    }
    remaining.push(count);
  };
  /** One item of the current container is complete; closes the containers it completes. */
  const completed = (at: number) => {
    for (;;) {
      if (remaining.length === 0) return;
      if (remaining.length === 1 && topIsArray && ++records > maxRecords) {
        throw malformed('too-many-records', `batch array holds more than ${maxRecords} records (receiver.max_records), at body byte ${at}`);
      }
      const top = remaining.length - 1;
      if (remaining[top] === Number.POSITIVE_INFINITY) return;
      if (--remaining[top]! > 0) return;
      remaining.pop();
    }
  };
  do {
    const at = pos;
    need(1, at);
    const initial = bytes[pos++]!;
    items++;
    tagged = false;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (initial === BREAK) {
      const top = remaining.length - 1;
      if (top < 0 || remaining[top] !== Number.POSITIVE_INFINITY) invalid('break outside an indefinite-length item', at);
      remaining.pop();
      // The indefinite container just ended: it is one completed item of its parent.
      completed(at);
      continue;
    }
    if (major === 4 || major === 5) {
      const n = info === 31 ? Number.POSITIVE_INFINITY : argument(info, at);
      const count = major === 5 && n !== Number.POSITIVE_INFINITY ? n * 2 : n;
      if (count !== Number.POSITIVE_INFINITY && count > bytes.length - pos) invalid(`length ${n} runs past the end`, at);
      if (major === 4 && remaining.length === 0 && n !== Number.POSITIVE_INFINITY && n > maxRecords) {
        throw malformed('too-many-records', `batch array at body byte ${at} holds ${n} records (receiver.max_records is ${maxRecords})`);
      }
      if (remaining.length === 0) topIsArray = major === 4;
      opened(count, at, major === 4 ? 'array' : 'map');
      if (count === 0) {
        remaining.pop();
        completed(at);
      }
      continue;
    }
    if (major === 6) {
      // A tag's content is the next item, in the same container: nothing completes yet.
      if (info === 31) invalid('indefinite length on a tag', at);
      argument(info, at);
      tagged = true;
      continue;
    }
    if ((major === 2 || major === 3) && info === 31) {
      // Chunks up to the break, counted as this one item.
      for (;;) {
        const chunkAt = pos;
        need(1, chunkAt);
        const chunk = bytes[pos++]!;
        if (chunk === BREAK) break;
        if (chunk >> 5 !== major || (chunk & 0x1f) === 31) invalid(`chunk of another kind in an indefinite-length string started at ${at}`, chunkAt);
        const n = argument(chunk & 0x1f, chunkAt);
        need(n, chunkAt);
        pos += n;
      }
    } else if (major === 2 || major === 3) {
      const n = argument(info, at);
      need(n, at);
      pos += n;
    } else if (major === 7) {
      if (info === 31) invalid('break outside an indefinite-length item', at);
      if (info >= 28) invalid(`reserved additional information ${info}`, at);
      if (info >= 24) argument(info, at);
    } else {
      if (info === 31) invalid('indefinite length on an integer', at);
      argument(info, at);
    }
    completed(at);
  } while (remaining.length > 0 || tagged);
  return { records, items };
}

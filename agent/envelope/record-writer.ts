/**
 * Ingest's encoder: each record of an emit is readied for the wire and written as CBOR in one walk, into one
 * buffer per emit, so that only bytes wait for the commit. Before, a record was walked four times (the emit
 * budget's size estimate, the ingest repair, cbor-x, and the SQL sources' own) and waited for its commit as
 * objects, which a 1 MB young generation promoted to old space: a quarter of the CPU went to the collector.
 *
 * The bytes are those `encodeRecords` (cbor-x) writes for the same records, byte for byte (the tests compare
 * them), so a chunk is the batch array's head followed by its records' bytes as they are. Values this walk
 * does not handle itself (a Date, a Map, a typed array other than bytes, an integer beyond 64 bits…) send
 * their record through `encodeRecords`, as every record went before.
 *
 * Why this file is long: it is one class, the per-value hot loop of ingest, whose methods share the working
 * buffer and its write position as fields; split into modules they would pass that state per value, on the
 * path that CPU per record is measured on (docs/benchmarks.md, "CPU per record, third/fourth pass").
 */
import { asRecords, ordinaryColumns, rowAsRecord, type AgentRecord, type RecordRows } from '../domain/record.ts';
import { AgentError } from '../errors.ts';
import { MAX_NESTING } from './cbor-decode.ts';
import { encodeRecords } from './codec.ts';
import { EmitBuffers } from './emit-buffers.ts';

/** An emit's records as CBOR: record i is `bytes[ends[i-1] ?? 0, ends[i])`. */
export interface EncodedRecords {
  readonly bytes: Buffer;
  readonly ends: Uint32Array;
  readonly count: number;
}

/** What writing an emit found: records dropped (and why) and records kept after a repair of their text. */
export interface WriteOutcome {
  readonly records: EncodedRecords;
  /** Records CBOR cannot carry (a function, a symbol, nesting beyond MAX_NESTING), with the first error. */
  readonly invalid: number;
  readonly invalidExample: unknown;
  /** Records larger than `maxRecordBytes` on their own: no batch could carry them. */
  readonly tooLarge: number;
  /** Records kept with lone UTF-16 surrogates replaced by U+FFFD (docs/wire-format.md, "Decisions"). */
  readonly repaired: number;
}

/** Thrown inside the walk for a value it leaves to cbor-x; never escapes this module. */
const HAND_OVER = Symbol('hand over to cbor-x');

const INITIAL_BYTES = 64 * 1024;
/**
 * The working buffer is kept between emits up to this size; one grown past it (an emit of large records) is
 * let go after that emit, so an occasional large emit does not pin its buffer for the life of the process.
 */
const KEPT_BYTES = 1024 * 1024;

/** Record ends of the scratch array kept between emits (16 KiB); a larger emit's is let go after it. */
const KEPT_ENDS = 4096;

const TWO_32 = 0x100000000;
const MAX_KEPT_KEYS = 4096;
const MAX_KEPT_KEY = 32;
/** Keys of a record compared by place with the last record's (the rest are looked up). */
const KEYS_BY_PLACE = 64;

export class RecordWriter {
  private buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private pos = 0;
  private repairedInRecord = false;
  /**
   * Keys already written, with their CBOR: records of a stream share a few keys, and copying a key's bytes
   * costs about half of writing it (the writer's largest part is text). Bounded in count and key length, so
   * records with ever-new keys cannot grow it (≤ 4096 × 100 B).
   */
  private readonly keys = new Map<string, Uint8Array>();
  /** The last record's first keys by place, with their CBOR (entries of `keys`). */
  private readonly lastKeys: string[] = [];
  private readonly lastKeyBytes: Uint8Array[] = [];
  private readonly blocks = new EmitBuffers();
  private scratchEnds = new Uint32Array(KEPT_ENDS);

  /**
   * Writes `records` (plain objects, `ts` already stamped; or rows that share their keys, with `stampTs`
   * added as `ts` to each when the columns have none). A record that cannot be written, or whose CBOR with
   * the one-element batch array around it exceeds `maxRecordBytes`, is left out and counted.
   */
  write(records: readonly AgentRecord[] | RecordRows, maxRecordBytes: number, stampTs?: number): WriteOutcome {
    if (!Array.isArray(records)) return this.writeRows(records as RecordRows, maxRecordBytes, stampTs);
    const list = records as readonly AgentRecord[];
    this.begin(list.length, maxRecordBytes);
    for (let i = 0; i < list.length; i++) {
      const record = list[i]!;
      const start = this.pos;
      this.repairedInRecord = false;
      try {
        this.object(record, 2);
      } catch (err) {
        this.recover(err, start, record);
        continue;
      }
      this.written(start);
    }
    return this.finish();
  }

  /**
   * Rows as the records `rowAsRecord` makes of them, byte for byte: each row's map has the columns' keys,
   * written once per emit, and the row's values in their order. Columns whose object would differ (a name
   * twice, an array index, which an object puts first, `__proto__`, a key to repair) are made into records.
   */
  private writeRows(rows: RecordRows, maxRecordBytes: number, stampTs: number | undefined): WriteOutcome {
    const keys = this.columnKeys(rows.columns);
    if (keys === undefined) {
      const records = asRecords(rows);
      if (stampTs !== undefined) for (const record of records) if (record.ts === undefined) record.ts = stampTs;
      return this.write(records, maxRecordBytes);
    }
    const stampKey = stampTs === undefined ? undefined : this.keyBytes('ts')!;
    const list = rows.rows;
    this.begin(list.length, maxRecordBytes);
    for (let i = 0; i < list.length; i++) {
      const values = list[i]!;
      const start = this.pos;
      this.repairedInRecord = false;
      try {
        this.row(keys, values, stampKey, stampTs!);
      } catch (err) {
        const record = rowAsRecord(rows.columns, values);
        if (stampTs !== undefined && record.ts === undefined) record.ts = stampTs;
        this.recover(err, start, record);
        continue;
      }
      this.written(start);
    }
    return this.finish();
  }

  // The outcome of the emit being written: reset by `begin`, read by `finish`.
  private maxRecordBytes = 0;
  private emitKept = 0;
  private emitInvalid = 0;
  private emitInvalidExample: unknown;
  private emitTooLarge = 0;
  private emitRepaired = 0;

  private begin(count: number, maxRecordBytes: number): void {
    this.pos = 0;
    this.maxRecordBytes = maxRecordBytes;
    // The ends as written, in a scratch array reused by every emit; copied into the emit's block by `finish`.
    if (this.scratchEnds.length < count) this.scratchEnds = new Uint32Array(count);
    this.emitKept = 0;
    this.emitInvalid = 0;
    this.emitInvalidExample = undefined;
    this.emitTooLarge = 0;
    this.emitRepaired = 0;
  }

  /**
   * After a record's walk threw: a value the walk leaves to cbor-x sends the record through it (`handOver`),
   * anything else leaves the record out as invalid.
   */
  private recover(err: unknown, start: number, record: AgentRecord): void {
    this.pos = start;
    this.repairedInRecord = false;
    if (err === HAND_OVER) {
      try {
        this.handOver(record);
        this.written(start);
        return;
      } catch (handOverErr) {
        this.pos = start;
        err = handOverErr;
      }
    }
    this.emitInvalid++;
    this.emitInvalidExample ??= err;
  }

  /** The record written from `start` is kept, or left out when the record alone would not fit a batch. */
  private written(start: number): void {
    // The one-element batch array's head is one byte: the record alone must fit a batch.
    if (this.pos - start + 1 > this.maxRecordBytes) {
      this.pos = start;
      this.emitTooLarge++;
      return;
    }
    if (this.repairedInRecord) this.emitRepaired++;
    this.scratchEnds[this.emitKept++] = this.pos;
  }

  private finish(): WriteOutcome {
    const kept = this.emitKept;
    const ends = this.scratchEnds;
    // One copy of exactly what was written, into a block recycled after the commit (emit-buffers.ts): the
    // working buffer is reused by the next emit.
    const block = this.blocks.take(this.pos, kept);
    this.buf.copy(block.bytes, 0, 0, this.pos);
    block.ends.set(ends.subarray(0, kept));
    if (this.buf.length > KEPT_BYTES) this.resize(INITIAL_BYTES);
    if (this.scratchEnds.length > KEPT_ENDS) this.scratchEnds = new Uint32Array(KEPT_ENDS);
    const invalidExample = this.emitInvalidExample;
    this.emitInvalidExample = undefined;
    return {
      records: { bytes: block.bytes, ends: block.ends, count: kept },
      invalid: this.emitInvalid,
      invalidExample,
      tooLarge: this.emitTooLarge,
      repaired: this.emitRepaired,
    };
  }

  /**
   * Takes back the memory of written records once nothing reads them any more (their commit copied them into
   * chunks): the next emits reuse it. Records given back must not be read again.
   */
  release(records: EncodedRecords): void {
    this.blocks.give(records.bytes);
  }

  /** The record through the general path (the ingest repair in place, then cbor-x), its bytes appended. */
  private handOver(record: AgentRecord): void {
    const stats = { repaired: 0 };
    const body = encodeRecords([record], stats);
    // encodeRecords wrote a one-element array: its head is the byte 0x81.
    this.room(body.length);
    this.buf.set(body.subarray(1), this.pos);
    this.pos += body.length - 1;
    if (stats.repaired > 0) this.repairedInRecord = true;
  }

  private resize(size: number): void {
    const next = Buffer.allocUnsafeSlow(size);
    if (size > this.pos) this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** Makes room for `n` more bytes. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    this.resize(size);
  }

  // `typeof v === '…'` tests, not a switch over `typeof v`: the optimising compiler turns each test into a
  // check of the value's kind, where a switch calls the typeof builtin and compares the strings.
  private value(v: unknown, depth: number): void {
    if (typeof v === 'number') this.number(v);
    else if (typeof v === 'string') this.string(v);
    else if (typeof v === 'object') {
      if (v === null) {
        this.room(1);
        this.buf[this.pos++] = 0xf6;
      } else this.container(v, depth);
    } else if (typeof v === 'boolean') {
      this.room(1);
      this.buf[this.pos++] = v ? 0xf5 : 0xf4;
    } else if (v === undefined) {
      this.room(1);
      this.buf[this.pos++] = 0xf7;
    } else throw HAND_OVER;
  }

  /**
   * As cbor-x writes a number, except that an integer beyond ±2^32 goes out as a CBOR integer (major type
   * 0/1, 8 bytes) rather than a float64: what the ingest repair did by turning it into a BigInt first.
   */
  private number(v: number): void {
    this.room(9);
    const buf = this.buf;
    let pos = this.pos;
    if (v >>> 0 === v) {
      if (v < 0x18) buf[pos++] = v;
      else if (v < 0x100) {
        buf[pos++] = 0x18;
        buf[pos++] = v;
      } else if (v < 0x10000) {
        buf[pos++] = 0x19;
        buf[pos++] = v >> 8;
        buf[pos++] = v & 0xff;
      } else {
        buf[pos++] = 0x1a;
        this.view.setUint32(pos, v);
        pos += 4;
      }
    } else if (v >> 0 === v) {
      if (v >= -0x18) buf[pos++] = 0x1f - v;
      else if (v >= -0x100) {
        buf[pos++] = 0x38;
        buf[pos++] = ~v;
      } else if (v >= -0x10000) {
        buf[pos++] = 0x39;
        this.view.setUint16(pos, ~v);
        pos += 2;
      } else {
        buf[pos++] = 0x3a;
        this.view.setUint32(pos, ~v);
        pos += 4;
      }
    } else if (v < 0 && v >= -TWO_32 && Math.floor(v) === v) {
      buf[pos++] = 0x3a;
      this.view.setUint32(pos, -1 - v);
      pos += 4;
    } else if (Number.isSafeInteger(v)) {
      // Beyond ±2^32 (the branches above took the rest): a millisecond timestamp, say.
      const magnitude = v > 0 ? v : -1 - v;
      buf[pos++] = v > 0 ? 0x1b : 0x3b;
      this.view.setUint32(pos, Math.floor(magnitude / TWO_32));
      this.view.setUint32(pos + 4, magnitude >>> 0);
      pos += 8;
    } else {
      buf[pos++] = 0xfb;
      this.view.setFloat64(pos, v);
      pos += 8;
    }
    this.pos = pos;
  }

  /** As cbor-x writes a string (its header sized from the UTF-16 length first), lone surrogates repaired. */
  private string(text: string): void {
    let value = text;
    // A short string is checked for lone surrogates as it is written (below); a long one first.
    if (value.length >= 0x40 && !value.isWellFormed()) value = this.repaired(value);
    const strLength = value.length;
    // The head's size from the UTF-16 length, never more than the UTF-8 length needs (that is at least as
    // long), so the text is moved only when it turns out longer. cbor-x guesses one byte up to 31 characters:
    // every 24–31 character string (a sensor path, an ISO timestamp) would then be moved by one byte.
    const headerSize = strLength < 0x18 ? 1 : strLength < 0x100 ? 2 : strLength < 0x10000 ? 3 : 5;
    this.room(headerSize + strLength * 3 + 5);
    const buf = this.buf;
    const position = this.pos;
    let length: number;
    if (strLength < 0x40) {
      let at = position + headerSize;
      for (let i = 0; i < strLength; i++) {
        let c1 = value.charCodeAt(i);
        if (c1 < 0x80) buf[at++] = c1;
        else if (c1 < 0x800) {
          buf[at++] = (c1 >> 6) | 0xc0;
          buf[at++] = (c1 & 0x3f) | 0x80;
        } else if ((c1 & 0xf800) === 0xd800) {
          const c2 = value.charCodeAt(i + 1);
          // A lone surrogate: the string is written again, repaired (its place is not taken yet).
          if (c1 > 0xdbff || (c2 & 0xfc00) !== 0xdc00) {
            this.string(this.repaired(value));
            return;
          }
          i++;
          c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
          buf[at++] = (c1 >> 18) | 0xf0;
          buf[at++] = ((c1 >> 12) & 0x3f) | 0x80;
          buf[at++] = ((c1 >> 6) & 0x3f) | 0x80;
          buf[at++] = (c1 & 0x3f) | 0x80;
        } else {
          buf[at++] = (c1 >> 12) | 0xe0;
          buf[at++] = ((c1 >> 6) & 0x3f) | 0x80;
          buf[at++] = (c1 & 0x3f) | 0x80;
        }
      }
      length = at - position - headerSize;
    } else {
      length = buf.write(value, position + headerSize, strLength * 3, 'utf8');
    }
    let pos = position;
    if (length < 0x18) buf[pos++] = 0x60 | length;
    else if (length < 0x100) {
      if (headerSize < 2) buf.copyWithin(pos + 2, pos + 1, pos + 1 + length);
      buf[pos++] = 0x78;
      buf[pos++] = length;
    } else if (length < 0x10000) {
      if (headerSize < 3) buf.copyWithin(pos + 3, pos + headerSize, pos + headerSize + length);
      buf[pos++] = 0x79;
      buf[pos++] = length >> 8;
      buf[pos++] = length & 0xff;
    } else {
      if (headerSize < 5) buf.copyWithin(pos + 5, pos + headerSize, pos + headerSize + length);
      buf[pos++] = 0x7a;
      this.view.setUint32(pos, length);
      pos += 4;
    }
    this.pos = pos + length;
  }

  /** `text` with each lone surrogate replaced by U+FFFD, noted for the record being written. */
  private repaired(text: string): string {
    this.repairedInRecord = true;
    return text.toWellFormed();
  }

  private container(v: object, depth: number): void {
    const made = (v as { constructor?: unknown }).constructor;
    if (made === Object) this.object(v as Record<string, unknown>, depth);
    else if (made === Array) this.array(v as unknown[], depth);
    else if (made === Uint8Array || made === Buffer) this.bytes(v as Uint8Array);
    else throw HAND_OVER;
  }

  private tooDeep(depth: number): void {
    if (depth > MAX_NESTING) throw new AgentError('RECORD_INVALID', `record nested deeper than ${MAX_NESTING - 1} levels`);
  }

  /** As cbor-x writes a plain object: a map with a 16-bit count, filled in after the entries. */
  private object(record: Record<string, unknown>, depth: number): void {
    this.tooDeep(depth);
    if ((record as { constructor?: unknown }).constructor !== Object) throw HAND_OVER;
    this.room(3);
    const head = this.pos;
    this.buf[head] = 0xb9;
    this.pos += 3;
    let size = 0;
    // A record's keys are compared first with the last record's, place by place (the same string, in a
    // stream's records, whose keys come from one hidden class or one statement): a hit costs a comparison
    // of two references instead of a hash lookup, which was a quarter of the walk.
    const byPlace = depth === 2;
    for (const key in record) {
      let known: Uint8Array | undefined;
      if (byPlace && size < KEYS_BY_PLACE && this.lastKeys[size] === key) known = this.lastKeyBytes[size];
      else {
        known = this.keys.get(key);
        if (known !== undefined && byPlace && size < KEYS_BY_PLACE) {
          this.lastKeys[size] = key;
          this.lastKeyBytes[size] = known;
        }
      }
      if (known !== undefined) {
        this.room(known.length);
        const buf = this.buf;
        for (let i = 0, at = this.pos; i < known.length; i++) buf[at + i] = known[i]!;
        this.pos += known.length;
      } else {
        // A key to repair may merge with another: the general path knows how.
        if (!key.isWellFormed()) throw HAND_OVER;
        const at = this.pos;
        this.string(key);
        if (key.length <= MAX_KEPT_KEY) {
          if (this.keys.size >= MAX_KEPT_KEYS) this.keys.clear();
          // A copy: the working buffer is written over by the next emit.
          this.keys.set(key, Uint8Array.prototype.slice.call(this.buf, at, this.pos));
        }
      }
      this.value(record[key], depth + 1);
      size++;
    }
    if (size > 0xffff) throw HAND_OVER;
    this.buf[head + 1] = size >> 8;
    this.buf[head + 2] = size & 0xff;
  }

  /**
   * The CBOR of each column's key for an emit of rows; undefined when the rows' records as objects would not
   * have exactly these keys in this order (`ordinaryColumns`), or a key has a lone surrogate to repair.
   */
  private columnKeys(columns: readonly string[]): Uint8Array[] | undefined {
    if (!ordinaryColumns(columns)) return undefined;
    const keys: Uint8Array[] = [];
    for (let j = 0; j < columns.length; j++) {
      const bytes = this.keyBytes(columns[j]!);
      if (bytes === undefined) return undefined;
      keys.push(bytes);
    }
    return keys;
  }

  /** A key's CBOR, from the kept keys or written now (and kept); undefined for a key with a lone surrogate. */
  private keyBytes(key: string): Uint8Array | undefined {
    const known = this.keys.get(key);
    if (known !== undefined) return known;
    if (!key.isWellFormed()) return undefined;
    // Written past what the emit holds so far, copied, and the place given back.
    const at = this.pos;
    this.string(key);
    const bytes = Uint8Array.prototype.slice.call(this.buf, at, this.pos);
    this.pos = at;
    if (key.length <= MAX_KEPT_KEY) {
      if (this.keys.size >= MAX_KEPT_KEYS) this.keys.clear();
      this.keys.set(key, bytes);
    }
    return bytes;
  }

  /** One row as `object` writes the record `rowAsRecord` makes of it, `ts` appended when stamped. */
  private row(keys: readonly Uint8Array[], values: readonly unknown[], stampKey: Uint8Array | undefined, stampTs: number): void {
    const count = keys.length;
    const size = stampKey === undefined ? count : count + 1;
    if (size > 0xffff) throw HAND_OVER;
    this.room(3);
    const head = this.pos;
    this.buf[head] = 0xb9;
    this.buf[head + 1] = size >> 8;
    this.buf[head + 2] = size & 0xff;
    this.pos += 3;
    for (let j = 0; j < count; j++) {
      this.key(keys[j]!);
      // Numbers written here, not passed through `value`, as `array` does: the row's numbers stay unboxed.
      const v = values[j];
      if (typeof v === 'number') this.number(v);
      else this.value(v, 3);
    }
    if (stampKey !== undefined) {
      this.key(stampKey);
      this.number(stampTs);
    }
  }

  /** A key's CBOR copied in: a loop, since most keys are a few bytes and `set` costs a call. */
  private key(bytes: Uint8Array): void {
    const length = bytes.length;
    this.room(length);
    const buf = this.buf;
    for (let i = 0, at = this.pos; i < length; i++) buf[at + i] = bytes[i]!;
    this.pos += length;
  }

  private array(list: unknown[], depth: number): void {
    this.tooDeep(depth);
    const length = list.length;
    this.room(5);
    const buf = this.buf;
    if (length < 0x18) buf[this.pos++] = 0x80 | length;
    else if (length < 0x100) {
      buf[this.pos++] = 0x98;
      buf[this.pos++] = length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0x99;
      buf[this.pos++] = length >> 8;
      buf[this.pos++] = length & 0xff;
    } else {
      buf[this.pos++] = 0x9a;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
    // Numbers are written here, not passed through `value`: that keeps an array of floats unboxed.
    for (let i = 0; i < length; i++) {
      const item: unknown = list[i];
      if (typeof item === 'number') this.number(item);
      else this.value(item, depth + 1);
    }
  }

  private bytes(data: Uint8Array): void {
    const length = data.byteLength;
    this.room(5 + length);
    const buf = this.buf;
    if (length < 0x18) buf[this.pos++] = 0x40 + length;
    else if (length < 0x100) {
      buf[this.pos++] = 0x58;
      buf[this.pos++] = length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0x59;
      buf[this.pos++] = length >> 8;
      buf[this.pos++] = length & 0xff;
    } else {
      buf[this.pos++] = 0x5a;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
    buf.set(data, this.pos);
    this.pos += length;
  }
}

/**
 * The batch body decoder: strict (RFC 8949 well-formed and valid) and complete for what docs/wire-format.md
 * allows, so that what a receiver in another language accepts this one accepts too, and what it must refuse
 * this one refuses, with a reason. A general-purpose decoder does neither: it renames or drops keys such as
 * `__proto__`, replaces invalid UTF-8 silently and refuses indefinite-length strings.
 *
 * What it reads (docs/wire-format.md, "Decisions"):
 * - integers in any argument width; beyond ±(2^53 − 1) as BigInt;
 * - byte and text strings, arrays and maps, of definite or indefinite length; text strictly UTF-8 (each chunk
 *   of an indefinite one on its own), a leading U+FEFF kept as a character;
 * - maps with text keys only, no key twice; a map becomes a plain object whose keys are exactly the wire's,
 *   `__proto__` included (an own property, not the prototype);
 * - tags 0 (RFC 3339 text, kept as text), 1 (epoch seconds → Date), 2 and 3 (bignums), 64 (bytes), and
 *   55799 (self-described CBOR) in front of the body; any other tag is refused;
 * - false, true, null, undefined, the other simple values (as CborSimple), half, single and double floats,
 *   non-finite ones included;
 * - at most MAX_NESTING levels of arrays and maps, the batch array included.
 */
import { scanBody } from './cbor-scan.ts';
import { malformed } from './malformed.ts';

/** Deepest nesting of arrays and maps in a batch body, the batch array being level 1 and a record level 2. */
export const MAX_NESTING = 256;
/** Most nesting a receiver may be configured to read (receiver.max_nesting): the decoder recurses. */
export const MOST_NESTING = 1000;
/** Largest bignum (tags 2 and 3) accepted, in bytes of magnitude: 1024 bits. */
export const MAX_BIGNUM_BYTES = 128;
/** Dates (tag 1) a JavaScript Date holds: ±8.64e15 ms around 1970. */
const MAX_DATE_MS = 8.64e15;

/** A CBOR simple value without a JavaScript counterpart (0–19, 32–255). undefined (23) is `undefined`. */
export class CborSimple {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

export interface DecodeOptions {
  /**
   * `strict` (the receiver): invalid UTF-8 in a text string rejects the body. `replace` (the queue reading its
   * own chunks back, which a build before the ingest repair may have written): it becomes U+FFFD.
   */
  text: 'strict' | 'replace';
  /** Deepest nesting read (default MAX_NESTING): the receiver's `receiver.max_nesting`. */
  maxNesting?: number;
  /**
   * Most records (elements of the batch array) read: checked, with the nesting, by a walk over the bytes
   * that builds nothing (`scanBody`) before anything is materialised. Absent: no such walk.
   */
  maxRecords?: number;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const BREAK = 0xff;
const SAFE = Number.MAX_SAFE_INTEGER;

class Reader {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly strictText: boolean;
  private readonly maxNesting: number;
  pos = 0;

  constructor(bytes: Uint8Array, options: DecodeOptions) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.strictText = options.text === 'strict';
    this.maxNesting = options.maxNesting ?? MAX_NESTING;
  }

  private invalid(why: string, at = this.pos): never {
    throw malformed('cbor-invalid', `${why} at body byte ${at}`);
  }

  private need(n: number): void {
    if (n > this.bytes.length - this.pos) this.invalid(`item runs past the end (${n} more bytes needed)`);
  }

  private byte(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }

  /** The argument of a head whose additional information is `info` (not 31); a BigInt only beyond 2^53 − 1. */
  private argument(info: number): number | bigint {
    if (info < 24) return info;
    const at = this.pos;
    switch (info) {
      case 24:
        return this.byte();
      case 25:
        this.need(2);
        this.pos += 2;
        return this.view.getUint16(at);
      case 26:
        this.need(4);
        this.pos += 4;
        return this.view.getUint32(at);
      case 27: {
        this.need(8);
        this.pos += 8;
        const big = this.view.getBigUint64(at);
        return big <= BigInt(SAFE) ? Number(big) : big;
      }
      default:
        return this.invalid(`reserved additional information ${info}`, at - 1);
    }
  }

  /** A definite length, which must fit in what is left of the body (`unit` bytes at least per element). */
  private length(info: number, unit: number): number {
    const at = this.pos - 1;
    const n = this.argument(info);
    if (typeof n === 'bigint' || n * unit > this.bytes.length - this.pos) this.invalid(`length ${n} runs past the end`, at);
    return n;
  }

  item(depth: number): unknown {
    const at = this.pos;
    const initial = this.byte();
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0:
        if (info === 31) this.invalid('indefinite length on an integer', at);
        return this.argument(info);
      case 1: {
        if (info === 31) this.invalid('indefinite length on an integer', at);
        const n = this.argument(info);
        return typeof n === 'number' && n < SAFE ? -1 - n : -1n - BigInt(n);
      }
      case 2:
        return info === 31 ? this.chunked(2, at) : this.byteString(this.length(info, 1));
      case 3:
        return info === 31 ? this.chunked(3, at) : this.text(this.length(info, 1));
      case 4:
        return this.array(info, depth + 1, at);
      case 5:
        return this.map(info, depth + 1, at);
      case 6:
        return this.tag(info, depth, at);
      default:
        return this.simple(info, at);
    }
  }

  private byteString(n: number): Uint8Array {
    // A view into the body, not a copy: a copy gives each byte string an ArrayBuffer and a backing store of
    // its own, ≈3× the heap per string, and a body of empty byte strings is the costliest CBOR there is.
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private text(n: number): string {
    const start = this.pos;
    this.pos += n;
    if (n < 32) {
      // Short ASCII (most keys and values) without a TextDecoder call.
      let s = '';
      let i = start;
      for (; i < start + n; i++) {
        const c = this.bytes[i]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === start + n) return s;
    }
    const slice = this.bytes.subarray(start, start + n);
    if (!this.strictText) return lenientUtf8.decode(slice);
    try {
      return fatalUtf8.decode(slice);
    } catch (cause) {
      throw malformed('invalid-utf8', `text string of ${n} bytes at body byte ${start} is not valid UTF-8`, cause);
    }
  }

  /** An indefinite-length byte or text string: definite chunks of the same major type up to the break. */
  private chunked(major: 2 | 3, at: number): Uint8Array | string {
    const parts: (Uint8Array | string)[] = [];
    for (;;) {
      const chunkAt = this.pos;
      const initial = this.byte();
      if (initial === BREAK) break;
      if (initial >> 5 !== major || (initial & 0x1f) === 31) this.invalid(`chunk of another kind in an indefinite-length string started at ${at}`, chunkAt);
      const n = this.length(initial & 0x1f, 1);
      parts.push(major === 2 ? this.byteString(n) : this.text(n));
    }
    if (major === 3) return (parts as string[]).join('');
    return new Uint8Array(Buffer.concat(parts as Uint8Array[]));
  }

  private array(info: number, depth: number, at: number): unknown[] {
    if (depth > this.maxNesting) throw malformed('too-deep', `array at body byte ${at} is nested deeper than ${this.maxNesting} levels`);
    if (info !== 31) {
      const n = this.length(info, 1);
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = this.item(depth);
      return out;
    }
    const out: unknown[] = [];
    while (this.peek() !== BREAK) out.push(this.item(depth));
    this.pos++;
    return out;
  }

  private map(info: number, depth: number, at: number): Record<string, unknown> {
    if (depth > this.maxNesting) throw malformed('too-deep', `map at body byte ${at} is nested deeper than ${this.maxNesting} levels`);
    const out: Record<string, unknown> = {};
    const entry = () => {
      const keyAt = this.pos;
      const initial = this.peek();
      if (initial >> 5 !== 3) throw malformed('bad-key', `map key at body byte ${keyAt} is not a text string (major type ${initial >> 5})`);
      const key = this.item(depth) as string;
      if (Object.hasOwn(out, key)) throw malformed('duplicate-key', `map at body byte ${at} has the key ${JSON.stringify(key)} twice`);
      const value = this.item(depth);
      // `__proto__` is an ordinary key on the wire: an own property here, never the object's prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    };
    if (info !== 31) {
      const n = this.length(info, 2);
      for (let i = 0; i < n; i++) entry();
    } else {
      while (this.peek() !== BREAK) entry();
      this.pos++;
    }
    return out;
  }

  private tag(info: number, depth: number, at: number): unknown {
    if (info === 31) this.invalid('indefinite length on a tag', at);
    const tag = this.argument(info);
    const content = this.peek();
    const major = content >> 5;
    const bad = (what: string): never => {
      throw malformed('bad-tag-content', `tag ${tag} at body byte ${at}: ${what}`);
    };
    switch (tag) {
      case 0: {
        if (major !== 3) bad('content is not a text string');
        const text = this.item(depth) as string;
        if (!RFC3339.test(text)) bad(`${JSON.stringify(text)} is not an RFC 3339 date/time`);
        return text;
      }
      case 1: {
        if (major !== 0 && major !== 1 && content !== 0xf9 && content !== 0xfa && content !== 0xfb) bad('content is not a number');
        const seconds = this.item(depth);
        const ms = typeof seconds === 'number' ? seconds * 1000 : Number.NaN;
        if (!(Math.abs(ms) <= MAX_DATE_MS)) bad(`${String(seconds)} seconds is not a time a date holds (±8.64e12 s)`);
        return new Date(ms);
      }
      case 2:
      case 3: {
        if (major !== 2) bad('content is not a byte string');
        const magnitude = this.item(depth) as Uint8Array;
        if (magnitude.length > MAX_BIGNUM_BYTES) bad(`bignum of ${magnitude.length} bytes (at most ${MAX_BIGNUM_BYTES})`);
        const n = magnitude.length === 0 ? 0n : BigInt(`0x${Buffer.from(magnitude).toString('hex')}`);
        const value = tag === 2 ? n : -1n - n;
        return value <= BigInt(SAFE) && value >= -BigInt(SAFE) ? Number(value) : value;
      }
      case 64:
        if (major !== 2) bad('content is not a byte string');
        return this.item(depth);
      default:
        throw malformed('unsupported-tag', `tag ${tag} at body byte ${at} is not one a batch may carry (0, 1, 2, 3, 64)`);
    }
  }

  private simple(info: number, at: number): unknown {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24: {
        const value = this.byte();
        if (value < 32) this.invalid(`simple value ${value} in two bytes`, at);
        return new CborSimple(value);
      }
      case 25: {
        this.need(2);
        const half = this.view.getUint16(this.pos);
        this.pos += 2;
        return halfFloat(half);
      }
      case 26:
        this.need(4);
        this.pos += 4;
        return this.view.getFloat32(this.pos - 4);
      case 27:
        this.need(8);
        this.pos += 8;
        return this.view.getFloat64(this.pos - 8);
      case 31:
        return this.invalid('break outside an indefinite-length item', at);
      default:
        if (info < 20) return new CborSimple(info);
        return this.invalid(`reserved additional information ${info}`, at);
    }
  }

  peek(): number {
    this.need(1);
    return this.bytes[this.pos]!;
  }

  get done(): boolean {
    return this.pos === this.bytes.length;
  }
}

function halfFloat(half: number): number {
  const exponent = (half >> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  const value = exponent === 0 ? mantissa * 2 ** -24 : exponent !== 31 ? (mantissa + 1024) * 2 ** (exponent - 25) : mantissa === 0 ? Infinity : Number.NaN;
  return half & 0x8000 ? -value : value;
}

/**
 * A batch body: one array (optionally behind tag 55799) of maps, nothing after it. Throws ENVELOPE_MALFORMED
 * with the reason of the first rule broken, in this order: the item itself (well-formed, valid, within the
 * limits), nothing after it, an array, each element a map.
 */
export function decodeBody(bytes: Uint8Array, options: DecodeOptions): Record<string, unknown>[] {
  if (options.maxRecords !== undefined) scanBody(bytes, options.maxRecords, options.maxNesting ?? MAX_NESTING);
  const reader = new Reader(bytes, options);
  // Self-described CBOR (tag 55799, d9 d9 f7) is allowed in front of the body, and only there.
  if (bytes.length >= 3 && bytes[0] === 0xd9 && bytes[1] === 0xd9 && bytes[2] === 0xf7) reader.pos = 3;
  const value = reader.item(0);
  if (!reader.done) throw malformed('trailing-cbor', `${bytes.length - reader.pos} bytes after the batch array (body byte ${reader.pos})`);
  if (!Array.isArray(value)) throw malformed('not-an-array', 'batch body is not a CBOR array');
  for (let i = 0; i < value.length; i++) {
    const record: unknown = value[i];
    if (typeof record !== 'object' || record === null || Object.getPrototypeOf(record) !== Object.prototype) {
      throw malformed('record-not-map', `record ${i} of the batch is not a CBOR map`);
    }
  }
  return value as Record<string, unknown>[];
}

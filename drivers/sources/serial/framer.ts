import type { Framing } from './options.ts';

/** Why bytes were thrown away; each is a counter of its own and part of `bad_frames`. */
export type DiscardReason = 'partial_at_open' | 'overlong' | 'garbage' | 'truncated';

export interface FrameHandler {
  /**
   * A complete frame (delimiters and length prefixes removed); `consumed` is the stream offset just past it.
   * The bytes are only valid during the call: copy them to keep them.
   */
  frame(bytes: Buffer, consumed: number): void;
  /** Bytes discarded as one bad frame; `sample` is (the start of) what was discarded, for the log. */
  discard(reason: DiscardReason, sample: Buffer): void;
}

const EMPTY = Buffer.alloc(0);
const CR = 0x0d;

/**
 * Cuts a byte stream into frames. Bytes arrive in arbitrary chunks, so a frame may span several pushes; what
 * is kept between pushes is bounded by max_frame_bytes. `consumed` counts every byte that was framed or
 * discarded (the source's informational cursor). `reopened` is called at each (re)open: whatever was in
 * flight is cut off, and the first frame after an open is suspect because the line was joined mid-stream.
 */
export abstract class Framer {
  private pushed = 0;
  /** Stream offset of data[0] during a scan. */
  private base = 0;
  private rest: Buffer = EMPTY;
  /** Whether the framer has seen a frame boundary since the port opened. */
  protected synced = false;
  /** Inside a run of discarded bytes that was already reported, so the run counts as one bad frame. */
  protected discarding = false;
  protected readonly out: FrameHandler;

  constructor(out: FrameHandler) {
    this.out = out;
  }

  /** Bytes framed or discarded so far; the stream offset just past the last complete frame or discard. */
  get consumed(): number {
    return this.pushed - this.rest.length;
  }

  push(chunk: Buffer): void {
    const data = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    this.pushed += chunk.length;
    this.base = this.pushed - data.length;
    const kept = this.scan(data);
    this.rest = kept === data.length ? EMPTY : data.subarray(kept);
  }

  reopened(): void {
    if (this.rest.length > 0 && this.synced && !this.discarding) this.out.discard('truncated', this.rest);
    this.rest = EMPTY;
    this.synced = false;
    this.discarding = false;
  }

  /** Processes `data`, returns the offset from which bytes must be kept for the next push. */
  protected abstract scan(data: Buffer): number;

  /** Hands over a frame that ends (delimiter included) at offset `end` of the scanned data. */
  protected emit(frame: Buffer, end: number): void {
    this.discarding = false;
    this.out.frame(frame, this.base + end);
  }

  /** Drops bytes, reporting them once per run of bad bytes. */
  protected drop(reason: DiscardReason, bytes: Buffer): void {
    if (bytes.length === 0 || this.discarding) return;
    this.discarding = true;
    this.out.discard(reason, bytes);
  }

  protected lostSync(): DiscardReason {
    return this.synced ? 'garbage' : 'partial_at_open';
  }
}

/** Frames end with a delimiter (lines, regex, json_lines). Bytes before the first delimiter after an open are dropped. */
class DelimitedFramer extends Framer {
  private readonly delimiter: Buffer;
  private readonly max: number;

  constructor(out: FrameHandler, delimiter: string, max: number) {
    super(out);
    this.delimiter = Buffer.from(delimiter, 'utf8');
    this.max = max;
  }

  protected scan(data: Buffer): number {
    const d = this.delimiter;
    let pos = 0;
    for (let at = data.indexOf(d, pos); at >= 0; at = data.indexOf(d, pos)) {
      const frame = data.subarray(pos, at);
      const next = at + d.length;
      if (!this.synced) {
        this.synced = true;
        // A lone "\r" before the first "\n" is the end of a line, not a partial frame.
        this.drop('partial_at_open', frame.length === 1 && frame[0] === CR ? frame.subarray(1) : frame);
      } else if (frame.length > this.max) {
        this.drop('overlong', frame);
      } else if (!this.discarding) {
        this.emit(frame, next);
      }
      // The delimiter closes any run of discarded bytes: the next frame starts clean.
      this.discarding = false;
      pos = next;
    }
    // The pending bytes may end with the first bytes of a split delimiter: a frame of exactly max_frame_bytes
    // waits for the rest of it rather than being judged overlong by how the chunks fell.
    const pending = data.length - pos;
    if (pending <= this.max + d.length - 1) return pos;
    // No delimiter within max_frame_bytes: discard, keeping a tail that could be the start of a split delimiter.
    const keepFrom = data.length - (d.length - 1);
    this.drop(this.synced ? 'overlong' : 'partial_at_open', data.subarray(pos, keepFrom));
    return keepFrom;
  }
}

const DOLLAR = 0x24;
const BANG = 0x21;
const LF = 0x0a;

function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== CR && b !== LF && b !== 0x20 && b !== 0x09 && b !== 0) return false;
  return true;
}

/**
 * NMEA 0183: a sentence starts at `$` or `!` and ends at the line feed. A start marker inside a sentence means
 * the previous one was cut off (it is discarded as truncated, the new one kept); bytes outside sentences other
 * than line ends are garbage.
 */
class NmeaFramer extends Framer {
  private readonly max: number;
  private inSentence = false;

  constructor(out: FrameHandler, max: number) {
    super(out);
    this.max = max;
  }

  override reopened(): void {
    super.reopened();
    this.inSentence = false;
  }

  protected scan(data: Buffer): number {
    let pos = 0;
    while (pos < data.length) {
      if (!this.inSentence) {
        let start = pos;
        while (start < data.length && data[start] !== DOLLAR && data[start] !== BANG) start++;
        const gap = data.subarray(pos, start);
        if (!isBlank(gap)) this.drop(this.lostSync(), gap);
        if (start === data.length) return start;
        pos = start;
        this.synced = true;
        this.inSentence = true;
        this.discarding = false;
      }
      let end = pos + 1;
      while (end < data.length && data[end] !== LF && data[end] !== DOLLAR && data[end] !== BANG) end++;
      if (end === data.length) {
        // A "\r" whose "\n" is still on the way is a line end, not part of the sentence.
        if (end - pos <= this.max + (data[end - 1] === CR ? 1 : 0)) return pos;
        // Too long already: discard it, and (through `discarding`) its tail up to the next start marker.
        this.drop('overlong', data.subarray(pos, end));
        this.inSentence = false;
        return end;
      }
      this.inSentence = false;
      if (data[end] !== LF) {
        // A new start marker before the line feed: the sentence in hand was cut off.
        this.drop('truncated', data.subarray(pos, end));
        pos = end;
        continue;
      }
      const sentence = data.subarray(pos, data[end - 1] === CR ? end - 1 : end);
      if (sentence.length > this.max) this.drop('overlong', sentence);
      else this.emit(sentence, end + 1);
      this.discarding = false;
      pos = end + 1;
    }
    return pos;
  }
}

function hexBytes(hex: string | undefined): Buffer {
  return hex === undefined ? EMPTY : Buffer.from(hex, 'hex');
}

/**
 * Binary frames, optionally aligned on a sync pattern: before each frame the framer expects the sync bytes,
 * and when they are not there it discards up to the next occurrence.
 */
abstract class BinaryFramer extends Framer {
  protected readonly sync: Buffer;

  constructor(out: FrameHandler, sync: string | undefined) {
    super(out);
    this.sync = hexBytes(sync);
  }

  /** Moves to the next sync pattern at or after `pos`; returns its offset, or -1 when more bytes are needed. */
  protected align(data: Buffer, pos: number): number {
    const s = this.sync;
    if (s.length === 0) return pos;
    const at = data.indexOf(s, pos);
    const dropTo = at >= 0 ? at : Math.max(pos, data.length - (s.length - 1));
    if (dropTo > pos) this.drop(this.lostSync(), data.subarray(pos, dropTo));
    if (at < 0) return -dropTo - 1;
    this.synced = true;
    return at;
  }
}

class FixedFramer extends BinaryFramer {
  private readonly length: number;

  constructor(out: FrameHandler, length: number, sync: string | undefined) {
    super(out, sync);
    this.length = length;
  }

  protected scan(data: Buffer): number {
    let pos = 0;
    for (;;) {
      const at = this.align(data, pos);
      if (at < 0) return -at - 1;
      pos = at;
      if (data.length - pos < this.length) return pos;
      this.emit(data.subarray(pos, pos + this.length), pos + this.length);
      pos += this.length;
    }
  }
}

class LengthPrefixedFramer extends BinaryFramer {
  private readonly prefix: 1 | 2 | 4;
  private readonly little: boolean;
  private readonly includesHeader: boolean;
  private readonly maxLength: number;

  constructor(out: FrameHandler, framing: Extract<Framing, { mode: 'length_prefixed' }>, maxFrameBytes: number) {
    super(out, framing.sync);
    this.prefix = framing.prefix_bytes;
    this.little = framing.endian === 'little';
    this.includesHeader = framing.length_includes_prefix;
    this.maxLength = Math.min(framing.max_length ?? maxFrameBytes, maxFrameBytes);
  }

  private readLength(data: Buffer, at: number): number {
    if (this.prefix === 1) return data[at]!;
    if (this.prefix === 2) return this.little ? data.readUInt16LE(at) : data.readUInt16BE(at);
    return this.little ? data.readUInt32LE(at) : data.readUInt32BE(at);
  }

  protected scan(data: Buffer): number {
    const header = this.sync.length + this.prefix;
    let pos = 0;
    for (;;) {
      const at = this.align(data, pos);
      if (at < 0) return -at - 1;
      pos = at;
      if (data.length - pos < header) return pos;
      const length = this.readLength(data, pos + this.sync.length) - (this.includesHeader ? header : 0);
      if (length < 0 || length > this.maxLength) {
        // A length this framer cannot believe: the stream is out of step. Skip one byte and look again.
        this.drop('overlong', data.subarray(pos, Math.min(data.length, pos + header + 16)));
        pos += 1;
        continue;
      }
      if (data.length - pos < header + length) return pos;
      this.emit(data.subarray(pos + header, pos + header + length), pos + header + length);
      pos += header + length;
    }
  }
}

export function createFramer(framing: Framing, maxFrameBytes: number, out: FrameHandler): Framer {
  switch (framing.mode) {
    case 'lines':
    case 'regex':
    case 'json_lines':
      return new DelimitedFramer(out, framing.delimiter, maxFrameBytes);
    case 'nmea':
      return new NmeaFramer(out, maxFrameBytes);
    case 'fixed':
      return new FixedFramer(out, framing.length, framing.sync);
    case 'length_prefixed':
      return new LengthPrefixedFramer(out, framing, maxFrameBytes);
  }
}

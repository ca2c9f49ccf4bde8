/**
 * MLLP framing: <VT> message <FS><CR> (0x0B … 0x1C 0x0D). Bytes outside a frame are counted and skipped; a
 * frame over the byte cap is read to its end but only its head is kept (enough for the MSH segment, so the
 * refusal can name the message). Memory per connection: at most the cap plus one read.
 */
const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;
/** Of an oversized frame, the bytes kept to answer it (the MSH segment is well within this). */
const HEAD_BYTES = 4096;

export type Frame = { kind: 'message'; bytes: Buffer } | { kind: 'oversized'; head: Buffer; bytes: number };

export class MllpFramer {
  private readonly maxBytes: number;
  private inFrame = false;
  private parts: Buffer[] = [];
  private length = 0;
  private oversized = false;
  /** The previous chunk ended with FS: the frame ends whether or not a CR follows. */
  private afterFs = false;
  /** Bytes seen outside any frame (noise, a sender that does not speak MLLP). */
  strayBytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes held for the frame being read. */
  get buffered(): number {
    return this.length;
  }

  /** Feeds bytes; returns the frames they completed, in order. */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let at = 0;
    if (this.afterFs) {
      this.afterFs = false;
      if (chunk[0] === CR) at = 1;
    }
    while (at < chunk.length) {
      if (!this.inFrame) {
        const start = chunk.indexOf(VT, at);
        this.strayBytes += (start < 0 ? chunk.length : start) - at;
        if (start < 0) break;
        this.inFrame = true;
        at = start + 1;
        continue;
      }
      const end = chunk.indexOf(FS, at);
      this.take(chunk.subarray(at, end < 0 ? chunk.length : end));
      if (end < 0) break;
      frames.push(this.finish());
      at = end + 1;
      if (at === chunk.length) this.afterFs = true;
      else if (chunk[at] === CR) at++;
    }
    return frames;
  }

  private take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.length + bytes.length > this.maxBytes && !this.oversized) {
      this.oversized = true;
      const head = Buffer.concat([...this.parts, bytes]).subarray(0, HEAD_BYTES);
      this.parts = [Buffer.from(head)];
    } else if (!this.oversized) {
      this.parts.push(bytes);
    }
    this.length += bytes.length;
  }

  private finish(): Frame {
    const frame: Frame = this.oversized
      ? { kind: 'oversized', head: this.parts[0] ?? Buffer.alloc(0), bytes: this.length }
      : { kind: 'message', bytes: Buffer.concat(this.parts, this.length) };
    this.inFrame = false;
    this.parts = [];
    this.length = 0;
    this.oversized = false;
    return frame;
  }
}

/** Wraps a message for sending. */
export function mllpFrame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.of(VT), message, Buffer.of(FS, CR)]);
}

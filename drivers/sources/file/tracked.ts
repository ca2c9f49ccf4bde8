import type { FileHandle } from 'node:fs/promises';
import type { Cursor } from '../../../agent/sdk/index.ts';
import { createLineDecoder, type LineDecoder } from './formats.ts';
import { EMPTY_HEAD, HEAD_BYTES, type Head, firstLine, headOf, startsWith } from './identity.ts';
import type { FileFormat } from './options.ts';

/** One complete line read from a file: its bytes (without the newline), where it starts and where the next begins. */
export interface Line {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** What the cursor keeps of a file. */
export interface FilePosition {
  path: string;
  dev: number;
  ino: number;
  offset: number;
  head_len: number;
  head: string;
}

export function isFilePosition(value: Cursor): value is FilePosition & { [k: string]: Cursor } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, Cursor>;
  return (
    typeof v.path === 'string' &&
    typeof v.dev === 'number' &&
    typeof v.ino === 'number' &&
    typeof v.offset === 'number' &&
    typeof v.head_len === 'number' &&
    typeof v.head === 'string'
  );
}

/**
 * A file being followed, held open by its descriptor so that it can still be read after it was renamed or
 * deleted (rotation). `offset` is where the next unread line starts: every line before it was handed on (as a
 * record, or counted as bad or too long). Bytes after it are re-read if the source restarts, so a partial
 * last line simply waits there for its newline.
 */
export class TrackedFile {
  readonly dev: number;
  readonly ino: number;
  readonly key: string;
  /** The path it was found at (what records name), even after a rotation renamed it. */
  readonly path: string;
  fh: FileHandle;
  offset: number;
  head: Head;
  decoder: LineDecoder;
  /** When the path stopped leading to this file (renamed or deleted); it is still read until drained. */
  rotatedAt: number | undefined;
  /** A copy left by copytruncate: read to its end from the truncated file's offset, then forgotten at once. */
  isCopy = false;
  /** A copy that must be read to its end before this file is read on (copytruncate: older lines first). */
  predecessor: TrackedFile | undefined;
  /** The size at the last look, to skip files that did not change. */
  lastSize = -1;
  /** Bytes after `offset` already read but without their newline yet, and whether an overlong line is being skipped. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipping = false;
  private readonly format: FileFormat;

  constructor(found: { path: string; fh: FileHandle; dev: number; ino: number }, offset: number, head: Head, format: FileFormat) {
    this.path = found.path;
    this.fh = found.fh;
    this.dev = found.dev;
    this.ino = found.ino;
    this.key = `${found.dev}:${found.ino}`;
    this.offset = offset;
    this.head = head;
    this.format = format;
    this.decoder = createLineDecoder(format);
  }

  /** Bytes read after the last newline: a line still being written. */
  get hasUnfinishedLine(): boolean {
    return this.pendingBytes > 0;
  }

  get position(): FilePosition {
    return { path: this.path, dev: this.dev, ino: this.ino, offset: this.offset, head_len: this.head.len, head: this.head.hash };
  }

  /** Before reading past the start of a CSV file with a header: its first line names the columns. */
  async prepare(maxLineBytes: number): Promise<void> {
    if (this.offset > 0 && this.decoder.needsHeader) {
      const header = await firstLine(this.fh, maxLineBytes);
      if (header !== undefined) this.decoder.header(header);
    }
  }

  /**
   * Checks the file against what was read of it: `truncated` when it is now shorter than what was read, or
   * no longer starts with the bytes it started with (truncated and written again past the old offset).
   * Extends the head while the file is shorter than HEAD_BYTES.
   */
  async check(): Promise<{ size: number; truncated: boolean }> {
    const { size } = await this.fh.stat();
    if (size === this.lastSize) return { size, truncated: false };
    this.lastSize = size;
    const read = this.offset + this.pendingBytes;
    if (size < read || !(await startsWith(this.fh, size, this.head))) return { size, truncated: true };
    if (this.head.len < HEAD_BYTES && size > this.head.len) this.head = await headOf(this.fh, size);
    return { size, truncated: false };
  }

  /** Starts over from byte 0 (the file was truncated): nothing of the old content is kept. */
  restart(): void {
    this.offset = 0;
    this.head = EMPTY_HEAD;
    this.pending = [];
    this.pendingBytes = 0;
    this.skipping = false;
    this.lastSize = -1;
    this.decoder = createLineDecoder(this.format);
  }

  /**
   * Reads up to `bytes` more and hands each complete line to `line` (overlong ones to `tooLong`), in order.
   * Returns the number of bytes read (0 at the end of the file).
   */
  async read(buffer: Buffer, maxLineBytes: number, line: (l: Line) => void, tooLong: (start: number, end: number) => void): Promise<number> {
    const position = this.offset + this.pendingBytes;
    const { bytesRead } = await this.fh.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return 0;
    let from = 0;
    let nl = buffer.indexOf(10, 0);
    while (nl >= 0 && nl < bytesRead) {
      const start = this.offset;
      const end = position + nl + 1;
      const overlong = this.skipping || this.pendingBytes + (nl - from) > maxLineBytes;
      let text = '';
      if (!overlong) {
        const piece = buffer.subarray(from, nl);
        const bytes = this.pendingBytes === 0 ? piece : Buffer.concat([...this.pending, piece]);
        const last = bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length;
        text = bytes.toString('utf8', 0, last);
      }
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = false;
      // Moved past the line before it is handed on: a cursor taken while handling it already includes it.
      this.offset = end;
      if (overlong) tooLong(start, end);
      else line({ text, start, end });
      from = nl + 1;
      nl = buffer.indexOf(10, from);
    }
    if (from < bytesRead) {
      // A line without its newline yet: kept (a copy, the buffer is reused) unless it is already too long.
      const rest = bytesRead - from;
      if (!this.skipping && this.pendingBytes + rest > maxLineBytes) {
        this.skipping = true;
        this.pending = [];
      }
      if (!this.skipping) this.pending.push(Buffer.from(buffer.subarray(from, bytesRead)));
      this.pendingBytes += rest;
    }
    return bytesRead;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

import { randomBytes } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentRecord } from '../domain/record.ts';
import { CborSimple } from '../envelope/cbor-decode.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { AgentError, describeError } from '../errors.ts';
import { makeDirs } from '../util/make-dirs.ts';

/** What an output that keeps its own dedup marks found: `taken` when it wrote the batch now. */
export type TakeOutcome = 'taken' | 'duplicate' | 'stale' | 'stream_limit';

/**
 * Where the receiver writes records (docs/centre.md, "Outputs"). Plain outputs (JSON lines, a topic) resolve
 * `write` with nothing: the receiver's own dedup state decides what is new, and a crash between writing and
 * marking repeats the batch (at least once). An output with `dedupsItself` set keeps the marks itself, in the
 * same transaction as the records (exactly once): the receiver skips its own state and counts what `write`
 * resolves with.
 */
export interface RecordOutput {
  /** Resolves once the records are written (a file: on disk); rejects with OUTPUT_FAILED when they could not be. */
  // biome-ignore lint/suspicious/noConfusingVoidType: plain outputs are written as returning Promise<void>
  write(header: EnvelopeHeader, records: AgentRecord[]): Promise<void | TakeOutcome>;
  close(): Promise<void>;
  readonly dedupsItself?: boolean;
}

/** The records of a batch as one JSON array, with the JSON lines' mapping of CBOR values (bytes, big integers…). */
export function recordsJson(records: AgentRecord[]): string {
  unbufferRecords(records);
  let out = '[';
  for (let i = 0; i < records.length; i++) out += `${i === 0 ? '' : ','}${JSON.stringify(records[i], replacer)}`;
  return `${out}]`;
}

/**
 * JSON for CBOR values JSON lacks (docs/wire-format.md, "Receiver output"): bytes as {"$base64": …}, integers
 * beyond ±(2^53 − 1) as decimal strings, dates (tag 1) as ISO 8601 text in UTC with milliseconds, NaN and
 * ±Infinity as {"$float": "NaN" | "Infinity" | "-Infinity"}, undefined as null, other simple values as
 * {"$simple": n}. Keys are written exactly as received, `__proto__` included.
 */
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : { $float: String(raw) };
  if (raw === undefined) return null;
  if (raw instanceof Uint8Array) return { $base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
  if (typeof raw === 'bigint') return raw.toString();
  if (raw instanceof CborSimple) return { $simple: raw.value };
  if (raw instanceof Map) return Object.fromEntries(raw);
  if (raw instanceof Set) return [...raw];
  return value;
}

/**
 * One line per record: the batch's device, stream, epoch (16 hex digits) and seq, then the record. The epoch
 * is there because seq alone does not identify a batch: a replaced queue numbers from 1 again.
 */
export function toJsonLines(header: EnvelopeHeader, records: AgentRecord[]): string {
  unbufferRecords(records);
  let out = '';
  const epoch = Buffer.from(header.epoch).toString('hex');
  for (const record of records) {
    out += `${JSON.stringify({ device: header.device, stream: header.stream, epoch, seq: header.seq, record }, replacer)}\n`;
  }
  return out;
}

function outputFailed(target: string, cause: unknown, retryable = false): AgentError {
  return new AgentError('OUTPUT_FAILED', `cannot write to the receiver output ${target === '-' ? 'stdout' : target}: ${describeError(cause)}`, {
    cause,
    retryable,
  });
}

/**
 * Errors of the output's file system that may clear by themselves (space freed, a quota raised, a device
 * back): the write is retried (docs/operations.md, "Batches the receiver cannot output"). Any other error
 * (EPIPE, EBADF, EROFS, EACCES…) means the output itself is gone, for every batch alike.
 */
const TRANSIENT = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EAGAIN', 'EBUSY', 'EINTR', 'ENOBUFS', 'ENOMEM', 'ETIMEDOUT']);

/**
 * A batch's records as the bytes the output appends. A batch whose records cannot be serialised (JSON text
 * longer than a string can hold, say) can never be written, whatever the output: OUTPUT_UNWRITABLE, which
 * the receiver sets aside instead of retrying.
 */
function serialised(header: EnvelopeHeader, records: AgentRecord[]): Buffer[] {
  try {
    return toJsonChunks(header, records);
  } catch (cause) {
    throw new AgentError(
      'OUTPUT_UNWRITABLE',
      `batch ${header.device}/${header.stream}#${header.seq} cannot be written as JSON lines: ${describeError(cause)}`,
      {
        cause,
      },
    );
  }
}

/**
 * JSON.stringify calls a Buffer's toJSON before any replacer sees it, and that makes an array of one number per
 * byte: 80 MB of heap for a 10 MiB value. Byte strings decoded as Buffers are therefore turned, in place, into
 * plain Uint8Array views of the same memory (no copy), which the replacer writes as base64. The records are the
 * output's to consume: nothing reads them after they are written.
 */
function unbufferRecords(records: unknown[]): void {
  for (let i = 0; i < records.length; i++) records[i] = unbuffer(records[i], 0);
}

function unbuffer(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > 64) return value;
  if (Buffer.isBuffer(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = unbuffer(value[i], depth + 1);
  } else if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, unbuffer(v, depth + 1));
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const v = record[key];
      if (typeof v === 'object' && v !== null) {
        const plain = unbuffer(v, depth + 1);
        if (plain !== v) Object.defineProperty(record, key, { value: plain, writable: true, enumerable: true, configurable: true });
      }
    }
  }
  return value;
}

/** Byte values above this are written as base64 in pieces, never as one string (the heap is small). */
const LARGE_BYTES = 64 * 1024;
/** Marks where a large byte value goes; random per process so no received text can forge one. */
const MARK = `\u0000${randomBytes(8).toString('hex')}:`;
const MARKED = new RegExp(`"\\\\u0000${MARK.slice(1)}(\\d+)"`, 'g');
/** Base64 of 48 KiB of input at a time: 64 KiB strings, however large the value. */
const PIECE = 3 * 16 * 1024;

/**
 * The same lines as `toJsonLines`, as buffers to write in order. A byte value larger than 64 KiB (a 10 MiB
 * BLOB) is base64-encoded piece by piece straight into buffers: as one string it would take its size four
 * times over on the heap (the base64, the JSON copy, the line) and run a 32 MB heap out of memory.
 */
export function toJsonChunks(header: EnvelopeHeader, records: AgentRecord[]): Buffer[] {
  const large: Uint8Array[] = [];
  const marking = function (this: Record<string, unknown>, key: string, value: unknown): unknown {
    const raw = this[key];
    if (raw instanceof Uint8Array && raw.byteLength > LARGE_BYTES) {
      large.push(raw);
      return { $base64: `${MARK}${large.length - 1}` };
    }
    return replacer.call(this, key, value);
  };
  unbufferRecords(records);
  const chunks: Buffer[] = [];
  const epoch = Buffer.from(header.epoch).toString('hex');
  let text = '';
  for (const record of records) {
    large.length = 0;
    const line = `${JSON.stringify({ device: header.device, stream: header.stream, epoch, seq: header.seq, record }, marking)}\n`;
    if (large.length === 0) {
      text += line;
      continue;
    }
    let at = 0;
    for (const m of line.matchAll(MARKED)) {
      text += `${line.slice(at, m.index)}"`;
      chunks.push(Buffer.from(text));
      text = '"';
      const bytes = large[Number(m[1])]!;
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < view.length; i += PIECE) chunks.push(Buffer.from(view.subarray(i, i + PIECE).toString('base64'), 'latin1'));
      at = m.index + m[0].length;
    }
    text += line.slice(at);
  }
  if (text !== '') chunks.push(Buffer.from(text));
  return chunks;
}

/**
 * JSON lines to stdout (`-`) or appended to a file (created 0600 in directories created 0700), flushed to disk
 * before the batch is acknowledged. A batch that cannot be serialised rejects with OUTPUT_UNWRITABLE and
 * leaves the output as it was. A write that fails rejects with OUTPUT_FAILED instead of crashing the
 * process: retryable for a file whose file system is full or failing for now (what was appended of the
 * batch is cut off again, so a retry does not leave half a batch before the whole one); otherwise every
 * later write fails the same way.
 */
export async function jsonLinesOutput(target: string): Promise<RecordOutput> {
  if (target === '-') {
    let failure: AgentError | undefined;
    // Without a listener an EPIPE on stdout is an uncaught exception; with it, the write's callback reports it.
    const onError = (err: unknown) => {
      failure ??= outputFailed(target, err);
    };
    process.stdout.on('error', onError);
    return {
      write: async (header, records) => {
        if (failure) throw failure;
        const bytes = Buffer.concat(serialised(header, records));
        await new Promise<void>((resolve, reject) =>
          process.stdout.write(bytes, (err) => {
            if (!err) return resolve();
            failure ??= outputFailed(target, err);
            reject(failure);
          }),
        );
      },
      // The listener stays: an error surfacing after close must not crash the process either.
      close: async () => {},
    };
  }
  let file: FileHandle;
  try {
    makeDirs(dirname(target));
    file = await open(target, 'a', 0o600);
  } catch (cause) {
    throw outputFailed(target, cause);
  }
  let failure: AgentError | undefined;
  return {
    async write(header, records) {
      if (failure) throw failure;
      const chunks = serialised(header, records);
      let start: number | undefined;
      try {
        start = (await file.stat()).size;
        // A write to a file system running full may take part of the buffer without an error: the rest is
        // written next, and that write reports why it cannot be.
        for (const chunk of chunks) {
          for (let offset = 0; offset < chunk.length; ) offset += (await file.write(chunk, offset)).bytesWritten;
        }
        await file.datasync();
      } catch (cause) {
        const code = (cause as { code?: unknown }).code;
        if (typeof code === 'string' && TRANSIENT.has(code) && start !== undefined && (await cutBack(file, start))) {
          throw outputFailed(target, cause, true);
        }
        failure = outputFailed(target, cause);
        throw failure;
      }
    },
    close: () => file.close(),
  };
}

/** Cuts the output back to `size` after a failed append; false if that failed too (the file is then torn). */
async function cutBack(file: FileHandle, size: number): Promise<boolean> {
  try {
    if ((await file.stat()).size > size) await file.truncate(size);
    return true;
  } catch {
    return false;
  }
}

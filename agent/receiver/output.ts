import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentRecord } from '../domain/record.ts';
import { CborSimple } from '../envelope/cbor-decode.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { AgentError, describeError } from '../errors.ts';

export interface RecordOutput {
  /** Resolves once the records are written (a file: on disk); rejects with OUTPUT_FAILED when they could not be. */
  write(header: EnvelopeHeader, records: AgentRecord[]): Promise<void>;
  close(): Promise<void>;
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
function serialised(header: EnvelopeHeader, records: AgentRecord[]): Buffer {
  try {
    return Buffer.from(toJsonLines(header, records));
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
        const bytes = serialised(header, records);
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
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    file = await open(target, 'a', 0o600);
  } catch (cause) {
    throw outputFailed(target, cause);
  }
  let failure: AgentError | undefined;
  return {
    async write(header, records) {
      if (failure) throw failure;
      const bytes = serialised(header, records);
      let start: number | undefined;
      try {
        start = (await file.stat()).size;
        // A write to a file system running full may take part of the buffer without an error: the rest is
        // written next, and that write reports why it cannot be.
        for (let offset = 0; offset < bytes.length; ) offset += (await file.write(bytes, offset)).bytesWritten;
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

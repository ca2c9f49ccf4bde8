import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentRecord } from '../domain/record.ts';
import { CborSimple } from '../envelope/cbor-decode.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';

export interface RecordOutput {
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
  if (raw instanceof Uint8Array) return { $base64: Buffer.from(raw).toString('base64') };
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

/** JSON lines to stdout (`-`) or appended to a file, flushed to disk before the batch is acknowledged. */
export async function jsonLinesOutput(target: string): Promise<RecordOutput> {
  if (target === '-') {
    return {
      write: (header, records) =>
        new Promise((resolve, reject) => process.stdout.write(toJsonLines(header, records), (err) => (err ? reject(err) : resolve()))),
      close: async () => {},
    };
  }
  await mkdir(dirname(target), { recursive: true });
  const file: FileHandle = await open(target, 'a');
  return {
    async write(header, records) {
      await file.write(toJsonLines(header, records));
      await file.datasync();
    },
    close: () => file.close(),
  };
}

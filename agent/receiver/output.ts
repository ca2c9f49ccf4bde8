import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentRecord } from '../domain/record.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';

export interface RecordOutput {
  write(header: EnvelopeHeader, records: AgentRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** JSON for CBOR values JSON lacks: bytes as {"$base64": …}, big integers as strings, dates as ISO text. */
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Uint8Array) return { $base64: Buffer.from(raw).toString('base64') };
  if (typeof raw === 'bigint') return raw.toString();
  if (raw instanceof Map) return Object.fromEntries(raw);
  if (raw instanceof Set) return [...raw];
  return value;
}

export function toJsonLines(header: EnvelopeHeader, records: AgentRecord[]): string {
  let out = '';
  for (const record of records) {
    out += `${JSON.stringify({ device: header.device, stream: header.stream, seq: header.seq, record }, replacer)}\n`;
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

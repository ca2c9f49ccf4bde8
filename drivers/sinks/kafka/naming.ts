import type { OutgoingBatch } from '../../../agent/sdk/index.ts';

/**
 * The message key: one (device, stream) series always hashes to one partition, so its batches stay in order
 * and one receiver of a group handles the whole series. `/` cannot occur in a device id or a stream name.
 */
export function batchKey(device: string, stream: string): Buffer {
  return Buffer.from(`${device}/${stream}`);
}

/** Headers for observability and routing only: the receiver trusts nothing but the sealed envelope. */
export function batchHeaders(batch: OutgoingBatch): Map<Buffer, Buffer> {
  return new Map([
    [Buffer.from('device'), Buffer.from(batch.device)],
    [Buffer.from('stream'), Buffer.from(batch.stream)],
    [Buffer.from('epoch'), Buffer.from(batch.epoch)],
    [Buffer.from('seq'), Buffer.from(String(batch.seq))],
    [Buffer.from('records'), Buffer.from(String(batch.count))],
  ]);
}

/** A header's text, for logs (`?` when absent); cut short since anyone who can produce chooses it. */
export function headerText(headers: Map<Buffer, Buffer> | undefined, name: string): string {
  if (!headers) return '?';
  for (const [k, v] of headers) if (k.toString() === name) return v.toString('utf8', 0, Math.min(v.length, 100));
  return '?';
}

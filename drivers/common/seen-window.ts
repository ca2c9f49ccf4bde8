import { createHash, type Hash } from 'node:crypto';
import type { Cursor } from '../../agent/sdk/index.ts';

/** Bytes of a key's hash kept in the window (and in the committed cursor). */
const HASH_BYTES = 8;

/**
 * The keys of the last `size` messages accepted, for recognising a message a peer sends again (an MQTT QoS 1
 * redelivery, an HL7 message whose acknowledgement was lost). Each key is kept as an 8-byte hash: a window of
 * n keys holds 8·n bytes, and is committed with the records as part of the source's cursor (base64, field
 * `seen`), so that a repeat after a SIGKILL is still caught. Oldest keys leave first.
 */
export class SeenWindow {
  private readonly size: number;
  /** Hex of each hash, in arrival order (a Map keeps insertion order: the first entry is the oldest). */
  private readonly seen = new Map<string, true>();
  changed = false;

  constructor(size: number, committed: Cursor | undefined) {
    this.size = size;
    const encoded = typeof committed === 'object' && committed !== null && !Array.isArray(committed) ? committed.seen : undefined;
    if (typeof encoded === 'string') {
      const bytes = Buffer.from(encoded, 'base64');
      for (let at = 0; at + HASH_BYTES <= bytes.length; at += HASH_BYTES) this.remember(bytes.subarray(at, at + HASH_BYTES).toString('hex'));
    }
  }

  /** The window's key for the given parts (hashed together, each part delimited). */
  static key(...parts: (string | Uint8Array)[]): string {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part).update('\u0000');
    return SeenWindow.fromHash(hash);
  }

  /** The window's key from a SHA-256 the caller fed itself. */
  static fromHash(hash: Hash): string {
    return hash.digest().subarray(0, HASH_BYTES).toString('hex');
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  add(key: string): void {
    this.remember(key);
    this.changed = true;
  }

  private remember(key: string): void {
    this.seen.set(key, true);
    if (this.seen.size > this.size) this.seen.delete(this.seen.keys().next().value!);
  }

  /** The window as committed with the records (the cursor's `seen` field). */
  encode(): string {
    this.changed = false;
    return Buffer.from([...this.seen.keys()].join(''), 'hex').toString('base64');
  }
}

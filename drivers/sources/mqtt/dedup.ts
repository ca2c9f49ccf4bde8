import { createHash } from 'node:crypto';
import type { IPublishPacket } from 'mqtt';
import type { AgentRecord, Cursor } from '../../../agent/sdk/index.ts';

export type DedupKey = 'payload_hash' | 'json_field' | 'user_property' | 'correlation_data';

export interface DedupOptions {
  key: DedupKey;
  field?: string | undefined;
  window: number;
}

/** Bytes of a key's hash kept in the window (and in the committed cursor). */
const HASH_BYTES = 8;

/**
 * The keys of the last `window` messages accepted, for dropping repeats of QoS 0/1 messages (QoS 2 needs none:
 * see qos2.ts). Each key is kept as an 8-byte hash (SHA-256 of topic and key): a window of n keys holds 8·n
 * bytes, and is committed with the records (as the source's cursor, base64) so that a repeat after a SIGKILL is
 * still caught. Oldest keys leave first.
 */
export class DedupWindow {
  private readonly options: DedupOptions;
  /** Hex of each hash, in arrival order (a Map keeps insertion order: the first entry is the oldest). */
  private readonly seen = new Map<string, true>();
  changed = false;

  constructor(options: DedupOptions, committed: Cursor | undefined) {
    this.options = options;
    const encoded = typeof committed === 'object' && committed !== null && !Array.isArray(committed) ? committed.seen : undefined;
    if (typeof encoded === 'string') {
      const bytes = Buffer.from(encoded, 'base64');
      for (let at = 0; at + HASH_BYTES <= bytes.length; at += HASH_BYTES) this.remember(bytes.subarray(at, at + HASH_BYTES).toString('hex'));
    }
  }

  /** The message's key, or undefined when it carries none (it then passes unchecked). */
  keyOf(packet: IPublishPacket, record: AgentRecord | undefined): string | undefined {
    const hash = createHash('sha256').update(packet.topic).update('\u0000');
    switch (this.options.key) {
      case 'payload_hash':
        hash.update(typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload);
        break;
      case 'json_field': {
        const value = record?.[this.options.field!];
        if (value === undefined || value === null) return undefined;
        hash.update(typeof value === 'string' ? `s${value}` : `j${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
        break;
      }
      case 'user_property': {
        const value = packet.properties?.userProperties?.[this.options.field!];
        if (value === undefined) return undefined;
        hash.update(Array.isArray(value) ? value.join('\u0000') : value);
        break;
      }
      case 'correlation_data': {
        const value = packet.properties?.correlationData;
        if (value === undefined) return undefined;
        hash.update(value);
        break;
      }
    }
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
    if (this.seen.size > this.options.window) this.seen.delete(this.seen.keys().next().value!);
  }

  /** The window as committed with the records. */
  encode(): string {
    this.changed = false;
    return Buffer.from([...this.seen.keys()].join(''), 'hex').toString('base64');
  }
}

import { createHash } from 'node:crypto';
import type { IPublishPacket } from 'mqtt';
import type { AgentRecord, Cursor } from '../../../agent/sdk/index.ts';
import { SeenWindow } from '../../common/seen-window.ts';

export type DedupKey = 'payload_hash' | 'json_field' | 'user_property' | 'correlation_data';

export interface DedupOptions {
  key: DedupKey;
  field?: string | undefined;
  window: number;
}

/**
 * The keys of the last `window` messages accepted, for dropping repeats of QoS 0/1 messages (QoS 2 needs none:
 * see qos2.ts). The key is a hash of the topic and the configured part of the message; the window itself, and
 * how it is committed with the records, is the shared `SeenWindow`.
 */
export class DedupWindow extends SeenWindow {
  private readonly options: DedupOptions;

  constructor(options: DedupOptions, committed: Cursor | undefined) {
    super(options.window, committed);
    this.options = options;
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
    return SeenWindow.fromHash(hash);
  }
}

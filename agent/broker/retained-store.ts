/**
 * A bound on the embedded broker's retained messages, in count and in bytes. aedes' memory persistence keeps
 * one retained message per topic for ever, and any client may publish to any number of topics: without a
 * bound, a client publishing retained messages to ever new topics grows the broker without end.
 *
 * Past a bound a new retained message is refused: it is still delivered to the subscribers present, only not
 * kept for later ones. The retained messages already kept stay (they are the state subscribers rely on; a
 * newcomer flooding topics must not push them out). Replacing a topic's retained message, or clearing it with
 * an empty payload, is always possible within the bound.
 */

export interface RetainedLimits {
  /** Topics with a retained message at most. */
  maxCount: number;
  /** Bytes of retained messages (payload, topic and a fixed overhead each) at most. */
  maxBytes: number;
}

export type RetainedRefusal = 'retained_count' | 'retained_bytes';

import { ownPayload } from './own-payload.ts';

interface RetainedPacket {
  topic: string;
  payload: Buffer | string;
}

/** Counted per retained message beyond its payload and topic: aedes' copy of the packet and its map entry. */
const RETAINED_OVERHEAD_BYTES = 256;

export class RetainedBound {
  private readonly sizes = new Map<string, number>();
  private held = 0;
  private readonly limits: RetainedLimits;

  constructor(limits: RetainedLimits) {
    this.limits = limits;
  }

  /** Wraps the persistence's `storeRetained` so that what it keeps stays within the limits. */
  static install(
    persistence: { storeRetained(packet: RetainedPacket): Promise<void> },
    limits: RetainedLimits,
    onRefused: (reason: RetainedRefusal, topic: string, bytes: number) => void,
  ): RetainedBound {
    const bound = new RetainedBound(limits);
    const store = persistence.storeRetained.bind(persistence);
    persistence.storeRetained = async (packet: RetainedPacket) => {
      const refusal = bound.admit(packet);
      if (refusal) return onRefused(refusal, packet.topic, sizeOf(packet));
      // aedes' memory persistence keeps a shallow copy of the packet: its payload must not pin a read buffer.
      return store({ ...packet, payload: ownPayload(packet.payload) });
    };
    return bound;
  }

  get count(): number {
    return this.sizes.size;
  }

  get bytes(): number {
    return this.held;
  }

  /** Takes `packet` into the accounting and says nothing, or says why it must not be kept. */
  admit(packet: RetainedPacket): RetainedRefusal | undefined {
    const previous = this.sizes.get(packet.topic) ?? 0;
    if (payloadBytes(packet.payload) === 0) {
      // An empty retained message clears the topic's.
      this.sizes.delete(packet.topic);
      this.held -= previous;
      return undefined;
    }
    const bytes = sizeOf(packet);
    const isNew = !this.sizes.has(packet.topic);
    if (isNew && this.sizes.size >= this.limits.maxCount) return 'retained_count';
    if (this.held - previous + bytes > this.limits.maxBytes) return 'retained_bytes';
    this.sizes.set(packet.topic, bytes);
    this.held += bytes - previous;
    return undefined;
  }
}

function payloadBytes(payload: Buffer | string): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
}

function sizeOf(packet: RetainedPacket): number {
  return payloadBytes(packet.payload) + Buffer.byteLength(packet.topic) + RETAINED_OVERHEAD_BYTES;
}

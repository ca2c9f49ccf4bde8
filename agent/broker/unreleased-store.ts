import { ownPayload } from './own-payload.ts';

/**
 * A bound in bytes on the QoS 2 messages the embedded broker has received (PUBREC sent) and their publisher
 * has not yet released (PUBREL). aedes keeps each until its PUBREL, for the session's life: a persistent
 * session keeps them across reconnects, and aedes' limit (1,000 per connection) starts afresh on each
 * connection and for each client id. A publisher that never sends PUBREL, or never comes back, would grow the
 * broker without end.
 *
 * Past a bound the new message is refused before it is stored: aedes closes that publisher's connection
 * without a PUBREC, so the publisher keeps the message and sends it again on its next connection (nothing is
 * lost; it is pushed back). A repeat of a message already held replaces it.
 */

export interface UnreleasedLimits {
  /** Bytes of one client's unreleased QoS 2 messages at most. */
  maxBytesPerClient: number;
  /** Bytes of all clients' unreleased QoS 2 messages at most. */
  maxBytes: number;
}

export type UnreleasedRefusal = 'client_bytes' | 'total_bytes';

interface IncomingPacket {
  messageId?: number;
  topic: string;
  payload: Buffer | string;
}

/** The aedes persistence methods wrapped here. */
interface IncomingPersistence {
  incomingStorePacket(client: { id: string }, packet: IncomingPacket): Promise<void>;
  incomingDelPacket(client: { id: string }, packet: { messageId?: number }): Promise<void>;
  cleanIncoming(client: { id: string }): Promise<void>;
}

/** Counted per message beyond its payload and topic: aedes' copy of the packet and its slot. */
const UNRELEASED_OVERHEAD_BYTES = 256;

export class UnreleasedBound {
  private readonly clients = new Map<string, { bytes: number; byId: Map<number, number> }>();
  private held = 0;
  private readonly limits: UnreleasedLimits;

  constructor(limits: UnreleasedLimits) {
    this.limits = limits;
  }

  static install(persistence: object, limits: UnreleasedLimits, onRefused: (reason: UnreleasedRefusal, clientId: string) => void): UnreleasedBound {
    const target = persistence as IncomingPersistence;
    const bound = new UnreleasedBound(limits);
    const store = target.incomingStorePacket.bind(target);
    const del = target.incomingDelPacket.bind(target);
    const clean = target.cleanIncoming.bind(target);
    target.incomingStorePacket = async (client, packet) => {
      const refusal = bound.admit(client.id, packet);
      if (refusal) {
        onRefused(refusal, client.id);
        throw new Error(`unreleased QoS 2 messages past broker.${refusal === 'client_bytes' ? 'max_unreleased_bytes_per_client' : 'max_unreleased_bytes'}`);
      }
      return store(client, { ...packet, payload: ownPayload(packet.payload) });
    };
    target.incomingDelPacket = async (client, packet) => {
      bound.release(client.id, packet.messageId);
      return del(client, packet);
    };
    target.cleanIncoming = async (client) => {
      bound.forget(client.id);
      return clean(client);
    };
    return bound;
  }

  /** Bytes counted for `clientId`, or for all clients without one. */
  bytes(clientId?: string): number {
    return clientId === undefined ? this.held : (this.clients.get(clientId)?.bytes ?? 0);
  }

  /** Takes `packet` into the accounting and says nothing, or says why it must not be stored. */
  admit(clientId: string, packet: IncomingPacket): UnreleasedRefusal | undefined {
    const id = packet.messageId ?? -1;
    const client = this.clients.get(clientId);
    const previous = client?.byId.get(id) ?? 0;
    const bytes = sizeOf(packet);
    if ((client?.bytes ?? 0) - previous + bytes > this.limits.maxBytesPerClient) return 'client_bytes';
    if (this.held - previous + bytes > this.limits.maxBytes) return 'total_bytes';
    const own = client ?? { bytes: 0, byId: new Map<number, number>() };
    if (!client) this.clients.set(clientId, own);
    own.byId.set(id, bytes);
    own.bytes += bytes - previous;
    this.held += bytes - previous;
    return undefined;
  }

  release(clientId: string, messageId: number | undefined): void {
    const client = this.clients.get(clientId);
    const bytes = client?.byId.get(messageId ?? -1);
    if (!client || bytes === undefined) return;
    client.byId.delete(messageId ?? -1);
    client.bytes -= bytes;
    this.held -= bytes;
    if (client.byId.size === 0) this.clients.delete(clientId);
  }

  forget(clientId: string): void {
    const client = this.clients.get(clientId);
    if (!client) return;
    this.held -= client.bytes;
    this.clients.delete(clientId);
  }
}

function sizeOf(packet: IncomingPacket): number {
  const payload = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.byteLength;
  return payload + Buffer.byteLength(packet.topic) + UNRELEASED_OVERHEAD_BYTES;
}

import { Readable } from 'node:stream';
import { ownPayload } from './own-payload.ts';

/**
 * The embedded broker's queue of QoS 1/2 messages for persistent-session subscribers, in place of the one in
 * aedes' memory persistence, which does not give a subscriber exactly once across reconnects.
 *
 * aedes delivers a message to a connected subscriber on two paths that can meet: live (as it is published)
 * and from this queue when the subscriber reconnects (a copy of the queue taken at CONNECT, sent one by one
 * while live traffic goes on). With the memory persistence's queue that produced, under cut connections:
 * - the same message sent under two packet ids (queued and live at once: each path gives it an id), which
 *   a subscriber can only take for two messages;
 * - a message resent from the stale copy after its QoS 2 exchange had completed (PUBCOMP), as a new one;
 * - a message dropped for a live duplicate "cleared" by an undefined packet id, which removes the first
 *   message not yet sent instead.
 *
 * Here each message is one entry, keyed by aedes' own (broker id, counter), with the packet id it was first
 * sent under and whether its PUBREC came back:
 * - the first path to send a message gives it its packet id; the other path's copy is sent under the same
 *   id, so the subscriber sees one message sent twice (MQTT's repeat, which a QoS 2 receiver drops);
 * - a PUBLISH for a message whose PUBREC came back is turned into that message's PUBREL (only PUBREL may be
 *   sent again at that stage);
 * - a PUBLISH for a message no longer queued (its exchange completed) is refused, so it is not sent: aedes
 *   then closes that connection, and the subscriber's next session is sent only what is still queued;
 * - the queue read at reconnect is read as it is at each step, not as it was at CONNECT;
 * - a clear without a packet id removes nothing.
 *
 * In memory, like the rest of the embedded broker: a broker restart loses it (durability is the queue's).
 *
 * Bounded in bytes, per client and across clients: a persistent subscriber that never comes back must not
 * make the broker grow without end. Past either bound the oldest message (of that client, or of all clients)
 * is dropped and reported; the subscriber that comes back gets the newest messages, in order. A message is
 * counted at its payload, topic and a fixed overhead per entry; the copies for several subscribers share one
 * payload, so what is counted is at least what is held.
 */

/** The fields of an aedes packet this queue reads or writes. */
interface QueuedPacket {
  cmd: string;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
  dup?: boolean;
  properties?: unknown;
  [field: string]: unknown;
}

interface Entry {
  /** The message as published (its own copy; aedes mutates the packets it writes). */
  readonly packet: QueuedPacket;
  readonly key: string;
  readonly queue: ClientQueue;
  /** What this entry is counted at against the bounds. */
  readonly bytes: number;
  /** The packet id it was first sent under in this session. */
  messageId: number | undefined;
  /** Its PUBREC came back: the broker owes a PUBREL, never the PUBLISH again. */
  released: boolean;
}

class ClientQueue {
  readonly clientId: string;
  /** In publishing order, keyed `brokerId:counter`. */
  readonly entries = new Map<string, Entry>();
  readonly byMessageId = new Map<number, string>();
  bytes = 0;
  constructor(clientId: string) {
    this.clientId = clientId;
  }
}

/** Counted per queued message beyond its payload and topic: the entry, its copy of the packet, its keys. */
export const ENTRY_OVERHEAD_BYTES = 256;

export interface OutgoingLimits {
  /** Bytes queued for one client at most; past it, that client's oldest message is dropped. */
  maxBytesPerClient: number;
  /** Bytes queued for all clients together at most; past it, the oldest message of any client is dropped. */
  maxBytes: number;
}

/** Why a queued message was dropped: its client's bound, or the bound across clients. */
export type DropReason = 'client_bytes' | 'total_bytes';

export interface DroppedMessage {
  reason: DropReason;
  clientId: string;
  topic: string;
  bytes: number;
}

const UNBOUNDED: OutgoingLimits = { maxBytesPerClient: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY };

/** The aedes persistence methods replaced here (aedes calls them without a callback, for a promise). */
export interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<QueuedPacket | undefined>;
  outgoingStream(client: { id: string }): Readable;
}

export class OutgoingQueues implements OutgoingPersistence {
  private readonly clients = new Map<string, ClientQueue>();
  /** Every queued entry of every client, oldest first: what the bound across clients drops from. */
  private readonly all = new Set<Entry>();
  private readonly limits: OutgoingLimits;
  private readonly onDrop: (dropped: DroppedMessage) => void;
  private heldBytes = 0;

  constructor(limits: OutgoingLimits = UNBOUNDED, onDrop: (dropped: DroppedMessage) => void = () => {}) {
    this.limits = limits;
    this.onDrop = onDrop;
  }

  /** Replaces the outgoing-queue methods of an aedes persistence instance with this queue's. */
  static install(persistence: object, limits?: OutgoingLimits, onDrop?: (dropped: DroppedMessage) => void): OutgoingQueues {
    const queues = new OutgoingQueues(limits, onDrop);
    Object.assign(persistence, {
      outgoingEnqueue: queues.outgoingEnqueue.bind(queues),
      outgoingEnqueueCombi: queues.outgoingEnqueueCombi.bind(queues),
      outgoingUpdate: queues.outgoingUpdate.bind(queues),
      outgoingClearMessageId: queues.outgoingClearMessageId.bind(queues),
      outgoingStream: queues.outgoingStream.bind(queues),
    });
    return queues;
  }

  /** Messages queued for `clientId` (for tests and diagnostics). */
  size(clientId: string): number {
    return this.clients.get(clientId)?.entries.size ?? 0;
  }

  /** Bytes counted for `clientId`'s queue, or for all queues without one. */
  bytes(clientId?: string): number {
    return clientId === undefined ? this.heldBytes : (this.clients.get(clientId)?.bytes ?? 0);
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void> {
    this.enqueue(sub.clientId, packet);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void> {
    if (subs.length === 0) return;
    // One copy of a payload that is a view on a read buffer, shared by every subscriber's entry.
    const owned = { ...packet, payload: ownPayload(packet.payload) };
    for (const sub of subs) this.enqueue(sub.clientId, owned);
  }

  async outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void> {
    const queue = this.queueOf(client.id);
    if (packet.cmd === 'pubrel') {
      // PUBREC received (or a PUBREL sent again at reconnect).
      const key = packet.messageId === undefined ? undefined : queue.byMessageId.get(packet.messageId);
      const entry = key === undefined ? undefined : queue.entries.get(key);
      if (!entry) throw new Error('no such packet');
      entry.released = true;
      return;
    }
    const entry = queue.entries.get(keyOf(packet));
    if (!entry) throw new Error('no such packet'); // completed already: must not be sent again
    if (entry.messageId === undefined) {
      entry.messageId = packet.messageId;
      if (packet.messageId !== undefined) queue.byMessageId.set(packet.messageId, keyOf(packet));
      return;
    }
    // Sent before: again under the same id, or, once PUBREC came back, as its PUBREL.
    packet.messageId = entry.messageId;
    packet.dup = true;
    if (entry.released) {
      packet.cmd = 'pubrel';
      delete packet.properties;
    }
  }

  async outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<QueuedPacket | undefined> {
    if (packet.messageId === undefined) return undefined;
    const queue = this.clients.get(client.id);
    const key = queue?.byMessageId.get(packet.messageId);
    if (!queue || key === undefined) return undefined;
    queue.byMessageId.delete(packet.messageId);
    const entry = queue.entries.get(key);
    if (!entry) return undefined;
    this.remove(entry);
    return { ...entry.packet, messageId: packet.messageId };
  }

  /**
   * What a reconnecting subscriber is sent first. Read lazily, one entry at a time as it is sent: a message
   * that completed meanwhile is skipped, one whose PUBREC came back is sent as its PUBREL. Messages queued
   * after this call are being sent live.
   */
  outgoingStream(client: { id: string }): Readable {
    const queue = this.clients.get(client.id);
    const keys = queue ? [...queue.entries.keys()] : [];
    function* pending(): Generator<QueuedPacket> {
      for (const key of keys) {
        const entry = queue!.entries.get(key);
        if (!entry) continue;
        if (entry.released) yield { cmd: 'pubrel', messageId: entry.messageId };
        else yield { ...entry.packet, messageId: entry.messageId, dup: entry.messageId !== undefined };
      }
    }
    return Readable.from(pending(), { objectMode: true, highWaterMark: 1 });
  }

  private enqueue(clientId: string, packet: QueuedPacket): void {
    const queue = this.queueOf(clientId);
    const key = keyOf(packet);
    if (queue.entries.has(key)) return;
    const { messageId: _notYetSent, ...copy } = packet;
    copy.payload = ownPayload(copy.payload);
    const entry: Entry = { packet: copy as QueuedPacket, key, queue, bytes: sizeOf(packet), messageId: undefined, released: false };
    queue.entries.set(key, entry);
    queue.bytes += entry.bytes;
    this.heldBytes += entry.bytes;
    this.all.add(entry);
    // Oldest first, the new message last: one larger than a bound alone goes too.
    while (queue.bytes > this.limits.maxBytesPerClient) this.drop(queue.entries.values().next().value!, 'client_bytes');
    while (this.heldBytes > this.limits.maxBytes) this.drop(this.all.values().next().value!, 'total_bytes');
  }

  /**
   * A dropped message is gone as if it had completed: the reconnect path skips it, a PUBACK for it clears
   * nothing, and the live path, should it meet it still unsent, refuses it (the connection of a subscriber that
   * far behind is closed; its next session gets what is queued).
   */
  private drop(entry: Entry, reason: DropReason): void {
    this.remove(entry);
    this.onDrop({ reason, clientId: entry.queue.clientId, topic: String(entry.packet.topic), bytes: entry.bytes });
  }

  private remove(entry: Entry): void {
    const { queue } = entry;
    if (!queue.entries.delete(entry.key)) return;
    if (entry.messageId !== undefined && queue.byMessageId.get(entry.messageId) === entry.key) queue.byMessageId.delete(entry.messageId);
    this.all.delete(entry);
    queue.bytes -= entry.bytes;
    this.heldBytes -= entry.bytes;
    if (queue.entries.size === 0 && this.clients.get(queue.clientId) === queue) this.clients.delete(queue.clientId);
  }

  private queueOf(clientId: string): ClientQueue {
    let queue = this.clients.get(clientId);
    if (!queue) this.clients.set(clientId, (queue = new ClientQueue(clientId)));
    return queue;
  }
}

function sizeOf(packet: QueuedPacket): number {
  const { payload, topic } = packet;
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload instanceof Uint8Array ? payload.byteLength : 0;
  return payloadBytes + (typeof topic === 'string' ? Buffer.byteLength(topic) : 0) + ENTRY_OVERHEAD_BYTES;
}

function keyOf(packet: QueuedPacket): string {
  return `${packet.brokerId}:${packet.brokerCounter}`;
}

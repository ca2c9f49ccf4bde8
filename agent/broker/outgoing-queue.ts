import { Readable } from 'node:stream';

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
  /** The packet id it was first sent under in this session. */
  messageId: number | undefined;
  /** Its PUBREC came back: the broker owes a PUBREL, never the PUBLISH again. */
  released: boolean;
}

class ClientQueue {
  /** In publishing order, keyed `brokerId:counter`. */
  readonly entries = new Map<string, Entry>();
  readonly byMessageId = new Map<number, string>();
}

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

  /** Replaces the outgoing-queue methods of an aedes persistence instance with this queue's. */
  static install(persistence: object): OutgoingQueues {
    const queues = new OutgoingQueues();
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

  async outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void> {
    this.enqueue(sub.clientId, packet);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void> {
    for (const sub of subs) this.enqueue(sub.clientId, packet);
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
    queue.entries.delete(key);
    if (queue.entries.size === 0) this.clients.delete(client.id);
    return entry ? { ...entry.packet, messageId: packet.messageId } : undefined;
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
    queue.entries.set(key, { packet: copy as QueuedPacket, messageId: undefined, released: false });
  }

  private queueOf(clientId: string): ClientQueue {
    let queue = this.clients.get(clientId);
    if (!queue) this.clients.set(clientId, (queue = new ClientQueue()));
    return queue;
  }
}

function keyOf(packet: QueuedPacket): string {
  return `${packet.brokerId}:${packet.brokerCounter}`;
}

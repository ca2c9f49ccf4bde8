import type { IPublishPacket, Packet } from 'mqtt';
import { type Cursor, MqttStore } from '../../../agent/sdk/index.ts';

/**
 * Inbound QoS 2, exactly once across crashes: the packet ids of the session's messages that are committed
 * (or in an emit on its way to the commit) and not yet released by the broker's PUBREL. The set travels as
 * the source's cursor, so it is committed in the same transaction as the records it speaks of.
 *
 * The receiver's side of MQTT QoS 2 (MQTT 5, 4.3.3), with the queue as the "onward recipient":
 * - PUBLISH with an id not in the set: a new message. Its record and the id are committed together; the
 *   PUBREC goes out only after that commit.
 * - PUBLISH with an id in the set: the broker sending again a message already committed (its PUBREC was not
 *   written, or was lost with the connection or with a killed agent). No record; PUBREC after the commit
 *   that holds the id.
 * - PUBREL: the broker will not send that message again. The id leaves the set; the PUBCOMP goes out only
 *   after the set without it is committed. Were PUBCOMP sent first and the agent killed, the committed set
 *   would still hold the id, the broker could reuse it for a new message, and that message would be taken
 *   for a repeat and lost.
 * - A session that is not resumed (CONNACK session present = 0) means the broker holds none of these ids:
 *   the set is emptied, and committed empty, before subscribing.
 *
 * The set is at most the broker's window of unreleased QoS 2 messages (Receive Maximum for MQTT 5).
 */
export class Qos2Ledger {
  private readonly ids: Set<number>;
  /** The broker and client id whose session these ids belong to. */
  private readonly session: string;
  /** The set changed since the last cursor was taken. */
  changed = false;

  constructor(session: string, committed: Cursor | undefined) {
    this.session = session;
    this.ids = new Set(idsOf(committed, session));
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: number): boolean {
    return this.ids.has(id);
  }

  /** A new message's id, to be committed with its record. */
  add(id: number): void {
    this.ids.add(id);
    this.changed = true;
  }

  /** Released by PUBREL; true when the id was held (the removal must be committed before PUBCOMP). */
  release(id: number): boolean {
    const held = this.ids.delete(id);
    if (held) this.changed = true;
    return held;
  }

  /** The broker started a fresh session: it holds none of our ids. */
  clear(): void {
    if (this.ids.size > 0) this.changed = true;
    this.ids.clear();
  }

  /** The cursor to commit with the next emit (the current set), and the set is clean again. */
  cursor(): Cursor {
    this.changed = false;
    return { session: this.session, qos2: [...this.ids] };
  }
}

function idsOf(cursor: Cursor | undefined, session: string): number[] {
  if (typeof cursor !== 'object' || cursor === null || Array.isArray(cursor)) return [];
  if (cursor.session !== session || !Array.isArray(cursor.qos2)) return [];
  return cursor.qos2.filter((id): id is number => typeof id === 'number' && Number.isInteger(id) && id > 0 && id <= 65_535);
}

/** Marks the packet mqtt.js is handed back on PUBREL, so the source tells a release from a message. */
export const RELEASE = Symbol('qos2-release');

export type ReleasePacket = IPublishPacket & { [RELEASE]: true };

export function isRelease(packet: IPublishPacket): packet is ReleasePacket {
  return (packet as Partial<ReleasePacket>)[RELEASE] === true;
}

/**
 * mqtt.js's inbound store, the place it keeps QoS 2 messages between PUBREC and PUBREL (its documented
 * extension point for persistent QoS 2 state). Nothing is kept in it: the ids are in the Qos2Ledger and the records in the queue.
 * - `put` (a QoS 2 PUBLISH, before mqtt.js sends PUBREC) hands the message to the source.
 * - `get` (PUBREL) always answers with a release marker, so mqtt.js calls handleMessage with it (the source
 *   handles the release there, and holds the PUBCOMP) and forgets the id in its own bookkeeping. mqtt.js's
 *   default store would instead deliver the message only now, and after a restart not at all.
 */
export class Qos2IncomingStore extends MqttStore {
  private readonly onPublish: (packet: IPublishPacket, sendPubrec: () => void) => void;

  constructor(onPublish: (packet: IPublishPacket, sendPubrec: () => void) => void) {
    super();
    this.onPublish = onPublish;
  }

  override put(packet: Packet, cb: () => void): this {
    this.onPublish(packet as IPublishPacket, cb);
    return this;
  }

  override get(packet: Pick<Packet, 'messageId'>, cb: (err?: Error, packet?: Packet) => void): this {
    const release = {
      cmd: 'publish',
      qos: 2,
      dup: false,
      retain: false,
      topic: '',
      payload: Buffer.alloc(0),
      messageId: packet.messageId,
      [RELEASE]: true,
    } as ReleasePacket;
    cb(undefined, release);
    return this;
  }

  override del(_packet: Pick<Packet, 'messageId'>, cb: (err?: Error, packet?: Packet) => void): this {
    cb();
    return this;
  }
}

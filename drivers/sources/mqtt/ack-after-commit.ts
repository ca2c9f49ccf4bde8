import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import { AgentError } from '../../../agent/sdk/index.ts';

/**
 * PUBACK only after commit, without serialising to one message per commit.
 *
 * How mqtt.js (5.x, lib/handlers/publish.js) answers a QoS 1 PUBLISH:
 *   client.handleMessage(packet, cb)  →  cb()  →  client._sendPacket({cmd:'puback', messageId}, done)
 * and it parses the next incoming packet only when `done` is called. Delaying `cb` until the commit would
 * therefore hold every later message behind this one: one message per group commit (10 msg/s at the default
 * 100 ms commit interval).
 *
 * Instead the client's `_sendPacket` is wrapped. While the source completes one message (`complete`), a
 * PUBACK for that message id is captured instead of written, and `done` is called at once, so mqtt.js goes
 * on reading. The captured PUBACK is written by `release` once the message's records are committed. Messages
 * keep flowing meanwhile, up to the broker's window of unacknowledged messages (MQTT 5 Receive Maximum,
 * which the source advertises; Mosquitto's max_inflight_messages for MQTT 3.1.1 clients).
 *
 * Invariants:
 * - A PUBACK is never written before `release`; the source calls `release` only after `emit` resolved.
 * - A PUBACK is written only on the connection its PUBLISH came on. After a reconnect the broker redelivers
 *   what was not acknowledged, reusing the packet id; an old PUBACK sent on the new connection could
 *   acknowledge a different, uncommitted message that got the id meanwhile. mqtt.js would even queue it
 *   while offline and send it after reconnecting, so held PUBACKs of a dead connection are dropped instead
 *   (their messages come again: a duplicate in the queue if they had been committed, never a loss).
 * - If mqtt.js ever stops routing the PUBACK through `_sendPacket` synchronously, `complete` throws instead of
 *   letting a PUBACK go out uncontrolled.
 */
type SendPacket = (packet: Packet, cb?: (err?: Error) => void, cbStorePut?: () => void, noStore?: boolean) => void;

/** The acknowledgements held until a commit: PUBACK (QoS 1), PUBREC and PUBCOMP (QoS 2, see qos2.ts). */
export type HeldCmd = 'puback' | 'pubrec' | 'pubcomp';

export interface HeldAck {
  readonly cmd: HeldCmd;
  readonly messageId: number;
  /** The connection the PUBLISH arrived on. */
  readonly connection: unknown;
  /** The acknowledgement mqtt.js produced, once the message was completed. */
  packet: Packet | undefined;
  /** Committed before it was completed (reading was paused): write the PUBACK as soon as it is captured. */
  released: boolean;
}

export class AckAfterCommit {
  private readonly client: MqttClient;
  private readonly send: SendPacket;
  private capturing: HeldAck | undefined;
  /** Acknowledgements not written because their connection had gone. */
  dropped = 0;

  constructor(client: MqttClient) {
    this.client = client;
    const internals = client as unknown as { _sendPacket?: SendPacket };
    const original = internals._sendPacket;
    if (typeof original !== 'function') {
      throw new AgentError('SOURCE_FAILED', 'this mqtt.js has no _sendPacket: the mqtt source cannot hold acknowledgements until commit');
    }
    this.send = original.bind(client);
    internals._sendPacket = (packet, cb, cbStorePut, noStore) => {
      const held = this.capturing;
      if (held && packet.cmd === held.cmd && packet.messageId === held.messageId) {
        this.capturing = undefined;
        held.packet = packet;
        if (held.released) this.write(held);
        cb?.(); // mqtt.js goes on with the next incoming packet now
        return;
      }
      this.send(packet, cb, cbStorePut, noStore);
    };
  }

  /** Notes a packet to acknowledge (`cmd`) as it arrives, on the connection it arrives on. */
  receive(packet: Pick<IPublishPacket, 'messageId'>, cmd: HeldCmd = 'puback'): HeldAck {
    return { cmd, messageId: packet.messageId!, connection: this.client.stream, packet: undefined, released: false };
  }

  /** Lets mqtt.js finish the packet (`done` is the callback that makes it acknowledge), keeping the acknowledgement back. */
  complete(held: HeldAck, done: () => void): void {
    this.capturing = held;
    try {
      done();
    } finally {
      this.capturing = undefined;
    }
    if (!held.packet) {
      throw new AgentError('SOURCE_FAILED', `mqtt.js did not send the ${held.cmd.toUpperCase()} through _sendPacket at once: cannot hold it until commit`);
    }
  }

  /** Writes the acknowledgements of committed packets, in the order given (the order the packets arrived in). */
  release(acks: readonly HeldAck[]): void {
    for (const held of acks) {
      held.released = true;
      if (held.packet) this.write(held);
    }
  }

  private write(held: HeldAck): void {
    if (held.connection === this.client.stream && this.client.connected) this.send(held.packet!);
    else this.dropped++;
  }
}

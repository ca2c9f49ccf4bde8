/**
 * The receiver's end-to-end acknowledgements (docs/delivery.md): for every batch the centre holds durably
 * (written to the output and marked in the dedup state, or found there already as a duplicate), an
 * acknowledgement goes back to its device, so a gateway with `acknowledged_by: centre` may delete it.
 *
 * Cheap and compact: batches taken within `delayMs` are gathered per (device, stream, epoch, keys) and sent as
 * sequence ranges, one message per group. Bounded: at most `maxPending` batches wait; reaching it flushes.
 * Best effort by design: a lost acknowledgement only makes the gateway send the batch again, and the
 * duplicate is acknowledged again.
 */
import type { KeyExchange } from '../keys/x25519.ts';
import { ACK_MAX_RANGES, encodeAck, toRanges } from '../envelope/ack.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { centreAckKey, hex, keyId, type KeyPair } from '../keys/keys.ts';
import type { Counter, Telemetry } from '../telemetry/registry.ts';
import type { KnownDevice } from './receiver.ts';

export type SendAck = (device: string, stream: string, bytes: Uint8Array) => void;

interface PendingGroup {
  device: string;
  stream: string;
  epoch: Uint8Array;
  deviceKeyId: Uint8Array;
  centreKeyId: Uint8Array;
  macKey: Uint8Array;
  seqs: Set<number>;
}

export interface AckOptions {
  /** How long a taken batch may wait for others to share its acknowledgement (default 20 ms). */
  delayMs?: number;
  /** Batches waiting for their acknowledgement at most; reaching it sends at once (default 4096). */
  maxPending?: number;
}

export class CentreAcknowledger {
  private readonly macKeys = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, PendingGroup>();
  private pendingCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly send: SendAck;
  private readonly delayMs: number;
  private readonly maxPending: number;
  private readonly messages: Counter;
  private readonly batches: Counter;

  constructor(kx: KeyExchange, centreKeys: KeyPair[], devices: KnownDevice[], send: SendAck, telemetry: Telemetry, options: AckOptions = {}) {
    this.send = send;
    this.delayMs = options.delayMs ?? 20;
    this.maxPending = options.maxPending ?? 4096;
    this.messages = telemetry.counter('edge_receiver_acks_sent_total', 'End-to-end acknowledgement messages the receiver sent to devices');
    this.batches = telemetry.counter('edge_receiver_acked_batches_total', 'Batches acknowledged end to end (accepted now, or duplicates of ones taken before)');
    for (const centre of centreKeys) {
      for (const device of devices) {
        for (const pub of device.publicKeys) {
          this.macKeys.set(this.keyIndex(device.id, keyId(pub), keyId(centre.publicKey)), centreAckKey(kx, centre, pub));
        }
      }
    }
  }

  private keyIndex(device: string, deviceKeyId: Uint8Array, centreKeyId: Uint8Array): string {
    return `${device}\u0000${hex(deviceKeyId)}\u0000${hex(centreKeyId)}`;
  }

  /** The centre holds this (authenticated) batch durably. */
  taken(header: EnvelopeHeader): void {
    const keys = this.keyIndex(header.device, header.deviceKeyId, header.centreKeyId);
    const macKey = this.macKeys.get(keys);
    if (!macKey) return; // cannot happen for an authenticated batch: the same key pairs opened it
    const groupKey = `${keys}\u0000${header.stream}\u0000${hex(header.epoch)}`;
    let group = this.pending.get(groupKey);
    if (!group) {
      group = {
        device: header.device,
        stream: header.stream,
        epoch: header.epoch,
        deviceKeyId: header.deviceKeyId,
        centreKeyId: header.centreKeyId,
        macKey,
        seqs: new Set(),
      };
      this.pending.set(groupKey, group);
    }
    if (group.seqs.has(header.seq)) return;
    group.seqs.add(header.seq);
    if (++this.pendingCount >= this.maxPending) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends every waiting acknowledgement now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const groups = [...this.pending.values()];
    this.pending.clear();
    this.pendingCount = 0;
    for (const g of groups) {
      const ranges = toRanges(g.seqs);
      for (let i = 0; i < ranges.length; i += ACK_MAX_RANGES) {
        const bytes = encodeAck(
          {
            device: g.device,
            stream: g.stream,
            epoch: g.epoch,
            deviceKeyId: g.deviceKeyId,
            centreKeyId: g.centreKeyId,
            ranges: ranges.slice(i, i + ACK_MAX_RANGES),
          },
          g.macKey,
        );
        this.send(g.device, g.stream, bytes);
        this.messages.inc();
      }
      this.batches.inc(undefined, g.seqs.size);
    }
  }

  close(): void {
    this.flush();
  }
}

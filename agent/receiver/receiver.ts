import type sodiumModule from 'libsodium-wrappers';
import { AgentError, describeError, isAgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { decodeRecords, decompress } from '../envelope/codec.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { malformed } from '../envelope/malformed.ts';
import { open } from '../envelope/seal.ts';
import { centreReceiveKey, hex, keyId, type KeyPair } from '../keys/keys.ts';
import type { IncomingMessage } from '../domain/batch.ts';
import type { AgentRecord } from '../domain/record.ts';
import type { DedupState } from './dedup.ts';
import type { RecordOutput } from './output.ts';

export interface KnownDevice {
  id: string;
  publicKeys: Uint8Array[];
}

export interface ReceiverStats {
  accepted: number;
  records: number;
  duplicates: number;
  stale: number;
  rejected: Record<string, number>;
}

/**
 * The centre side: authenticates, decrypts, decodes and deduplicates batches, then writes their records.
 * A bad batch (tampered, truncated, foreign key, replayed) is logged, counted and dropped; the receiver goes
 * on. Only a failure of its own output or state propagates, so the message is not acknowledged.
 */
export class Receiver {
  private readonly keys = new Map<string, Uint8Array>();
  private readonly counters: ReceiverStats = { accepted: 0, records: 0, duplicates: 0, stale: 0, rejected: {} };

  private readonly sodium: typeof sodiumModule;
  private readonly dedup: DedupState;
  private readonly output: RecordOutput;
  private readonly log: Logger;
  private readonly maxBatchBytes: number;

  constructor(
    sodium: typeof sodiumModule,
    centreKeys: KeyPair[],
    devices: KnownDevice[],
    dedup: DedupState,
    output: RecordOutput,
    log: Logger,
    maxBatchBytes = 64 * 1024 * 1024,
  ) {
    this.sodium = sodium;
    this.dedup = dedup;
    this.output = output;
    this.log = log;
    this.maxBatchBytes = maxBatchBytes;
    for (const centre of centreKeys) {
      for (const device of devices) {
        for (const pub of device.publicKeys) {
          this.keys.set(this.keyIndex(device.id, keyId(pub), keyId(centre.publicKey)), centreReceiveKey(sodium, centre, pub));
        }
      }
    }
  }

  private keyIndex(device: string, deviceKeyId: Uint8Array, centreKeyId: Uint8Array): string {
    return `${device}\u0000${hex(deviceKeyId)}\u0000${hex(centreKeyId)}`;
  }

  private keyFor = (h: EnvelopeHeader): Uint8Array => {
    const key = this.keys.get(this.keyIndex(h.device, h.deviceKeyId, h.centreKeyId));
    if (!key) {
      throw new AgentError(
        'ENVELOPE_UNKNOWN_KEY',
        `no key for device ${JSON.stringify(h.device)} with device key ${hex(h.deviceKeyId)} and centre key ${hex(h.centreKeyId)}`,
      );
    }
    return key;
  };

  async handle(message: IncomingMessage): Promise<void> {
    let header: EnvelopeHeader;
    let records: AgentRecord[];
    try {
      const opened = open(this.sodium, message.bytes, this.keyFor);
      header = opened.header;
      records = decodeRecords(decompress(opened.body, header.compression, this.maxBatchBytes));
      if (records.length !== header.count) {
        throw malformed('count-mismatch', `batch ${header.device}/${header.stream}#${header.seq} declares ${header.count} records but holds ${records.length}`);
      }
    } catch (err) {
      const code = isAgentError(err) ? err.code : 'ENVELOPE_MALFORMED';
      this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1;
      this.log.warn({ code, origin: message.origin, bytes: message.bytes.length, err: describeError(err) }, 'batch rejected');
      return;
    }
    const epoch = hex(header.epoch);
    const verdict = this.dedup.check(header.device, header.stream, epoch, header.seq);
    if (verdict !== 'new') {
      if (verdict === 'duplicate') this.counters.duplicates++;
      else this.counters.stale++;
      this.log.debug({ device: header.device, stream: header.stream, seq: header.seq, verdict }, 'batch dropped');
      return;
    }
    // Output first, then the dedup mark: a crash between the two repeats a batch in the output rather
    // than losing it.
    await this.output.write(header, records);
    this.dedup.mark(header.device, header.stream, epoch, header.seq, records.length);
    this.counters.accepted++;
    this.counters.records += records.length;
  }

  stats(): ReceiverStats {
    return { ...this.counters, rejected: { ...this.counters.rejected } };
  }
}

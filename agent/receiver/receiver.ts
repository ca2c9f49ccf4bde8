import type { KeyExchange } from '../keys/x25519.ts';
import { AgentError, describeError, isAgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { decodeRecords, decompress } from '../envelope/codec.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { malformed, malformedReason } from '../envelope/malformed.ts';
import { open } from '../envelope/seal.ts';
import { centreReceiveKey, hex, keyId, type KeyPair } from '../keys/keys.ts';
import type { IncomingMessage } from '../domain/batch.ts';
import type { AgentRecord } from '../domain/record.ts';
import { RateLimitedProblems } from '../telemetry/problems.ts';
import { type Counter, Telemetry } from '../telemetry/registry.ts';
import type { DedupState } from './dedup.ts';
import { DEFAULT_RECEIVER_LIMITS, type ReceiverLimits } from './limits.ts';
import type { RecordOutput } from './output.ts';
import type { PoisonHandling } from './poison.ts';

export interface KnownDevice {
  id: string;
  publicKeys: Uint8Array[];
}

export interface ReceiverStats {
  accepted: number;
  records: number;
  duplicates: number;
  stale: number;
  deadLettered: number;
  rejected: Record<string, number>;
}

export interface ReceiverOptions {
  /** Messages larger than this are refused before any decryption or decompression (receiver.max_envelope_bytes). */
  maxEnvelopeBytes?: number;
  /** The registry the receiver counts into; its own when not given. */
  telemetry?: Telemetry;
  /** How often one kind of rejection is logged at most (the rest are counted); default 10 s. */
  problemIntervalMs?: number;
  /** Records, nesting and decompressed bytes per batch (agent/receiver/limits.ts); the defaults where absent. */
  limits?: Partial<Omit<ReceiverLimits, 'maxEnvelopeBytes'>>;
  /**
   * Where batches the receiver authenticated but cannot output go (agent/receiver/poison.ts). Without it,
   * a batch over a limit is refused like a malformed one and any output error stops the receiver.
   */
  poison?: PoisonHandling;
  /** Replaying from the dead-letter store: the batch was marked taken when it was set aside, so no dedup. */
  replay?: boolean;
  /**
   * Called for each batch the centre holds durably: accepted (after output and dedup mark), set aside in the
   * dead-letter store, duplicate or stale.
   */
  onTaken?: (header: EnvelopeHeader) => void;
}

/** Refusals by a limit of the receiver's: the batch may be fine, and a replay under raised limits takes it. */
const LIMIT_REASONS = new Set(['too-large', 'too-many-records', 'too-deep']);

export const DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024;
/** Topics and other names an attacker chooses are cut to this many characters in logs. */
const MAX_LOGGED_CHARS = 200;

function clip(text: string): string {
  return text.length <= MAX_LOGGED_CHARS ? text : `${text.slice(0, MAX_LOGGED_CHARS)}… (${text.length} chars)`;
}

/**
 * The centre side: authenticates, decrypts, decodes and deduplicates batches, then writes their records.
 * A bad batch (too large, tampered, truncated, foreign key, replayed) is counted by reason and dropped, and
 * logged through the rate-limited problem reporter: anyone who can publish on the broker can send them, as
 * fast as they like. An authenticated batch it cannot output (over a limit, unserialisable, an output error
 * that outlasted its retries) is set aside in the dead-letter store by `options.poison` and acknowledged.
 * Only a failure of its own output or state that no batch can get past propagates, so the message is not
 * acknowledged; after such a failure nothing more is acknowledged and `failed` resolves.
 */
export class Receiver {
  private readonly keys = new Map<string, Uint8Array>();

  private readonly dedup: DedupState;
  private readonly output: RecordOutput;
  private readonly log: Logger;
  private readonly maxEnvelopeBytes: number;
  private readonly limits: Omit<ReceiverLimits, 'maxEnvelopeBytes'>;
  private readonly poison: PoisonHandling | undefined;
  private readonly replay: boolean;
  private readonly batches: Counter;
  private readonly records: Counter;
  private readonly rejections: Counter;
  private readonly problems: RateLimitedProblems;
  /** Batches being taken now, by identity: bounded by the input's messages in flight. */
  private readonly inProgress = new Map<string, Promise<void>>();
  private failure: AgentError | undefined;
  private readonly onTaken: ((header: EnvelopeHeader) => void) | undefined;
  private onFailure!: (err: AgentError) => void;
  /** Resolves with the first output failure: the receiver acknowledges nothing more and should stop. */
  readonly failed = new Promise<AgentError>((resolve) => (this.onFailure = resolve));

  constructor(
    kx: KeyExchange,
    centreKeys: KeyPair[],
    devices: KnownDevice[],
    dedup: DedupState,
    output: RecordOutput,
    log: Logger,
    maxBatchBytes = DEFAULT_RECEIVER_LIMITS.maxBatchBytes,
    options: ReceiverOptions = {},
  ) {
    this.dedup = dedup;
    this.output = output;
    this.log = log;
    this.maxEnvelopeBytes = options.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
    this.limits = {
      maxBatchBytes: options.limits?.maxBatchBytes ?? maxBatchBytes,
      maxRecords: options.limits?.maxRecords ?? DEFAULT_RECEIVER_LIMITS.maxRecords,
      maxNesting: options.limits?.maxNesting ?? DEFAULT_RECEIVER_LIMITS.maxNesting,
    };
    this.poison = options.poison;
    this.replay = options.replay ?? false;
    this.onTaken = options.onTaken;
    const telemetry = options.telemetry ?? new Telemetry();
    this.batches = telemetry.counter(
      'edge_receiver_batches_total',
      'Batches the receiver took (accepted), set aside in its dead-letter store (dead_lettered) or dropped as already taken (duplicate, stale)',
      ['outcome'],
    );
    this.records = telemetry.counter('edge_receiver_records_total', 'Records the receiver wrote to its output');
    this.rejections = telemetry.counter('edge_receiver_rejected_total', 'Messages the receiver refused, by reason (error code)', ['reason']);
    this.problems = new RateLimitedProblems({ add: (reason, n) => this.rejections.inc({ reason }, n) }, log, { intervalMs: options.problemIntervalMs });
    for (const centre of centreKeys) {
      for (const device of devices) {
        for (const pub of device.publicKeys) {
          this.keys.set(this.keyIndex(device.id, keyId(pub), keyId(centre.publicKey)), centreReceiveKey(kx, centre, pub));
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

  /** Counted by code; logged at most once per code and interval, with the origin cut short. */
  private reject(message: IncomingMessage, err: unknown, key?: string): void {
    const code = isAgentError(err) ? err.code : 'ENVELOPE_MALFORMED';
    this.problems.report(
      code,
      'batch rejected',
      { code, origin: clip(message.origin), bytes: message.bytes.length, err: clip(describeError(err)) },
      key === undefined ? {} : { key },
    );
  }

  async handle(message: IncomingMessage): Promise<void> {
    if (this.failure) throw this.failure;
    if (message.bytes.length > this.maxEnvelopeBytes) {
      this.reject(
        message,
        new AgentError('ENVELOPE_TOO_LARGE', `message of ${message.bytes.length} bytes exceeds receiver.max_envelope_bytes (${this.maxEnvelopeBytes})`),
      );
      return;
    }
    let header: EnvelopeHeader;
    let body: Uint8Array;
    try {
      const opened = open(message.bytes, this.keyFor);
      header = opened.header;
      body = opened.body;
    } catch (err) {
      this.reject(message, err);
      return;
    }
    // Authenticated from here on: a batch refused by a limit is a known device's data, set aside if it can be.
    let records: AgentRecord[] = [];
    let refusal: AgentError | undefined;
    try {
      const { maxBatchBytes, maxRecords, maxNesting } = this.limits;
      records = decodeRecords(decompress(body, header.compression, maxBatchBytes), { text: 'strict', maxRecords, maxNesting });
      if (records.length !== header.count) {
        throw malformed('count-mismatch', `batch ${header.device}/${header.stream}#${header.seq} declares ${header.count} records but holds ${records.length}`);
      }
    } catch (err) {
      if (!this.poison || !LIMIT_REASONS.has(malformedReason(err) ?? '')) {
        this.reject(message, err);
        return;
      }
      refusal = err as AgentError;
    }
    const epoch = hex(header.epoch);
    // The same batch can arrive twice at once: a broker redelivers it on a new connection while the first copy
    // is still being written (Mosquitto drops an MQTT 5 client whose acknowledgement it refuses). Both would
    // pass the dedup check before either is marked; the second waits for the first and is then a duplicate.
    const key = `${header.device}\u0000${header.stream}\u0000${epoch}\u0000${header.seq}`;
    for (let running = this.inProgress.get(key); running; running = this.inProgress.get(key)) await running;
    let finished!: () => void;
    this.inProgress.set(key, new Promise<void>((resolve) => (finished = resolve)));
    try {
      await this.take(message, header, records, refusal, epoch);
    } finally {
      this.inProgress.delete(key);
      finished();
    }
  }

  /** Dedup, output and mark of one authenticated batch; `handle` runs at most one per batch identity at a time. */
  private async take(message: IncomingMessage, header: EnvelopeHeader, records: AgentRecord[], refusal: AgentError | undefined, epoch: string): Promise<void> {
    // An output that keeps its own marks (PostgreSQL) decides in its transaction, not here.
    const ownMarks = this.output.dedupsItself === true;
    const verdict = this.replay || ownMarks ? 'new' : this.dedup.check(header.device, header.stream, epoch, header.seq, header.created);
    if (verdict === 'stream_limit') {
      // Authenticated, so the device is a known one: rate-limited per device, a finite set.
      this.reject(
        message,
        new AgentError('RECEIVER_STREAM_LIMIT', `device ${header.device} has reached receiver.max_streams_per_device; stream ${header.stream} refused`),
        header.device,
      );
      return;
    }
    if (verdict !== 'new') {
      this.batches.inc({ outcome: verdict });
      this.log.debug({ device: header.device, stream: header.stream, seq: header.seq, verdict }, 'batch dropped');
      // Taken before: acknowledged again, so a gateway whose acknowledgement was lost stops re-sending.
      this.onTaken?.(header);
      return;
    }
    // Output first, then the dedup mark: a crash between the two repeats a batch in the output rather
    // than losing it. A batch set aside is marked too: the centre holds it, and a redelivery is a duplicate.
    let outcome: Awaited<ReturnType<PoisonHandling['write']>>;
    try {
      if (refusal && this.replay) throw refusal;
      if (refusal) {
        this.poison!.setAside(header, header.count, message, refusal);
        outcome = 'dead_lettered';
      } else if (this.poison && !this.replay) {
        outcome = await this.poison.write(header, records, message);
      } else {
        const took = await this.output.write(header, records);
        outcome = took === undefined || took === 'taken' ? 'written' : took;
      }
    } catch (err) {
      if (this.replay) throw err;
      this.failure = isAgentError(err) ? err : new AgentError('OUTPUT_FAILED', `receiver output failed: ${describeError(err)}`, { cause: err });
      this.log.error({ code: this.failure.code, err: describeError(this.failure) }, 'receiver output failed; acknowledging nothing more');
      this.onFailure(this.failure);
      throw this.failure;
    }
    if (outcome === 'stream_limit') {
      this.reject(
        message,
        new AgentError('RECEIVER_STREAM_LIMIT', `device ${header.device} has reached receiver.max_streams_per_device; stream ${header.stream} refused`),
        header.device,
      );
      return;
    }
    if (outcome === 'duplicate' || outcome === 'stale') {
      this.batches.inc({ outcome });
      this.onTaken?.(header);
      return;
    }
    if (!this.replay && !ownMarks) this.dedup.mark(header.device, header.stream, epoch, header.seq, header.count, header.created);
    this.batches.inc({ outcome: outcome === 'written' ? 'accepted' : 'dead_lettered' });
    if (outcome === 'written') this.records.inc(undefined, records.length);
    // A batch set aside is the centre's to replay: the gateway must not resend it for ever.
    this.onTaken?.(header);
  }

  stats(): ReceiverStats {
    return {
      accepted: this.batches.value({ outcome: 'accepted' }),
      records: this.records.value(),
      duplicates: this.batches.value({ outcome: 'duplicate' }),
      stale: this.batches.value({ outcome: 'stale' }),
      deadLettered: this.batches.value({ outcome: 'dead_lettered' }),
      rejected: this.rejections.by('reason'),
    };
  }
}

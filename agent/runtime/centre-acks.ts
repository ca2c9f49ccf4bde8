/**
 * The gateway's half of end-to-end acknowledgement (docs/delivery.md): which acknowledgements are the
 * centre's own, and which batches wait for one.
 *
 * An acknowledgement deletes data, so it is believed only when its tag verifies under this device's
 * acknowledgement key (agent/envelope/ack.ts) and it names this device, these keys and this queue's epoch.
 * Everything else is refused and counted by reason, and logged rate-limited: anyone who can publish on the
 * broker can send them.
 */
import { timingSafeEqual } from 'node:crypto';
import { type BatchAck, type SeqRange, verifyAck } from '../envelope/ack.ts';
import { AgentError, describeError, isAgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LeasedBatch } from '../queue/queue.ts';
import { RateLimitedProblems } from '../telemetry/problems.ts';
import type { Counter, Telemetry } from '../telemetry/registry.ts';

export interface CentreAckIdentity {
  device: string;
  /** This queue's epoch (8 bytes). */
  epoch: Uint8Array;
  deviceKeyId: Uint8Array;
  centreKeyId: Uint8Array;
  /** deviceAckKey(…) of agent/keys/keys.ts. */
  macKey: Uint8Array;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && timingSafeEqual(a, b);

export class CentreAckVerifier {
  private readonly id: CentreAckIdentity;
  private readonly refused: Counter;
  private readonly problems: RateLimitedProblems;

  constructor(id: CentreAckIdentity, telemetry: Telemetry, log: Logger) {
    this.id = id;
    this.refused = telemetry.counter(
      'edge_sender_centre_acks_refused_total',
      'Messages on the acknowledgement topic refused, by reason (malformed, unknown key, forged, for another device or queue epoch)',
      ['reason'],
    );
    this.problems = new RateLimitedProblems({ add: (reason, n) => this.refused.inc({ reason }, n) }, log);
  }

  /** The acknowledgement when it is the centre's for this device and queue; undefined (counted) otherwise. */
  verify(bytes: Uint8Array, origin: string): BatchAck | undefined {
    try {
      const ack = verifyAck(bytes, (a) => {
        if (a.device !== this.id.device)
          throw new AgentError('ACK_FOREIGN', `acknowledgement names device ${JSON.stringify(a.device.slice(0, 64))}, not this one`);
        return same(a.deviceKeyId, this.id.deviceKeyId) && same(a.centreKeyId, this.id.centreKeyId) ? this.id.macKey : undefined;
      });
      if (!same(ack.epoch, this.id.epoch)) {
        // Authentic but for an earlier queue of this device (replaced since): nothing here to delete.
        throw new AgentError('ACK_FOREIGN', `acknowledgement for queue epoch ${Buffer.from(ack.epoch).toString('hex')}, not this queue's`);
      }
      return ack;
    } catch (err) {
      const code = isAgentError(err) ? err.code : 'ACK_MALFORMED';
      this.problems.report(code, 'centre acknowledgement refused', {
        code,
        origin: origin.slice(0, 200),
        bytes: bytes.length,
        err: describeError(err).slice(0, 300),
      });
      return undefined;
    }
  }

  refusedCount(): number {
    return Object.values(this.refused.by('reason')).reduce((a, b) => a + b, 0);
  }
}

export function covers(ranges: readonly SeqRange[], seq: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [first, last] = ranges[mid]!;
    if (seq < first) hi = mid - 1;
    else if (seq > last) lo = mid + 1;
    else return true;
  }
  return false;
}

interface Awaiting {
  batch: LeasedBatch;
  bytes: number;
  timer: NodeJS.Timeout;
  due: number;
}

/**
 * Batches the broker took and the centre has not yet acknowledged. Each has a deadline: `timeoutMs`, doubled
 * for each earlier attempt of the same batch up to `maxTimeoutMs`; at the deadline it is handed back for a
 * re-send (same sequence: the receiver drops the copy and acknowledges again). Any authentic acknowledgement
 * shows the centre is listening again, so deadlines stretched by backoff are brought back to `timeoutMs`.
 * Bounded by the sender's window: at most max_in_flight entries; attempts are remembered for at most
 * `maxRemembered` batches.
 */
export class AwaitingAcks {
  private readonly entries = new Map<string, Awaiting>();
  private readonly attempts = new Map<string, number>();
  private readonly timeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly onTimeout: (batch: LeasedBatch, bytes: number) => void;
  private readonly maxRemembered: number;

  constructor(timeoutMs: number, maxTimeoutMs: number, onTimeout: (batch: LeasedBatch, bytes: number) => void, maxRemembered = 10_000) {
    this.timeoutMs = timeoutMs;
    this.maxTimeoutMs = Math.max(timeoutMs, maxTimeoutMs);
    this.onTimeout = onTimeout;
    this.maxRemembered = maxRemembered;
  }

  private static id(stream: string, seq: number): string {
    return `${stream}\u0000${seq}`;
  }

  add(batch: LeasedBatch, bytes: number): void {
    const attempt = this.attempts.get(batch.key) ?? 0;
    const wait = Math.min(this.maxTimeoutMs, this.timeoutMs * 2 ** Math.min(attempt, 30));
    this.schedule(AwaitingAcks.id(batch.stream, batch.seq), batch, bytes, wait);
  }

  private schedule(id: string, batch: LeasedBatch, bytes: number, wait: number): void {
    const timer = setTimeout(() => {
      this.entries.delete(id);
      if (this.attempts.size >= this.maxRemembered) this.attempts.clear(); // only backoff state is lost
      this.attempts.set(batch.key, (this.attempts.get(batch.key) ?? 0) + 1);
      this.onTimeout(batch, bytes);
    }, wait);
    this.entries.set(id, { batch, bytes, timer, due: Date.now() + wait });
  }

  /** Removes and returns the batches of `stream` that `ranges` cover. */
  take(stream: string, ranges: readonly SeqRange[]): { batch: LeasedBatch; bytes: number }[] {
    const taken: { batch: LeasedBatch; bytes: number }[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.batch.stream !== stream || !covers(ranges, entry.batch.seq)) continue;
      clearTimeout(entry.timer);
      this.entries.delete(id);
      this.attempts.delete(entry.batch.key);
      taken.push({ batch: entry.batch, bytes: entry.bytes });
    }
    return taken;
  }

  /** The centre is listening: waits stretched by backoff shrink back to the first timeout. */
  hurry(): void {
    this.attempts.clear();
    const soon = Date.now() + this.timeoutMs;
    for (const [id, entry] of this.entries) {
      if (entry.due <= soon) continue;
      clearTimeout(entry.timer);
      this.schedule(id, entry.batch, entry.bytes, this.timeoutMs);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** Forgets every batch (the sender stops; they stay in the queue and go again at the next start). */
  clear(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }
}

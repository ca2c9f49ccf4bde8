import { randomBytes } from 'node:crypto';

/** What a write of sequence `seq` must do: go on the open session, or open a new one first. */
export type SendPlan = { open: false } | { open: true; producerName: string; initialSequenceId: number };

/**
 * Keeps Pulsar's broker-side deduplication from ever dropping a batch that was not stored.
 *
 * The broker drops a message as a duplicate when its sequence id is not above the highest one it stored for
 * that producer name. Our sequence id is the batch sequence (one series per device, stream and queue epoch),
 * so a batch sent after a higher one of its series was stored would be "acknowledged" without being kept.
 * A session (one producer connection) sends consecutive sequences, and the broker stores a session's
 * messages in order, so within a session this cannot happen. Between sessions it could (batch 5 fails and
 * waits for its retry while 6 goes on a new session and is stored), so a new session under the same name
 * is opened at `seq` only if
 *  - no lower sequence was attempted under this name without being confirmed, and
 *  - `seq` is above everything sent under this name, or was itself sent under it before (then whatever the
 *    broker stored above it was sent after it, in order, and implies it was stored too).
 * Otherwise the series moves to a fresh producer name (a new generation, never used before: it carries a
 * per-process random part), which the broker has no history for. That costs only broker-side
 * deduplication across the switch; the receiver still deduplicates by (device, stream, epoch, seq).
 *
 * A new process starts at generation 0 again: the previous process kept the invariant above for that name,
 * and every batch it attempted is still in the queue or was confirmed, so the name stays safe.
 */
export class SeriesOrder {
  private readonly base: string;
  private readonly processTag = randomBytes(3).toString('hex');
  private generation = 0;
  /** Sequence ranges sent under the current name, one per session. */
  private sent: { from: number; to: number }[] = [];
  /** Attempted under the current name, neither confirmed nor refused for good. */
  private unconfirmed = new Set<number>();
  private next: number | undefined;

  constructor(base: string) {
    this.base = base;
  }

  get producerName(): string {
    return this.generation === 0 ? this.base : `${this.base}-g${this.processTag}${this.generation}`;
  }

  /** Every write counts, even one that fails before reaching the broker: a later one must not pass it. */
  attempt(seq: number): void {
    this.unconfirmed.add(seq);
  }

  plan(seq: number): SendPlan {
    if (this.next === seq) {
      this.next = seq + 1;
      this.sent[this.sent.length - 1]!.to = seq;
      return { open: false };
    }
    if (!this.safeToOpenAt(seq)) {
      this.generation++;
      this.sent = [];
      this.unconfirmed = new Set([seq]);
    }
    this.next = seq + 1;
    this.sent.push({ from: seq, to: seq });
    return { open: true, producerName: this.producerName, initialSequenceId: seq - 1 };
  }

  private safeToOpenAt(seq: number): boolean {
    for (const u of this.unconfirmed) if (u < seq) return false;
    const highest = Math.max(-Infinity, ...this.sent.map((r) => r.to));
    return seq > highest || this.sent.some((r) => r.from <= seq && seq <= r.to);
  }

  /** The session ended (closed, failed): the next write opens a new one. */
  sessionEnded(): void {
    this.next = undefined;
  }

  /** The broker stored the batch (or already had it). */
  confirmed(seq: number): void {
    this.unconfirmed.delete(seq);
  }

  /** The batch was refused for good and will not come again. */
  refused(seq: number): void {
    this.unconfirmed.delete(seq);
  }
}

import { AgentError, describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LeasedBatch, Queue } from '../queue/queue.ts';
import type { OutgoingBatch } from '../domain/batch.ts';
import type { Sink } from '../contracts/sink.ts';
import { backoffDelay, delay, type BackoffPolicy } from '../util/backoff.ts';
import { Wakeup } from '../util/wakeup.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { type SenderMetrics, senderMetrics } from './sender-metrics.ts';
import { RateLimitedProblems } from '../telemetry/problems.ts';
import type { BatchAck } from '../envelope/ack.ts';
import { AwaitingAcks, type CentreAckVerifier, covers } from './centre-acks.ts';
import type { Governor } from '../governor/governor.ts';

export interface SenderOptions {
  device: string;
  /** The queue's epoch, hex. */
  epoch: string;
  maxInFlight: number;
  /** Envelope bytes in flight at most (written and not yet acknowledged, centre acknowledgements awaited included). */
  maxInFlightBytes?: number;
  writeTimeoutMs: number;
  retry: BackoffPolicy;
  /**
   * End-to-end mode (the sink has `centreAcks`): rows are deleted on the centre's authentic acknowledgement;
   * a batch the broker took is sent again when none came within `timeoutMs` (doubling up to `maxTimeoutMs`).
   */
  centre?: { verifier: CentreAckVerifier; timeoutMs: number; maxTimeoutMs: number };
  /** Which streams may send now, and whether a sealed batch fits (docs/governor.md); absent: everything may. */
  governor?: Governor;
}

export interface SenderStats {
  batchesSent: number;
  recordsSent: number;
  bytesSent: number;
  retries: number;
  rejected: number;
  inFlight: number;
  inFlightBytes: number;
  /** Batches delivered by the centre's acknowledgement, waiting for one, and handed back for a re-send. */
  centre: { acked: number; awaiting: number; resends: number; unmatched: number; refused: number } | undefined;
}

/**
 * Moves batches from the queue to the sink: at most `maxInFlight` writes outstanding, each bounded by a
 * timeout; a retryable failure pauses sending with jittered backoff and the same batch (same sequence, same
 * bytes) goes again; a batch the sink refuses for good is set aside and counted.
 */
export class Sender {
  private readonly inFlight = new Set<string>();
  private inFlightBytes = 0;
  /** Batches being written, by stream and seq: a centre acknowledgement may overtake the broker's. */
  private readonly writing = new Map<string, LeasedBatch>();
  private readonly ackedWhileWriting = new Set<string>();
  private readonly awaiting: AwaitingAcks | undefined;
  private readonly wakeup = new Wakeup();
  private readonly abort = new AbortController();
  private failures = 0;
  /** When a batch was last delivered (ms since the epoch; 0: never): the health gate after a new config reads it. */
  lastDeliveredAt = 0;
  private loop: Promise<void> | undefined;
  /** While set, no new batch is taken (an operator's pause from the status page); writes in flight finish. */
  private pausedByOperator = false;
  private readonly unsubscribe: () => void;
  private readonly metrics: SenderMetrics;
  private drained: (() => void) | undefined;
  private readonly settled = new Wakeup();
  private readonly queue: Queue;
  private readonly sink: Sink;
  private readonly seal: (batch: LeasedBatch) => Uint8Array;
  private readonly opts: SenderOptions;
  private readonly log: Logger;
  /** Retries are logged at most once per error code and interval: a broker answering 0x10 to everything must not flood the log. */
  private readonly retryLog: RateLimitedProblems;

  /** `telemetry` is the agent's registry; a sender on its own (a test, a benchmark) gets one of its own. */
  constructor(queue: Queue, sink: Sink, seal: (batch: LeasedBatch) => Uint8Array, opts: SenderOptions, log: Logger, telemetry: Telemetry = new Telemetry()) {
    this.queue = queue;
    this.sink = sink;
    this.seal = seal;
    this.opts = opts;
    this.log = log;
    this.metrics = senderMetrics(
      telemetry,
      () => this.inFlight.size,
      () => this.inFlightBytes,
    );
    this.retryLog = new RateLimitedProblems({ add: (code, n) => this.metrics.notDelivered.inc({ code }, n) }, log);
    this.unsubscribe = queue.onData(() => this.wakeup.notify());
    const centre = opts.centre;
    if (centre && sink.centreAcks) {
      this.awaiting = new AwaitingAcks(centre.timeoutMs, centre.maxTimeoutMs, (batch, bytes) => {
        this.metrics.centreResends.inc();
        this.log.debug({ stream: batch.stream, seq: batch.seq }, 'no centre acknowledgement in time; sending again');
        this.release(batch, bytes);
      });
      sink.centreAcks.onAck((bytes, origin) => {
        const ack = centre.verifier.verify(bytes, origin);
        if (ack) this.onCentreAck(ack);
      });
    }
  }

  /** An authentic acknowledgement from the centre: its batches are delivered. */
  private onCentreAck(ack: BatchAck): void {
    this.awaiting!.hurry();
    let matched = 0;
    for (const { batch, bytes } of this.awaiting!.take(ack.stream, ack.ranges)) {
      this.delivered(batch, bytes);
      this.metrics.centreAcked.inc();
      matched++;
    }
    for (const batch of this.writing.values()) {
      if (batch.stream === ack.stream && covers(ack.ranges, batch.seq) && !this.ackedWhileWriting.has(batch.key)) {
        this.ackedWhileWriting.add(batch.key);
        matched++;
      }
    }
    if (matched === 0) this.metrics.centreUnmatched.inc();
  }

  /** Deletes the batch's rows (with the next commit) and frees its place in the window. */
  private delivered(batch: LeasedBatch, bytes: number): void {
    this.queue.ack(batch);
    this.lastDeliveredAt = Date.now();
    this.metrics.latency.observe(undefined, Math.max(0, this.lastDeliveredAt - (batch.oldest ?? batch.created)) / 1000);
    this.failures = 0;
    this.metrics.batchesSent.inc();
    this.metrics.recordsSent.inc(undefined, batch.count);
    this.metrics.recordsOut.inc({ stream: batch.stream }, batch.count);
    this.metrics.bytesSent.inc(undefined, bytes);
    this.release(batch, bytes);
  }

  /** Frees the batch's place in the window; unless acknowledged, the queue hands it out again. */
  private release(batch: LeasedBatch, bytes: number): void {
    this.inFlight.delete(batch.key);
    this.inFlightBytes -= bytes;
    this.wakeup.notify();
    this.settled.notify();
  }

  start(): void {
    this.loop ??= this.run().catch((err) => this.log.fatal({ err: describeError(err) }, 'sender stopped unexpectedly'));
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (!this.sink.connected) {
        await this.sink.waitConnected(signal);
        continue;
      }
      if (this.pausedByOperator) {
        await this.wakeup.wait();
        continue;
      }
      const maxBytes = this.opts.maxInFlightBytes ?? Number.POSITIVE_INFINITY;
      // At least one batch is always in flight, whatever its size.
      if (this.inFlight.size >= this.opts.maxInFlight || (this.inFlight.size > 0 && this.inFlightBytes >= maxBytes)) {
        await this.wakeup.wait();
        continue;
      }
      const next = this.sendNext();
      if (next === 'unreadable') {
        await delay(backoffDelay(this.opts.retry, this.failures++), signal);
        continue;
      }
      if (next === 'held') {
        // Held by the governor (or all in flight): ask again at its next check or bucket refill, or on news.
        await Promise.race([delay(this.opts.governor!.retryInMs(), signal), this.wakeup.wait()]);
        continue;
      }
      if (next === 'none') {
        this.drained?.();
        await this.wakeup.wait();
        continue;
      }
      if (this.failures > 0) {
        // After a failure, probe with one batch at a time until the sink works again.
        await this.wakeup.wait();
      }
    }
  }

  /**
   * Leases the next batch and hands it to the sink. Not part of `run`: a batch in a local of that async loop
   * would stay in its suspended frame, body and all, until the next batch replaced it.
   */
  private sendNext(): 'sent' | 'held' | 'none' | 'unreadable' {
    let batch: LeasedBatch | undefined;
    try {
      const governor = this.opts.governor;
      batch = this.queue.nextBatch(this.inFlight, this.opts.maxInFlight - this.inFlight.size, governor?.allows(), governor?.batchBytes());
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'cannot read next batch from the queue');
      return 'unreadable';
    }
    if (!batch) return this.opts.governor && this.queue.hasUnsent() ? 'held' : 'none';
    this.send(batch);
    return 'sent';
  }

  private send(leased: LeasedBatch): void {
    this.inFlight.add(leased.key);
    let bytes: Uint8Array;
    try {
      bytes = this.seal(leased);
    } catch (err) {
      this.inFlight.delete(leased.key);
      this.log.error({ err: describeError(err), stream: leased.stream, seq: leased.seq }, 'cannot seal batch; set aside');
      this.queue.reject(leased);
      this.metrics.rejected.inc();
      return;
    }
    const size = bytes.length;
    if (this.opts.governor && !this.opts.governor.admit(leased.stream, size)) {
      this.inFlight.delete(leased.key); // not written: the queue hands it out again once the governor allows
      return;
    }
    this.inFlightBytes += size;
    const outgoing: OutgoingBatch = { device: this.opts.device, stream: leased.stream, epoch: this.opts.epoch, seq: leased.seq, count: leased.count, bytes };
    // Until its acknowledgement only the batch's identity is kept: the body read from the queue is garbage once
    // sealed, and the sealed bytes are the sink's (a re-send reads and seals the batch again). At full speed an
    // acknowledgement outlasts two scavenges, so whatever the closures below hold is promoted and freed only by
    // a full collection; holding the body and the envelope too kept three copies of every batch in flight.
    const batch: LeasedBatch = { ...leased, body: new Uint8Array(0) };
    const writingId = `${batch.stream}\u0000${batch.seq}`;
    if (this.awaiting) this.writing.set(writingId, batch);
    const centreAcked = () => {
      this.writing.delete(writingId);
      return this.ackedWhileWriting.delete(batch.key);
    };
    this.writeWithTimeout(outgoing).then(
      () => {
        if (!this.awaiting || centreAcked()) {
          if (this.awaiting) this.metrics.centreAcked.inc();
          this.delivered(batch, size);
          return;
        }
        // The broker has it: flow control only. The rows stay until the centre says it holds the batch.
        this.failures = 0;
        this.awaiting.add(batch, size);
        this.wakeup.notify();
      },
      async (err: unknown) => {
        if (this.awaiting && centreAcked()) {
          // The centre acknowledged it while the broker's answer went missing: delivered all the same.
          this.metrics.centreAcked.inc();
          this.delivered(batch, size);
          return;
        }
        const retryable = !(err instanceof AgentError) || err.retryable;
        if (retryable) {
          this.metrics.retries.inc();
          const wait = backoffDelay(this.opts.retry, this.failures++);
          const code = err instanceof AgentError ? err.code : 'SINK_UNAVAILABLE';
          this.retryLog.report(code, 'batch not delivered; will retry', { err: describeError(err), stream: batch.stream, seq: batch.seq, retryInMs: wait });
          await delay(wait, this.abort.signal);
        } else {
          this.metrics.rejected.inc();
          this.log.error({ err: describeError(err), stream: batch.stream, seq: batch.seq, records: batch.count }, 'batch refused by the sink; set aside');
          this.queue.reject(batch);
        }
        this.release(batch, size);
      },
    );
  }

  /** Hands the batch to the sink; what waits for the answer keeps its name, not its bytes. */
  private writeWithTimeout(batch: OutgoingBatch): Promise<void> {
    const name = `${batch.stream}#${batch.seq}`;
    const timeoutMs = this.opts.writeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AgentError('SINK_TIMEOUT', `no acknowledgement for ${name} within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
    });
    return Promise.race([this.sink.write(batch), timeout]).finally(() => clearTimeout(timer));
  }

  /** Resolves when the queue has nothing left to send and nothing is in flight (for tests and `flush`). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.inFlight.size > 0) {
        await this.settled.wait();
        continue;
      }
      if (!this.queue.hasUnsent()) return;
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        this.wakeup.notify();
      });
      // Let timers and I/O run between checks: the loop may report "nothing to send" while a write is
      // being retried.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Holds (true) or resumes (false) forwarding; records keep being queued meanwhile. */
  pause(on: boolean): void {
    this.pausedByOperator = on;
    this.wakeup.notify();
  }

  get paused(): boolean {
    return this.pausedByOperator;
  }

  stats(): SenderStats {
    const m = this.metrics;
    return {
      batchesSent: m.batchesSent.value(),
      recordsSent: m.recordsSent.value(),
      bytesSent: m.bytesSent.value(),
      retries: m.retries.value(),
      rejected: m.rejected.value(),
      inFlight: this.inFlight.size,
      inFlightBytes: this.inFlightBytes,
      centre: this.awaiting
        ? {
            acked: m.centreAcked.value(),
            awaiting: this.awaiting.size,
            resends: m.centreResends.value(),
            unmatched: m.centreUnmatched.value(),
            refused: this.opts.centre!.verifier.refusedCount(),
          }
        : undefined,
    };
  }

  /** Stops taking batches; waits up to `graceMs` for writes in flight to be acknowledged. */
  async stop(graceMs = 5_000): Promise<void> {
    this.abort.abort();
    this.wakeup.notify();
    this.unsubscribe();
    await this.loop;
    const grace = new AbortController();
    let expired = false;
    void delay(graceMs, grace.signal).then(() => {
      expired = true;
      this.settled.notify();
    });
    // Batches awaiting the centre's acknowledgement are not waited for: their rows stay and go again next time.
    while (this.inFlight.size - (this.awaiting?.size ?? 0) > 0 && !expired) await this.settled.wait();
    grace.abort(); // do not keep the process alive for the rest of the grace period
    this.awaiting?.clear();
  }
}

/**
 * Poison-batch handling: what the receiver does with an authenticated batch it cannot output. The rule
 * (docs/operations.md, "Batches the receiver cannot output"):
 *
 * - the batch's own fault, which no retry can mend (a limit of the receiver's, a record the output cannot
 *   serialise: OUTPUT_UNWRITABLE): set aside in the dead-letter store at once;
 * - the output's fault that may clear (its file system full or failing: a retryable OUTPUT_FAILED): retried
 *   with backoff (0.5 s doubling to 30 s) for up to `receiver.output_retry_for`; nothing after it is
 *   acknowledged meanwhile, since every batch goes to the same output. A batch still failing after that is
 *   set aside, and the next one starts its own retries;
 * - the output gone for good (stdout's reader exited, the file system read-only): thrown, so the receiver
 *   stops acknowledging and exits, as dead-lettering every batch would only move the stream elsewhere.
 *
 * A set-aside batch is then acknowledged, counted (edge_receiver_dead_letters_total by reason) and logged at a
 * bounded rate. If the store cannot take it either, that is thrown as DEAD_LETTER_FAILED: nothing is
 * acknowledged that is not kept somewhere.
 */
import type { AgentRecord } from '../domain/record.ts';
import type { IncomingMessage } from '../domain/batch.ts';
import type { EnvelopeHeader } from '../envelope/header.ts';
import { malformedReason } from '../envelope/malformed.ts';
import { AgentError, describeError, isAgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { RateLimitedProblems } from '../telemetry/problems.ts';
import type { Counter, Telemetry } from '../telemetry/registry.ts';
import type { DeadLetterStore } from './dead-letter.ts';
import type { RecordOutput, TakeOutcome } from './output.ts';

export const DEFAULT_OUTPUT_RETRY_FOR_MS = 5 * 60_000;
const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 30_000;

export interface PoisonOptions {
  /** How long a retryable output error is retried for one batch before it is set aside (ms). */
  retryForMs?: number;
  problemIntervalMs?: number;
  /** Waits between retries; the default sleeps and wakes early when aborted. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** The stable reason a batch was set aside: the error code, with the malformed reason when there is one. */
export function deadLetterReason(err: unknown): string {
  if (!isAgentError(err)) return 'OUTPUT_UNWRITABLE';
  const reason = malformedReason(err);
  return reason === undefined ? err.code : `${err.code}/${reason}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class PoisonHandling {
  private readonly store: DeadLetterStore;
  private readonly output: RecordOutput;
  private readonly retryForMs: number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly deadLetters: Counter;
  private readonly dropped: Counter;
  private readonly retries: Counter;
  private readonly problems: RateLimitedProblems;
  private readonly stopping = new AbortController();

  constructor(store: DeadLetterStore, output: RecordOutput, log: Logger, telemetry: Telemetry, options: PoisonOptions = {}) {
    this.store = store;
    this.output = output;
    this.retryForMs = options.retryForMs ?? DEFAULT_OUTPUT_RETRY_FOR_MS;
    this.sleep = options.sleep ?? sleep;
    this.deadLetters = telemetry.counter('edge_receiver_dead_letters_total', 'Batches set aside in the dead-letter store, by reason', ['reason']);
    this.dropped = telemetry.counter(
      'edge_receiver_dead_letters_dropped_total',
      'Dead-lettered batches dropped because the store reached receiver.dead_letter.max_bytes',
    );
    this.retries = telemetry.counter('edge_receiver_output_retries_total', 'Output writes retried after a retryable error (a full disk, say)');
    telemetry.gauge('edge_receiver_dead_letters', 'Batches waiting in the dead-letter store', [], (g) => g.set(undefined, store.count()));
    this.problems = new RateLimitedProblems({ add: () => {} }, log, { intervalMs: options.problemIntervalMs });
  }

  /**
   * Writes the batch, retrying what may clear; returns 'dead_lettered' if it was set aside instead. Throws
   * (and the batch must not be acknowledged) when the output is gone or the store failed.
   */
  async write(header: EnvelopeHeader, records: AgentRecord[], message: IncomingMessage): Promise<'written' | 'dead_lettered' | Exclude<TakeOutcome, 'taken'>> {
    const started = Date.now();
    let delay = FIRST_RETRY_MS;
    for (;;) {
      try {
        const outcome = await this.output.write(header, records);
        return outcome === undefined || outcome === 'taken' ? 'written' : outcome;
      } catch (err) {
        if (isAgentError(err, 'OUTPUT_UNWRITABLE')) {
          this.setAside(header, records.length, message, err);
          return 'dead_lettered';
        }
        if (!isAgentError(err) || !err.retryable) throw err;
        if (this.stopping.signal.aborted) throw err;
        if (Date.now() - started >= this.retryForMs) {
          this.setAside(header, records.length, message, err);
          return 'dead_lettered';
        }
        this.retries.inc();
        this.problems.report(
          'output_retry',
          'receiver output failed; retrying, nothing more is acknowledged until it works',
          { code: err.code, err: describeError(err).slice(0, 300), retryInMs: delay },
          { level: 'error' },
        );
        await this.sleep(delay, this.stopping.signal);
        delay = Math.min(delay * 2, LONGEST_RETRY_MS);
      }
    }
  }

  /** Keeps an authenticated batch the receiver will not output, with why; durable when this returns. */
  setAside(header: EnvelopeHeader, records: number, message: IncomingMessage, err: unknown): void {
    const reason = deadLetterReason(err);
    const device = header.device;
    let outcome: ReturnType<DeadLetterStore['add']>;
    try {
      outcome = this.store.add({
        device,
        stream: header.stream,
        epoch: Buffer.from(header.epoch).toString('hex'),
        seq: header.seq,
        records,
        origin: message.origin.slice(0, 1000),
        reason,
        message: describeError(err),
        envelope: message.bytes,
      });
    } catch (cause) {
      throw new AgentError('DEAD_LETTER_FAILED', `cannot set batch ${device}/${header.stream}#${header.seq} aside (${reason}): ${describeError(cause)}`, {
        cause,
      });
    }
    this.deadLetters.inc({ reason });
    if (outcome.dropped > 0) {
      this.dropped.inc(undefined, outcome.dropped);
      this.problems.report('dead_letter_full', 'dead-letter store full: oldest batches dropped', { dropped: outcome.dropped }, { level: 'error' });
    }
    // Authenticated, so the device is a known one: rate-limited per device and reason, a finite set.
    this.problems.report(
      `dead_letter:${reason}`,
      'batch set aside in the dead-letter store',
      { reason, device, stream: header.stream, seq: header.seq, id: outcome.id, err: describeError(err).slice(0, 300) },
      { key: device, level: 'error' },
    );
  }

  /** Ends a retry in progress (its batch stays unacknowledged, for redelivery). */
  stop(): void {
    this.stopping.abort();
  }
}

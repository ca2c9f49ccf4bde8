/**
 * One rate-limited way to report trouble that can repeat without end (a line of garbage on a serial port, a
 * sensor file that went missing, a broker refusing every connection): every occurrence is counted exactly in
 * the telemetry registry; the log gets the first at once and then at most one line per kind (and key) per
 * interval, carrying how many were not logged since. A device that spews garbage must not flood the log, or
 * the flash card the log is written to.
 */
import type { Logger } from '../log.ts';
import type { Counters } from './counters.ts';

export type ProblemLevel = 'error' | 'warn' | 'info';

export interface ProblemOptions {
  /** Rate-limits per (kind, key) instead of per kind: one sensor path, one topic. */
  readonly key?: string;
  readonly level?: ProblemLevel;
}

export interface ProblemReporter {
  /** Counts one `kind` problem (a counter of that name) and logs it unless the same was logged within the interval. */
  report(kind: string, message: string, fields?: Record<string, unknown>, options?: ProblemOptions): void;
}

export class RateLimitedProblems implements ProblemReporter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly counters: Counters;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(counters: Counters, log: Logger, options: { intervalMs?: number; now?: () => number } = {}) {
    this.counters = counters;
    this.log = log;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  report(kind: string, message: string, fields: Record<string, unknown> = {}, options: ProblemOptions = {}): void {
    this.counters.add(kind);
    const key = options.key === undefined ? kind : `${kind}\u0000${options.key}`;
    const now = this.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    // Bounded: one entry per kind and key ever seen, and a driver's kinds and keys are finite (paths, topics).
    this.last.set(key, { at: now, suppressed: 0 });
    const suppressed = seen && seen.suppressed > 0 ? { suppressed: seen.suppressed } : {};
    this.log[options.level ?? 'warn']({ kind, ...fields, ...suppressed }, message);
  }
}

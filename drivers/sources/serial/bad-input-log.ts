import type { Logger } from '../../../agent/sdk/index.ts';

/**
 * Logs bad input at a bounded rate: the first occurrence of each kind at once, then at most one line per kind
 * per interval carrying how many were not logged in between. A line that spews garbage must not flood the
 * log (or the flash it is written to); the counters keep the exact totals.
 */
export class BadInputLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly log: Logger;
  private readonly intervalMs: number;

  constructor(log: Logger, intervalMs = 10_000) {
    this.log = log;
    this.intervalMs = intervalMs;
  }

  report(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const seen = this.last.get(kind);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.log.warn({ kind, ...fields, ...(seen && seen.suppressed > 0 ? { suppressed: seen.suppressed } : {}) }, message);
    this.last.set(kind, { at: now, suppressed: 0 });
  }
}

/** The start of some bad bytes, readable in a log line: text when printable, hex otherwise. */
export function sample(bytes: Buffer, max = 48): { sample: string } | { sample_hex: string } {
  const head = bytes.subarray(0, max);
  const printable = head.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
  const more = bytes.length > max ? '…' : '';
  return printable ? { sample: head.toString('latin1') + more } : { sample_hex: head.toString('hex') + more };
}

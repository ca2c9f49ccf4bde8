/**
 * A token bucket on bytes on the wire. Tokens refill at `rate` bytes per second up to `burst`; a send takes
 * its bytes after the fact and may leave the bucket in debt (a batch's size is known only once sealed), which
 * later refills repay, so the rate holds over any minute. Time comes from the caller's monotonic clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly rate: number;
  readonly burst: number;

  constructor(ratePerSecond: number, burst: number, nowMs: number) {
    this.rate = ratePerSecond;
    this.burst = burst;
    this.tokens = burst;
    this.last = nowMs;
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.last);
    this.last = Math.max(this.last, nowMs);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }

  /** Tokens available now (negative: in debt). */
  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  take(bytes: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= bytes;
  }

  /** Milliseconds until the bucket holds at least `bytes` (0: now). */
  waitFor(bytes: number, nowMs: number): number {
    const missing = Math.min(bytes, this.burst) - this.available(nowMs);
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.rate);
  }
}

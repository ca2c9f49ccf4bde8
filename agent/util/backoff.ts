/**
 * Exponential backoff with "full jitter": the delay is drawn uniformly from [0, min(max, initial * 2^attempt)].
 * Jitter spreads the reconnects of a fleet that lost its broker at the same moment.
 * Kept here rather than taken from a retry library because the runtime retries loops (a sender, a
 * reconnect), not single calls, and only needs this number.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** No delay is shorter than this (a metered link: handshakes cost money); the jitter spreads above it. */
  floorMs?: number;
}

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const floor = policy.floorMs ?? 0;
  const ceiling = Math.max(floor, Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30)));
  return Math.round(floor + (ceiling - floor) * random());
}

/** Resolves after `ms`, or at once (without throwing) when the signal aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

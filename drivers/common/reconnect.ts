/**
 * One reconnect policy for every driver: jittered exponential backoff (the SDK's `backoffDelay`) around a
 * single pending timer, and the `reconnect:` config block that tunes it, declared once. Drivers used to
 * keep their own attempt counters and timers, each with its own small differences.
 */
import { backoffDelay, duration, z, type BackoffPolicy } from '../../agent/sdk/index.ts';

const DEFAULTS = { initial_delay: 500, max_delay: 60_000 };

/** The `reconnect:` block of a driver's options (initial_delay 500ms, max_delay 1m unless given). */
export function reconnectOptions(defaults: { initial_delay: number; max_delay: number } = DEFAULTS) {
  return z
    .strictObject({
      initial_delay: duration().default(defaults.initial_delay),
      max_delay: duration().default(defaults.max_delay),
      min_delay: duration()
        .default(0)
        .describe('No reconnect sooner than this (the governor raises it on a metered link: governor.gates.metered.reconnect_floor).'),
    })
    .default({ ...defaults, min_delay: 0 })
    .describe('Reconnect backoff with full jitter between min_delay and min(max_delay, initial_delay·2^attempt).');
}

export type ReconnectOptions = z.output<ReturnType<typeof reconnectOptions>>;

/** The backoff policy of a parsed `reconnect:` block. */
export function backoffPolicy(options: ReconnectOptions): BackoffPolicy {
  return { initialMs: options.initial_delay, maxMs: options.max_delay, floorMs: options.min_delay };
}

/**
 * A fixed wait between attempts, no growth and no jitter: for a driver whose config promises one period
 * (the MQTT source's `reconnect_delay`).
 */
export function fixedDelay(ms: number): BackoffPolicy & { jitter: false } {
  return { initialMs: ms, maxMs: ms, jitter: false };
}

/**
 * Schedules reconnect attempts: at most one is pending at a time, the n-th failure since the last success
 * waits `backoffDelay(policy, n)`, and after `cancel` (the driver is closing) nothing runs again.
 *
 *   connection lost / attempt failed → schedule(tryAgain)
 *   connection up                   → succeeded()
 *   closing                         → cancel()
 */
export class Reconnector {
  private readonly policy: BackoffPolicy;
  private readonly random: () => number;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private cancelled = false;

  constructor(policy: BackoffPolicy & { jitter?: boolean }, random: () => number = Math.random) {
    this.policy = { initialMs: policy.initialMs, maxMs: policy.maxMs, floorMs: policy.floorMs };
    // Without jitter the delay is the ceiling itself.
    this.random = policy.jitter === false ? () => 1 : random;
  }

  /** Attempts scheduled since the last success (0: none failed yet). */
  get attempt(): number {
    return this.failures;
  }

  /** True while an attempt waits for its turn. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Runs `attempt` after the next backoff delay and returns that delay; undefined (and nothing scheduled)
   * when one is already pending or the reconnector was cancelled. A rejection of `attempt` is the caller's to
   * handle: it is swallowed here so it cannot become an unhandled rejection.
   */
  schedule(attempt: () => unknown): number | undefined {
    if (this.cancelled || this.timer) return undefined;
    const wait = backoffDelay(this.policy, this.failures++, this.random);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.cancelled) return;
      const result = attempt();
      if (result instanceof Promise) result.catch(() => {});
    }, wait);
    return wait;
  }

  /** The connection is up: the next loss starts again from the initial delay. */
  succeeded(): void {
    this.failures = 0;
  }

  /** Stops for good: the pending attempt is dropped and later `schedule` calls do nothing. */
  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

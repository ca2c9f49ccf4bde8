/**
 * The time budgets are kept in. The wall clock of a gateway jumps: no RTC (1970 at boot), NTP corrections,
 * an operator's mistake. Budget periods must neither reopen when it jumps back nor be skipped when it jumps
 * ahead, so governed time moves only forward and never by more than real (monotonic) elapsed time. Across a
 * restart within one boot, /proc/uptime tells the real elapsed time; after a reboot nothing does, and the
 * later of the persisted time and the wall clock is taken.
 */

/** Before this the wall clock is taken as unset (no RTC yet): governed time may then follow it forward. */
export const EARLIEST_PLAUSIBLE_MS = Date.UTC(2025, 0, 1);

export interface ClockSource {
  /** The wall clock, ms since the epoch. */
  wallMs(): number;
  /** A monotonic clock since boot, ms (CLOCK_BOOTTIME: /proc/uptime). */
  uptimeMs(): number;
  /** Identifies the boot: uptime values compare only within one. */
  bootId(): string;
}

export interface ClockMark {
  /** Governed time, ms since the epoch. */
  readonly t: number;
  readonly uptime: number;
  readonly boot: string;
}

export class GovernedClock {
  private readonly source: ClockSource;
  private t: number;
  private lastWall: number;
  private lastUptime: number;
  private readonly boot: string;

  /** `mark`: the persisted governed time, if any. */
  constructor(source: ClockSource, mark: ClockMark | undefined) {
    this.source = source;
    const wall = source.wallMs();
    const uptime = source.uptimeMs();
    this.boot = source.bootId();
    if (mark === undefined) this.t = wall;
    else if (mark.boot === this.boot && uptime >= mark.uptime) this.t = mark.t + Math.min(Math.max(0, wall - mark.t), uptime - mark.uptime);
    else this.t = Math.max(mark.t, wall);
    this.lastWall = wall;
    this.lastUptime = uptime;
  }

  /** Governed time now: forward by the wall clock's step, clamped to [0, real elapsed]. */
  now(): number {
    const wall = this.source.wallMs();
    const uptime = this.source.uptimeMs();
    const real = Math.max(0, uptime - this.lastUptime);
    const step = this.t < EARLIEST_PLAUSIBLE_MS && wall > this.t ? wall - this.t : Math.min(Math.max(0, wall - this.lastWall), real);
    this.t += step;
    this.lastWall = wall;
    this.lastUptime = uptime;
    return this.t;
  }

  mark(): ClockMark {
    return { t: this.now(), uptime: this.lastUptime, boot: this.boot };
  }
}

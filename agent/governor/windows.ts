/**
 * Send windows: a cron expression in an IANA time zone marks when a window opens, and it stays open for a
 * duration of real time. A class or stream named by any window sends only while one of its windows is open; a
 * stream named by a window follows its windows, whatever its class's. The cron library reads the expression
 * and the zone (croner), so DST changes are its business, not a hand-written parser's.
 */
import { Cron } from 'croner';
import type { GovernorConfig, PriorityClass } from '../config/governor-schema.ts';

interface Window {
  readonly cron: Cron;
  readonly durationMs: number;
  readonly classes: ReadonlySet<string>;
  readonly streams: ReadonlySet<string>;
}

export class SendWindows {
  private readonly windows: Window[];

  constructor(config: GovernorConfig['windows']) {
    this.windows = config.map((w) => ({
      cron: new Cron(w.cron, { timezone: w.timezone, paused: true }),
      durationMs: w.duration,
      classes: new Set(w.classes),
      streams: new Set(w.streams),
    }));
  }

  get empty(): boolean {
    return this.windows.length === 0;
  }

  /** Whether `window` is open at `now`: a start lies in (now − duration, now]. */
  private isOpen(window: Window, now: number): boolean {
    const start = window.cron.nextRun(new Date(now - window.durationMs));
    return start !== null && start.getTime() <= now;
  }

  /** Undefined: no window governs this stream. Otherwise whether one of its windows is open at `now`. */
  allows(stream: string, cls: PriorityClass, now: number): boolean | undefined {
    let governing = this.windows.filter((w) => w.streams.has(stream));
    if (governing.length === 0) governing = this.windows.filter((w) => w.classes.has(cls));
    if (governing.length === 0) return undefined;
    return governing.some((w) => this.isOpen(w, now));
  }

  /** Whether any window naming `cls` is open (for status: a class is held by its windows). */
  classOpen(cls: PriorityClass, now: number): boolean | undefined {
    const governing = this.windows.filter((w) => w.classes.has(cls));
    if (governing.length === 0) return undefined;
    return governing.some((w) => this.isOpen(w, now));
  }
}

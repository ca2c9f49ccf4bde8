import type { Counters, Logger } from '../../../agent/sdk/index.ts';

/** The kinds of trouble a poll counts; each is a counter of the same name in the source's status. */
export type ProblemKind =
  | 'missing_file' // a file the device must have is not there (or went away between the listing and the read)
  | 'unreadable_value' // the file was read but holds no number ("abc", empty, a truncated w1_slave)
  | 'read_error' // the read itself failed (EIO from a bus, ENODATA from an absent battery, EACCES)
  | 'bad_crc' // a 1-wire scratchpad whose CRC check failed (or a shorted bus that reads all zeros)
  | 'device_vanished' // the device directory disappeared while this poll was reading it
  | 'device_lost'; // a device reported by the previous poll is no longer listed

/**
 * Counts problems and logs them without flooding: a problem at a path is a warning the first poll it appears
 * and debug while it persists; when it clears, that is logged once too.
 */
export class ProblemLog {
  private previous = new Map<string, ProblemKind>();
  private current = new Map<string, ProblemKind>();

  private readonly counters: Counters;

  private readonly log: Logger;

  constructor(counters: Counters, log: Logger) {
    this.counters = counters;
    this.log = log;
  }

  report(kind: ProblemKind, path: string, detail?: string): void {
    this.counters.add(kind);
    const key = `${kind}\u0000${path}`;
    if (this.current.has(key)) return;
    this.current.set(key, kind);
    const fields = detail === undefined ? { kind, path } : { kind, path, detail };
    if (this.previous.has(key)) this.log.debug(fields, 'sensor problem persists');
    else this.log.warn(fields, 'sensor problem; reading skipped');
  }

  /** Called after every poll: what was wrong before and is fine now gets one line. */
  endPoll(): void {
    for (const [key, kind] of this.previous) {
      if (!this.current.has(key) && kind !== 'device_lost' && kind !== 'device_vanished')
        this.log.info({ kind, path: key.split('\u0000')[1] }, 'sensor problem cleared');
    }
    this.previous = this.current;
    this.current = new Map();
  }
}

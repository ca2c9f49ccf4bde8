import type { Counters, Logger, ProblemReporter } from '../../../agent/sdk/index.ts';

/** The kinds of trouble a poll counts; each is a counter of the same name in the source's status. */
export type ProblemKind =
  | 'missing_file' // a file the device must have is not there (or went away between the listing and the read)
  | 'unreadable_value' // the file was read but holds no number ("abc", empty, a truncated w1_slave)
  | 'read_error' // the read itself failed (EIO from a bus, ENODATA from an absent battery, EACCES)
  | 'bad_crc' // a 1-wire scratchpad whose CRC check failed (or a shorted bus that reads all zeros)
  | 'device_vanished' // the device directory disappeared while this poll was reading it
  | 'device_lost'; // a device reported by the previous poll is no longer listed

/**
 * Per-path problem state across polls, on top of the source's problem reporter: a problem at a path is
 * reported (counted, and warned through the reporter's rate limit per kind and path, so a flapping sensor
 * cannot flood the log) the poll it appears; while it persists it is counted with a debug line per poll;
 * when it clears, that is logged once.
 */
export class SensorProblems {
  private previous = new Map<string, ProblemKind>();
  private current = new Map<string, ProblemKind>();
  private readonly problems: ProblemReporter;
  private readonly counters: Counters;
  private readonly log: Logger;

  constructor(problems: ProblemReporter, counters: Counters, log: Logger) {
    this.problems = problems;
    this.counters = counters;
    this.log = log;
  }

  report(kind: ProblemKind, path: string, detail?: string): void {
    const key = `${kind}\u0000${path}`;
    const fields = detail === undefined ? { path } : { path, detail };
    if (this.current.has(key)) {
      this.counters.add(kind); // the same problem again within this poll: counted, already logged
      return;
    }
    this.current.set(key, kind);
    if (this.previous.has(key)) {
      // Still there since the last poll: the reporter was told when it appeared; count it and note it at debug.
      this.counters.add(kind);
      this.log.debug({ kind, ...fields }, 'sensor problem persists');
    } else this.problems.report(kind, 'sensor problem; reading skipped', fields, { key: path });
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

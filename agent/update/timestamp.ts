/**
 * The timestamp: a short-lived signed statement that a manifest is still current (TUF's timestamp role). The
 * device keeps the newest timestamp it accepted (its version and its `issued`) on disk, so:
 *
 * - an older timestamp replayed is `stale_timestamp`, whatever the clock says;
 * - the device's notion of now is never earlier than the newest `issued` it verified, so a clock set
 *   backwards cannot make an expired timestamp (or manifest) look valid again;
 * - when the newest timestamp has expired and no fresher one came, the device is frozen: it says so in its
 *   status and installs nothing until a fresh one arrives.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRefusal, Refusal, type TrustChain, type UpdateTimestampDocument } from '../trust/index.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { makeDirs } from '../util/make-dirs.ts';

export interface KeptTimestamp {
  version: number;
  issued: string;
  expires: string;
  manifest: string;
}

/**
 * The clock of the update checks. `EDGE_AGENT_CLOCK_OFFSET_S` shifts it (seconds, may be negative): how the
 * tests set a device's clock backwards, and how an operator reproduces a device with a wrong clock.
 */
export function updateClock(env: NodeJS.ProcessEnv = process.env): () => number {
  const offset = Number(env.EDGE_AGENT_CLOCK_OFFSET_S ?? 0) * 1000;
  return Number.isFinite(offset) && offset !== 0 ? () => Date.now() + offset : Date.now;
}

export class TimestampKeeper {
  private readonly path: string;
  private kept: KeptTimestamp | undefined;

  constructor(dir: string) {
    makeDirs(dir);
    this.path = join(dir, 'update-timestamp.json');
    try {
      this.kept = JSON.parse(readFileSync(this.path, 'utf8')) as KeptTimestamp;
    } catch {
      this.kept = undefined;
    }
  }

  get newest(): KeptTimestamp | undefined {
    return this.kept;
  }

  /** Now, never earlier than the newest `issued` this device verified. */
  now(clock: number): number {
    return Math.max(clock, this.kept ? Date.parse(this.kept.issued) : 0);
  }

  /** Verifies and keeps a timestamp; returns it. An expired or older one is `stale_timestamp`. */
  accept(chain: Pick<TrustChain, 'verify'>, envelope: unknown, clock: number): UpdateTimestampDocument {
    let document: UpdateTimestampDocument;
    try {
      document = chain.verify(envelope, 'update-timestamp', new Date(this.now(clock))).document;
    } catch (err) {
      if (isRefusal(err, 'expired')) throw new Refusal('stale_timestamp', `the timestamp ${err.message.replace(/^expired: /, '')}`);
      throw err;
    }
    const kept = this.kept;
    if (kept && (document.version < kept.version || (document.version === kept.version && document.manifest !== kept.manifest)))
      throw new Refusal('stale_timestamp', `timestamp version ${document.version}; this device has seen version ${kept.version}`);
    if (!kept || document.version > kept.version) {
      this.kept = { version: document.version, issued: document.issued, expires: document.expires, manifest: document.manifest };
      writeFileAtomic(this.path, JSON.stringify(this.kept));
    }
    return document;
  }

  /** The newest timestamp vouches for `manifest` and has not expired. */
  vouches(manifest: string, clock: number): boolean {
    return this.kept !== undefined && this.kept.manifest === manifest && Date.parse(this.kept.expires) > this.now(clock);
  }

  /** A timestamp was seen and the newest one has expired: the device is cut off from fresh metadata. */
  frozen(clock: number): boolean {
    return this.kept !== undefined && Date.parse(this.kept.expires) <= this.now(clock);
  }
}

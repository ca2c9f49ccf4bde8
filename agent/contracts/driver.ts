/**
 * What the runtime hands every driver when it creates one, and what every driver declares about itself.
 * The runtime knows drivers only through these contracts and the catalog the composition root gives it.
 */
import type { z } from '../util/zod.ts';
import type { Logger } from '../log.ts';
import type { WireMeter } from '../util/wire.ts';

export type { MeteredSocket, WireMeter } from '../util/wire.ts';
import type { Counters } from '../telemetry/counters.ts';
import type { ProblemReporter } from '../telemetry/problems.ts';

export interface DriverEnv {
  readonly log: Logger;
  /** Absolute directory that relative paths in this driver's config are resolved against. */
  readonly baseDir: string;
  /** This instance's counters in the telemetry registry (reconnects, bad frames…). */
  readonly counters: Counters;
  /** Rate-limited problem reports (counted in `counters`, logged without flooding). */
  readonly problems: ProblemReporter;
  /**
   * Present when the governor counts bytes on the wire (docs/governor.md): a driver hands it every socket it
   * opens, as it opens it, so TLS records, protocol framing, handshakes and failed attempts are all counted.
   */
  readonly wire?: WireMeter;
  /**
   * Present when the governor waits for the centre (governor.gates.centre): a sink that can tell whether the
   * centre's receiver listens (a retained online state) reports every change.
   */
  readonly centreOnline?: (online: boolean) => void;
}

/** What every driver declares: its type name (the `type:` in config), a one-line summary and its options schema. */
export interface DriverInfo<O extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  readonly summary: string;
  /** The driver's own config, declared once: its types, validation, defaults and reference docs all come from it. */
  readonly options: O;
}

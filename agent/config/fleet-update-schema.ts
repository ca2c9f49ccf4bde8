/**
 * `fleet.update`: how this device takes a new executable over the control connection (docs/update.md,
 * "Delivery"). Its own file because it is a feature of its own; fleet-schema.ts adds it in one line.
 */
import { z } from '../util/zod.ts';
import { duration, size } from '../util/units.ts';

const WINDOW = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/;

export const fleetUpdateSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Take signed self-update manifests and download new executables over the control connection.'),
    releases_dir: z
      .string()
      .optional()
      .describe(
        'The release layout (`releases/`, `current`, `committed`; docs/update.md). Default: found from the running executable when it runs as `<dir>/releases/<version>/edge-agent` (relative to the config file).',
      ),
    window: z
      .string()
      .regex(WINDOW, 'window must be HH:MM-HH:MM (UTC), for example 02:00-05:00')
      .optional()
      .describe(
        'Maintenance window (UTC, `HH:MM-HH:MM`, may wrap past midnight) in which a downloaded update is installed; without it, any time. A manifest with `force` ignores it.',
      ),
    alarm_priority: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(80)
      .describe('An update waits while records of a stream at this queue priority or higher are queued (an alarm backlog draining), unless forced.'),
    max_bytes: size()
      .prefault('256MiB')
      .describe('Largest executable a manifest may announce; a larger one is refused as `oversize` before a byte is fetched.'),
    in_flight: z.number().int().min(1).max(64).default(8).describe('Chunks (of at most 64 KiB) asked for at once: the memory a download holds.'),
    retry_after: duration().prefault('10s').describe('No chunk for this long: ask again for the chunks in flight.'),
    trial_deadline: duration().prefault('90s').describe('Time the new version has to pass its health gate and commit before it is rolled back.'),
  })
  .prefault({})
  .describe('Self-update over the control connection (docs/update.md).');

export type FleetUpdateConfig = z.infer<typeof fleetUpdateSchema>;

/** True when `at` is inside `window` (`HH:MM-HH:MM` UTC; undefined: always). */
export function inWindow(window: string | undefined, at: Date): boolean {
  const m = window ? WINDOW.exec(window) : null;
  if (!m) return true;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes();
  return start <= end ? minute >= start && minute < end : minute >= start || minute < end;
}

/**
 * Which output the receiver writes to, from its config section (docs/centre.md, "Outputs"). One entry per
 * kind: an output is a `RecordOutput` (agent/receiver/output.ts); one that keeps its own dedup marks in the
 * same transaction as its records sets `dedupsItself` and resolves `write` with what it found.
 */
import { resolve } from 'node:path';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import { jsonLinesOutput, type RecordOutput } from '../output.ts';
import { postgresOutput } from './postgres.ts';

export type ReceiverSection = NonNullable<Config['receiver']>;

export async function createOutput(section: ReceiverSection, baseDir: string, log: Logger): Promise<RecordOutput> {
  if (section.postgres) {
    return postgresOutput(section.postgres, {
      window: section.dedup_window,
      epochs: section.dedup_epochs,
      streamsPerDevice: section.max_streams_per_device,
      baseDir,
      log: log.child({ output: 'postgres' }),
    });
  }
  return jsonLinesOutput(section.output === '-' ? '-' : resolve(baseDir, section.output));
}

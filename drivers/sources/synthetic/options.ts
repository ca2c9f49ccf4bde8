import { z } from '../../../agent/sdk/index.ts';
import { SHAPES } from './shapes.ts';

/** Built on first use (agent/sdk/define.ts). */
export const options = () =>
  z.strictObject({
    rate: z.number().nonnegative().default(10).describe('Records per second; 0 means as fast as the queue takes them.'),
    count: z.number().int().nonnegative().default(0).describe('Stop after this many records in total (across restarts); 0 means never stop.'),
    batch: z.number().int().min(1).max(100_000).default(500).describe('Records handed to the queue per emit.'),
    sensors: z.number().int().min(1).optional().describe('Distinct sensor ids (default 16 for `classic`, 400 for `realistic`).'),
    shape: z
      .enum(SHAPES)
      .default('classic')
      .describe(
        '`classic`: the small {n, ts, sensor, value, unit} record (one timestamp per emit, a smooth value; compresses unrealistically well). `realistic`: a timestamp per record, noisy float readings, hundreds of sensor ids, a status; sized by record_bytes.',
      ),
    record_bytes: z
      .number()
      .int()
      .min(40)
      .max(1_000_000)
      .default(120)
      .describe('Approximate JSON size of a `realistic` record in bytes: below 100 a compact form, above ≈140 an array of float readings grows it.'),
    max_pending: z
      .number()
      .int()
      .min(1)
      .default(16)
      .describe(
        'Emits awaiting their commit at once; the one that fills this window is committed at once (not after queue.commit_interval), and the source waits for the oldest.',
      ),
    commit_log: z
      .string()
      .optional()
      .describe(
        "Test and diagnostic use: a file (relative to the config file; keep it off the queue's disk) to which the last record number of each emit is appended as a line, synced, once the emit is committed: what the source was told is durable, for power-loss tests to compare the queue against.",
      ),
  });
export type Options = z.output<ReturnType<typeof options>>;

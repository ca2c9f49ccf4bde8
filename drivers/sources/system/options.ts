import { z } from '../../../agent/sdk/index.ts';

const GROUPS = ['cpu', 'load', 'memory', 'disk', 'network', 'thermal', 'hwmon'] as const;

/** Built on first use (agent/sdk/define.ts). */
export const options = () =>
  z.strictObject({
    proc_root: z.string().default('/proc').describe('Where procfs is mounted (tests point it at a fixture tree).'),
    sys_root: z.string().default('/sys').describe('Where sysfs is mounted (tests point it at a fixture tree).'),
    mounts: z.array(z.string()).default(['/']).describe('File systems whose usage is reported.'),
    include: z
      .array(z.enum(GROUPS))
      .default([...GROUPS])
      .describe('Which readings to take.'),
  });
export type Options = z.output<ReturnType<typeof options>>;

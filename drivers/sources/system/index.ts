import { resolve } from 'node:path';
import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const systemSource = defineSourceDriver({
  type: 'system',
  summary: 'CPU, load, memory, disk, network counters, thermal zones and hwmon temperatures of this Linux machine.',
  mode: 'polled',
  options,
  // Relative paths follow the driver contract: they are relative to the config file, not to the working directory.
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) =>
    new (await import('./source.ts')).SystemSource({
      ...config,
      proc_root: resolve(env.baseDir, config.proc_root),
      sys_root: resolve(env.baseDir, config.sys_root),
      mounts: config.mounts.map((m) => resolve(env.baseDir, m)),
    }),
});

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError, defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const sensorsSource = defineSourceDriver({
  type: 'sensors',
  summary: 'Attached sensors through Linux sysfs: hwmon, thermal zones, IIO, 1-wire thermometers and power supplies, in declared units.',
  mode: 'polled',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  async create(config, env) {
    // Relative paths follow the driver contract: relative to the config file, not to the working directory.
    const sysRoot = resolve(env.baseDir, config.sys_root);
    // A sys_root that is not there is a configuration or mount mistake, not a sensor coming and going:
    // it is a start error, so on_start_error decides.
    if (!statSync(sysRoot, { throwIfNoEntry: false })?.isDirectory()) {
      throw new AgentError('SOURCE_FAILED', `sensors source ${config.name}: sys_root ${sysRoot} is not a directory`, { retryable: true });
    }
    const { SensorsSource } = await import('./source.ts');
    return new SensorsSource({ ...config, sys_root: sysRoot });
  },
});

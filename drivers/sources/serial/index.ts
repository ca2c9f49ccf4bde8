import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';

export const serialSource = defineSourceDriver({
  type: 'serial',
  summary: 'A serial port (path or USB ids) cut into records: lines, regex, JSON lines, fixed or length-prefixed binary frames, or NMEA 0183.',
  mode: 'service',
  options,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config) => {
    const [{ SerialSource }, { deviceSpec, listSerialPorts }] = await Promise.all([import('./source.ts'), import('../../common/serial-port.ts')]);
    return new SerialSource(config, deviceSpec(config, config.name), listSerialPorts);
  },
});

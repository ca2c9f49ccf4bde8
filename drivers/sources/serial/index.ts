import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { options } from './options.ts';
import { deviceSpec, listSerialPorts } from '../../common/serial-port.ts';
import { SerialSource } from './source.ts';

export const serialSource = defineSourceDriver({
  type: 'serial',
  summary: 'A serial port (path or USB ids) cut into records: lines, regex, JSON lines, fixed or length-prefixed binary frames, or NMEA 0183.',
  mode: 'service',
  options,
  create: (config) => new SerialSource(config, deviceSpec(config, config.name), listSerialPorts),
});

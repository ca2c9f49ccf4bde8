import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { modbusSourceOptions } from './options.ts';

export const modbusSource = defineSourceDriver({
  type: 'modbus',
  summary:
    'Polls PLCs, meters and drives over Modbus TCP or RTU (serial): coils, discrete inputs, holding and input registers from a register map, decoded by type, word order and scale into one record per poll.',
  mode: 'polled',
  options: modbusSourceOptions,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./source.ts')).ModbusSource(config, env),
});

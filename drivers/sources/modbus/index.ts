import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { modbusSourceOptions } from './options.ts';
import { ModbusSource } from './source.ts';

export const modbusSource = defineSourceDriver({
  type: 'modbus',
  summary:
    'Polls PLCs, meters and drives over Modbus TCP or RTU (serial): coils, discrete inputs, holding and input registers from a register map, decoded by type, word order and scale into one record per poll.',
  mode: 'polled',
  options: modbusSourceOptions,
  create: (config, env) => new ModbusSource(config, env),
});

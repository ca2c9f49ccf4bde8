import { defineSourceDriver } from '../../../agent/sdk/index.ts';
import { hl7SourceOptions } from './options.ts';

export const hl7Source = defineSourceDriver({
  type: 'hl7',
  summary:
    'Listens for HL7 v2 messages over MLLP (hospital information, lab and device systems); each message is one record with its key fields, patient and observations structured, and is acknowledged (AA) only after its commit.',
  mode: 'service',
  options: hl7SourceOptions,
  // The implementation is loaded when a config uses it (agent/sdk/define.ts).
  create: async (config, env) => new (await import('./source.ts')).Hl7Source(config, env),
});

/**
 * The end-to-end benchmark's agent config, from the worker's flags (see e2e-worker.ts): the synthetic source
 * (count N, rate 0) or the sqlite source polling a table, and the MQTT sink. One text for both ways of running
 * it: in-process by e2e-worker.ts (startAgent) and as the shipped executable by cpu-bench.ts --executable.
 */
export function e2eConfigYaml(flags: ReadonlyMap<string, string>, o: { device: string; url: string; records: number }): string {
  const opt = (flag: string, key: string, indent: string) => (flags.has(flag) ? [`${indent}${key}: ${flags.get(flag)}`] : []);
  return [
    `device: { id: ${o.device} }`,
    'data_dir: data',
    'log: { level: warn }',
    'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
    'queue:',
    '  path: queue.db',
    ...opt('synchronous', 'synchronous', '  '),
    ...opt('commit-every', 'commit_every_records', '  '),
    ...opt('commit-interval', 'commit_interval', '  '),
    'sources:',
    ...(flags.has('sqlite')
      ? [
          '  - type: sqlite',
          '    name: table',
          `    path: ${JSON.stringify(flags.get('sqlite'))}`,
          `    table: ${flags.get('table') ?? 'readings'}`,
          '    interval: 50ms',
          ...opt('batch', 'batch_size', '    '),
          ...(flags.has('json-columns') ? [`    json_columns: [${flags.get('json-columns')}]`] : []),
        ]
      : [
          '  - type: synthetic',
          '    name: synthetic',
          '    rate: 0',
          `    count: ${o.records}`,
          ...opt('batch', 'batch', '    '),
          ...opt('max-pending', 'max_pending', '    '),
          ...opt('shape', 'shape', '    '),
          ...opt('record-bytes', 'record_bytes', '    '),
          ...opt('sensors', 'sensors', '    '),
        ]),
    'sink:',
    '  type: mqtt',
    `  url: ${o.url}`,
    ...(flags.has('max-in-flight') ? ['sender:', `  max_in_flight: ${flags.get('max-in-flight')}`] : []),
    '',
  ].join('\n');
}

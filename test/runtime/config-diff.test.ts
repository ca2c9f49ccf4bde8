import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../agent/app.ts';
import { configChanges, deliveryKey, sourceKey, wholeKey } from '../../agent/runtime/config-diff.ts';
import type { Config } from '../../agent/config/schema.ts';

const base = {
  device: { id: 'gw' },
  sources: [
    { type: 'synthetic', name: 'a', rate: 1 },
    { type: 'synthetic', name: 'b', rate: 2 },
  ],
  sink: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883' },
};
const parse = (data: unknown): Config => parseConfigObject(data, 'test', '/tmp').config;
const runningOn = (config: Config) => ({
  whole: wholeKey(config),
  delivery: deliveryKey(config),
  sources: new Map(config.sources.map((s) => [s.name, sourceKey(s)])),
});

test('what a new config restarts: one source, the delivery, or everything', () => {
  const running = runningOn(parse(base));
  const same = configChanges(running, parse(JSON.parse(JSON.stringify(base))));
  assert.deepEqual(same, { whole: false, delivery: false, stopSources: [], startSources: [] });

  const oneSource = configChanges(running, parse({ ...base, sources: [base.sources[0], { ...base.sources[1], rate: 3 }, { type: 'synthetic', name: 'c' }] }));
  assert.deepEqual([oneSource.whole, oneSource.delivery, oneSource.stopSources, oneSource.startSources.map((s) => s.name)], [false, false, ['b'], ['b', 'c']]);

  const removed = configChanges(running, parse({ ...base, sources: [base.sources[1]] }));
  assert.deepEqual([removed.stopSources, removed.startSources], [['a'], []]);

  for (const change of [{ sink: { ...base.sink, topic_prefix: 'other' } }, { sender: { max_in_flight: 2 } }]) {
    const d = configChanges(running, parse({ ...base, ...change }));
    assert.deepEqual([d.whole, d.delivery, d.stopSources], [false, true, []], JSON.stringify(change));
  }
  for (const change of [
    { queue: { commit_interval: '1s' } },
    { keys: { device_private: 'k' } },
    { batch: { max_records: 5 } },
    { broker: { embedded: true } },
    { data_dir: 'x' },
  ]) {
    assert.equal(configChanges(running, parse({ ...base, ...change })).whole, true, JSON.stringify(change));
  }
  for (const change of [{ log: { level: 'debug' } }, { fleet: { health_deadline: '5s' } }]) {
    assert.deepEqual(configChanges(running, parse({ ...base, ...change })), { whole: false, delivery: false, stopSources: [], startSources: [] });
  }
  // A part that failed to start has no key: the next apply starts it, whatever else changed.
  assert.equal(configChanges({ ...running, delivery: undefined }, parse(base)).delivery, true);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeLayers } from '../../agent/remote/config-merge.ts';
import { isRefusal } from '../../agent/trust/index.ts';

const local = {
  device: { id: 'gw-1' },
  log: { level: 'info', format: 'json' },
  sources: [
    { type: 'synthetic', name: 'a', rate: 1 },
    { type: 'synthetic', name: 'b', rate: 2 },
  ],
  sink: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883', topic_prefix: 'x' },
  fleet: { groups: ['site', 'model'], trust: { root_keys: ['k'] } },
};

test('layers merge lowest first: maps deep-merge, sources by name, null deletes, arrays replace; provenance names the last setter', () => {
  const merged = mergeLayers([
    { id: 'local', config: local },
    {
      id: 'group:site',
      config: {
        log: { level: 'debug' },
        sources: [
          { type: 'synthetic', name: 'b', rate: 20 },
          { type: 'synthetic', name: 'c' },
        ],
      },
    },
    { id: 'group:model', config: { sink: { topic_prefix: null }, fleet: { groups: ['site'] } } },
    { id: 'device', config: { sources: [{ name: 'a', remove: true }] } },
  ]);
  assert.deepEqual(merged.data, {
    device: { id: 'gw-1' },
    log: { level: 'debug', format: 'json' },
    sources: [
      { type: 'synthetic', name: 'b', rate: 20 },
      { type: 'synthetic', name: 'c' },
    ],
    sink: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883' },
    fleet: { groups: ['site'], trust: { root_keys: ['k'] } },
  });
  assert.deepEqual(merged.provenance, {
    keys: { device: 'local', log: 'group:site', sink: 'group:model', fleet: 'group:model', sources: 'device' },
    sources: { b: 'group:site', c: 'group:site' },
  });
  assert.deepEqual(local.sources.length, 2, 'the layers given are not changed');
});

test('a remote layer may not set device.id or fleet.trust (forbidden_setting); the local file may', () => {
  for (const config of [{ device: { id: 'other' } }, { device: null }, { fleet: { trust: { threshold: 1 } } }, { fleet: null }]) {
    assert.throws(
      () =>
        mergeLayers([
          { id: 'local', config: local },
          { id: 'device', config },
        ]),
      (err) => isRefusal(err, 'forbidden_setting'),
      JSON.stringify(config),
    );
  }
  assert.doesNotThrow(() =>
    mergeLayers([
      { id: 'local', config: local },
      { id: 'group:site', config: { fleet: { groups: [] } } },
    ]),
  );
});

test('what cannot be merged is refused as schema_invalid, naming the path', () => {
  const cases: [unknown, RegExp][] = [
    [[1, 2], /top level/],
    [{ sources: { a: 1 } }, /sources: must be a list/],
    [{ sources: [{ type: 'synthetic' }] }, /sources\[0\]: a source needs a name/],
    [{ sources: [{ name: 'a', remove: true, rate: 3 }] }, /sources\[0\]: a removal is exactly/],
    [JSON.parse('{"log": {"__proto__": {"polluted": 1}}}'), /log\.__proto__: key not allowed/],
  ];
  for (const [config, message] of cases) {
    assert.throws(
      () =>
        mergeLayers([
          { id: 'local', config: local },
          { id: 'device', config },
        ]),
      (err: Error) => isRefusal(err, 'schema_invalid') && message.test(err.message),
      JSON.stringify(config),
    );
  }
  let deep: Record<string, unknown> = {};
  const top = deep;
  for (let i = 0; i < 100; i++) deep = deep.x = {};
  assert.throws(
    () => mergeLayers([{ id: 'device', config: { log: top } }]),
    (err: Error) => isRefusal(err, 'schema_invalid') && /nested deeper/.test(err.message),
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

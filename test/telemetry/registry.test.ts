import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ComponentCounters } from '../../agent/telemetry/counters.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';

test('counters count by labels, and a second declaration returns the same counter', () => {
  const t = new Telemetry();
  const drops = t.counter('edge_test_drops_total', 'drops', ['stream', 'reason']);
  drops.inc({ stream: 'a', reason: 'expired' }, 3);
  drops.inc({ stream: 'a', reason: 'queue_full' });
  drops.inc({ stream: 'b', reason: 'expired' }, 2);
  assert.equal(t.counter('edge_test_drops_total', 'drops', ['stream', 'reason']), drops);
  assert.equal(drops.value({ stream: 'a', reason: 'expired' }), 3);
  assert.equal(drops.value({ stream: 'c', reason: 'expired' }), 0);
  assert.deepEqual(drops.by('reason', { stream: 'a' }), { expired: 3, queue_full: 1 });
  assert.deepEqual(drops.by('stream'), { a: 4, b: 2 });
});

test('misuse is refused: a counter going down, a missing label, a clash of declarations, a bad name', () => {
  const t = new Telemetry();
  const c = t.counter('edge_test_total', 'x', ['kind']);
  assert.throws(() => c.inc({ kind: 'a' }, -1), RangeError);
  assert.throws(() => c.inc({}), /label kind is missing/);
  assert.throws(() => t.gauge('edge_test_total', 'x', ['kind']), /already declared as a counter/);
  assert.throws(() => t.counter('edge_test_total', 'x', ['other']), /already declared/);
  assert.throws(() => t.counter('edge test', 'x'), /invalid metric name/);
  assert.throws(() => t.histogram('edge_h', 'x', [], [1, 1]), /increasing/);
});

test('a gauge with a collect callback reads its owner at every read', () => {
  const t = new Telemetry();
  let depth = 5;
  const g = t.gauge('edge_test_depth', 'depth', ['stream'], (gauge) => gauge.set({ stream: 's' }, depth));
  assert.equal(g.value({ stream: 's' }), 5);
  depth = 7;
  const snapshot = t.collect().find((m) => m.name === 'edge_test_depth');
  assert.deepEqual(snapshot?.samples, [{ labels: { stream: 's' }, value: 7 }]);
});

test('histograms keep cumulative bucket counts, sum and count', () => {
  const t = new Telemetry();
  const h = t.histogram('edge_test_seconds', 'latency', [], [0.01, 0.1, 1]);
  for (const v of [0.005, 0.05, 0.05, 0.5, 5]) h.observe(undefined, v);
  const [sample] = h.samples();
  assert.deepEqual(sample?.counts, [1, 3, 4, 5]);
  assert.equal(sample?.count, 5);
  assert.ok(Math.abs((sample?.sum ?? 0) - 5.605) < 1e-9);
});

test('component counters of two sources share one registry counter and stay apart', () => {
  const t = new Telemetry();
  const gps = new ComponentCounters(t, 'source', 'gps');
  const plc = new ComponentCounters(t, 'source', 'plc');
  gps.add('records', 10);
  gps.add('bad_frames');
  plc.add('records', 4);
  assert.deepEqual(gps.snapshot(), { records: 10, bad_frames: 1 });
  assert.deepEqual(plc.snapshot(), { records: 4 });
  const metric = t.collect().find((m) => m.name === 'edge_source_events_total');
  assert.equal(metric?.samples.length, 3);
});

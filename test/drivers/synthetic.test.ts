import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticSource } from '../../drivers/sources/synthetic/index.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';
import { sourceContract } from '../contract/source-contract.ts';

describe('synthetic source', () => {
  sourceContract(syntheticSource, { options: { rate: 5000, batch: 10 }, identity: (r) => r.n as number });
  sourceContract(syntheticSource, { options: { rate: 5000, batch: 10, shape: 'realistic', record_bytes: 500 }, identity: (r) => r.n as number });

  it('sizes realistic records near record_bytes, with a timestamp each, noisy values and hundreds of sensors', () => {
    for (const target of [50, 120, 500, 5000]) {
      const make = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: target });
      const records = Array.from({ length: 2000 }, (_, i) => make(i + 1, 1767225600000, i));
      const mean = records.reduce((sum, r) => sum + Buffer.byteLength(JSON.stringify(r)), 0) / records.length;
      assert.ok(Math.abs(mean - target) / target < 0.1, `record_bytes ${target}: mean JSON size ${mean}`);
      assert.ok(new Set(records.map((r) => r.ts)).size > 1000, 'a timestamp per record');
      assert.ok(new Set(records.map((r) => r.sensor ?? r.id)).size > 300, 'hundreds of sensor ids');
      assert.ok(new Set(records.map((r) => r.value ?? r.v)).size > 1500, 'noisy values');
    }
  });

  it('makes the same record from the same number, so a restarted source repeats exactly', () => {
    const a = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 500 });
    const b = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 500 });
    assert.deepEqual(a(777, 1767225600000, 4), b(777, 1767225600000, 4));
  });
});

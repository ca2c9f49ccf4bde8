import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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

  it('makes the records it always made: ids kept made (up to 4096 sensors) or made per record, same values', () => {
    // Digests of 5000 records per case, taken from the maker before its ids were kept (main at 8c3c42c): a
    // cheaper source must not change what it generates.
    const cases = [
      ['classic', 16, 0, '56de18ccb1e7aded'],
      ['classic', 5000, 0, '9a2eeeb0cf470bdd'],
      ['realistic', 400, 50, '40125129c00003fa'],
      ['realistic', 400, 120, '0a33950683f34b82'],
      ['realistic', 400, 500, '584ec81b4345bb51'],
      ['realistic', 4096, 120, '4891a066da2cf913'],
      ['realistic', 5000, 120, '28922bf0e16450a6'],
      ['realistic', 4097, 50, '957a054d942582ee'],
    ] as const;
    for (const [shape, sensors, record_bytes, digest] of cases) {
      const make = recordMaker({ shape, sensors, record_bytes });
      const hash = createHash('sha256');
      for (let n = 1; n <= 5000; n++) hash.update(JSON.stringify(make(n, 1767225600000, n % 500)));
      assert.equal(hash.digest('hex').slice(0, 16), digest, `${shape}, ${sensors} sensors, record_bytes ${record_bytes}`);
    }
  });

  it('makes the same record from the same number, so a restarted source repeats exactly', () => {
    const a = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 500 });
    const b = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 500 });
    assert.deepEqual(a(777, 1767225600000, 4), b(777, 1767225600000, 4));
  });
});

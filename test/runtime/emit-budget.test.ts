import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmitBudget, emitBudgetLimits, writtenBytes } from '../../agent/runtime/emit-budget.ts';
import { RecordWriter } from '../../agent/envelope/record-writer.ts';

const MiB = 1024 * 1024;

describe('emit budget', () => {
  it('is sized from the heap limit: an eighth in total, a quarter of that per source, less per emit with more sources', () => {
    const one = emitBudgetLimits(1, 36 * MiB);
    assert.equal(one.totalBytes, 4.5 * MiB);
    assert.equal(one.perSourceBytes, Math.floor((4.5 * MiB) / 4));
    const many = emitBudgetLimits(32, 36 * MiB);
    assert.ok(many.perEmitBytes * 32 <= many.totalBytes, `${many.perEmitBytes} per emit × 32 sources within ${many.totalBytes}`);
    assert.equal(emitBudgetLimits(1, 16 * 1024 * MiB).totalBytes, 64 * MiB, 'at most 64 MiB on a big heap');
  });

  it('charges an emit the bytes it holds until its commit: its records as CBOR and their ends', () => {
    const big = new RecordWriter().write([{ payload: new Uint8Array(65_536) }, { s: 'x'.repeat(1000) }], 1 << 20);
    assert.ok(writtenBytes(big) > 65_536 + 1000);
    assert.ok(writtenBytes(big) < 65_536 + 1000 + 256);
    assert.ok(writtenBytes(new RecordWriter().write([{ n: 1 }], 1 << 20)) < 200);
  });

  it('holds emits beyond a source share until bytes are released, admits them in order, and never admits past the limits', async () => {
    const budget = new EmitBudget({ totalBytes: 1000, perSourceBytes: 400, perEmitBytes: 100 });
    const a = budget.account();
    const b = budget.account();
    const admitted: string[] = [];
    const charge = (acc: typeof a, name: string, bytes: number) => acc.charge(bytes).then(() => admitted.push(name));
    await charge(a, 'a1', 300);
    const a2 = charge(a, 'a2', 300); // over a's share: waits
    const a3 = charge(a, 'a3', 50); // would fit, but comes after a2: waits too
    const b1 = charge(b, 'b1', 300); // others wait: b queues behind them (first come, first served)
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(admitted, ['a1']);
    assert.ok(a.admitted <= 400 && budget.admitted <= 1000);
    let room = false;
    const roomed = a.room().then(() => (room = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(room, false, 'no room while a holds its share');
    a.release(300);
    await Promise.all([a2, a3, b1]);
    // In the order they came; b1 fits the total once a2 and a3 are in (300 + 300 + 50 + 300 ≤ 1000).
    assert.deepEqual(admitted, ['a1', 'a2', 'a3', 'b1']);
    assert.ok(a.admitted <= 400 && budget.admitted <= 1000);
    a.release(300);
    a.release(50);
    await roomed;
    assert.equal(budget.admitted, 300, 'b1 alone');
  });

  it('an emit larger than a share goes alone once the source holds nothing, and asks for a commit while it waits', async () => {
    let pressure = 0;
    const budget = new EmitBudget({ totalBytes: 1000, perSourceBytes: 400, perEmitBytes: 100 }, () => pressure++);
    const a = budget.account();
    await a.charge(5000);
    assert.equal(a.admitted, 5000);
    let second = false;
    const next = a.charge(10).then(() => (second = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(second, false);
    assert.equal(pressure, 1);
    a.release(5000);
    await next;
    assert.equal(a.admitted, 10);
  });
});

/**
 * Text that is not well-formed UTF-16 (a lone surrogate) is repaired at ingest, in values and keys at any
 * depth: the batch body is valid UTF-8 that the strict receiver decoder takes, the record is kept with U+FFFD
 * in place of each lone surrogate, and the repaired records are counted by stream.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { Queue } from '../../agent/queue/queue.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'edge-queue-text-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('lone surrogates become U+FFFD at ingest, the records are kept and counted, the body is strict UTF-8', async () => {
  const telemetry = new Telemetry();
  const q = Queue.open(testQueueOptions(join(dir, 'q.db'), { codec: { compression: 'none', level: undefined }, telemetry }));
  try {
    const records: AgentRecord[] = [
      { n: 1, s: 'short \ud800' }, // short strings are the ones the encoder writes byte by byte
      { n: 2, ['key\udc00']: 'v', nested: { deep: [{ t: `${'x'.repeat(100)}\ud83d` }] } },
      { n: 3, s: 'fine \ud83c\udf21 Grüße' },
      { n: 4, ['__proto__\ud800']: 1 },
    ];
    await q.enqueue('s', records, undefined);
    await q.enqueue('other', [{ n: 5, s: '\udfff' }], undefined);
    const counter = telemetry.get('edge_queue_repaired_records_total') as unknown as { value(labels?: Record<string, string>): number };
    assert.equal(counter.value({ stream: 's' }), 3);
    assert.equal(counter.value({ stream: 'other' }), 1);
    assert.deepEqual(q.stats().drops, {}, 'repaired records are not dropped');

    const batch = q.nextBatch(new Set())!;
    const body = decompress(batch.body, batch.compression, 1 << 26);
    assert.equal(Buffer.from(body).toString('hex').includes('eda0'), false, 'no encoded surrogate on the wire');
    const decoded = decodeRecords(body, { text: 'strict' });
    assert.equal(batch.stream, 's');
    assert.deepEqual(
      decoded.map((r) => JSON.stringify(r)),
      [
        { n: 1, s: 'short \ufffd' },
        { n: 2, ['key\ufffd']: 'v', nested: { deep: [{ t: `${'x'.repeat(100)}\ufffd` }] } },
        { n: 3, s: 'fine \ud83c\udf21 Grüße' },
        { n: 4, ['__proto__\ufffd']: 1 },
      ].map((r, i) => JSON.stringify({ ...r, ts: decoded[i]!.ts })),
    );
  } finally {
    q.close();
  }
});

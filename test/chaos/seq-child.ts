/**
 * A queue user for test/chaos/powercut-seq.test.ts on the power-cut file system, synchronous normal. It
 * continues from the committed cursor, emits groups of a random size (so batches after a rollback are cut
 * differently from before it), and hands every batch to a pretend centre before acknowledging it:
 *   O <cursor>                   opened; the committed cursor it continues from
 *   B <seq> <first> <last>       batch <seq> went out holding records <first>…<last>
 * Usage: node test/chaos/seq-child.ts <queue file>
 */
import { Queue } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: seq-child.ts <queue file>');
const say = (line: string) => process.stdout.write(`${line}\n`);
const queue = Queue.open({
  path,
  synchronous: 'normal',
  syncIntervalMs: 1_000,
  commitEveryRecords: 1_000_000,
  commitIntervalMs: 2,
  maxBytes: 1 << 30,
  maxAgeMs: 30 * 86_400_000,
  fullPolicy: 'drop_oldest',
  reserveBytes: 0,
  cacheBytes: 1 << 20,
  batchMaxRecords: 50,
  batchMaxBytes: 1 << 20,
  codec: { compression: 'none', level: undefined },
  priorities: {},
  log: silentLogger,
});
const start = queue.cursor('gen');
let next = (typeof start === 'number' ? start : 0) + 1;
say(`O ${next - 1}`);
for (;;) {
  const count = 1 + Math.floor(Math.random() * 30);
  const records = Array.from({ length: count }, (_, i) => ({ n: next + i }));
  await queue.enqueue('s', records, { source: 'gen', value: next + count - 1 });
  next += count;
  for (let batch = queue.nextBatch(new Set(), 1); batch; batch = queue.nextBatch(new Set(), 1)) {
    const ns = decodeRecords(decompress(batch.body, batch.compression, 1 << 26)).map((r) => r.n as number);
    say(`B ${batch.seq} ${ns[0]} ${ns[ns.length - 1]}`);
    queue.ack(batch);
  }
}

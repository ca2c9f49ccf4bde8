/**
 * A busy queue user for test/queue/crash.test.ts, which SIGKILLs it at random points. It continues from the
 * committed cursor, keeps several emits in flight, and leases/acks/abandons batches at random. Every line it
 * prints states something already committed (or, for `a`, an ack about to be made), so the parent can hold
 * the file to it after the kill:
 *   S <cursor>              started; the committed cursor it continues from
 *   C <id>                  records up to <id> and cursor <id> are committed
 *   L <seq> <id,id,...>     batch <seq> was leased with these records
 *   a <seq>                 about to ack <seq> (may or may not be committed when killed)
 *   A <seq>                 the ack of <seq> is committed
 * Usage: node test/queue/sigkill-child.ts <queue file>
 */
import { Queue, type LeasedBatch } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';

const CRASH_STREAM = 'crash';
const CRASH_SOURCE = 'gen';

const path = process.argv[2];
if (!path) throw new Error('usage: sigkill-child.ts <queue file>');

// stdout is a pipe: synchronous on Linux, so a printed line is out before any later kill.
const say = (line: string) => process.stdout.write(`${line}\n`);
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

const queue = Queue.open({
  path,
  synchronous: 'full',
  commitEveryRecords: 20,
  commitIntervalMs: 5,
  maxBytes: 1 << 30,
  maxAgeMs: 30 * 86_400_000,
  fullPolicy: 'drop_oldest',
  cacheBytes: 1 << 20,
  batchMaxRecords: 25,
  batchMaxBytes: 1 << 20,
  codec: { compression: 'deflate', level: 1 },
  priorities: {},
  log: silentLogger,
});

const start = queue.cursor(CRASH_SOURCE);
let next = (typeof start === 'number' ? start : 0) + 1;
say(`S ${next - 1}`);

const inFlight = new Set<Promise<void>>();
const leased = new Map<string, LeasedBatch>();

function emit(): void {
  const count = 1 + Math.floor(Math.random() * 15);
  const records = Array.from({ length: count }, (_, i) => ({ n: next + i, v: Math.random() }));
  const last = next + count - 1;
  next += count;
  const committed = queue.enqueue(CRASH_STREAM, records, { source: CRASH_SOURCE, value: last }).then(() => void say(`C ${last}`));
  inFlight.add(committed);
  void committed.finally(() => inFlight.delete(committed));
}

for (;;) {
  while (inFlight.size < 4) emit();
  const roll = Math.random();
  if (roll < 0.35) {
    const batch = queue.nextBatch(new Set(leased.keys()), 1 + Math.floor(Math.random() * 3));
    if (batch) {
      leased.set(batch.key, batch);
      const ids = decodeRecords(decompress(batch.body, batch.compression, 1 << 26)).map((r) => r.n);
      say(`L ${batch.seq} ${ids.join(',')}`);
    }
  } else if (roll < 0.6 && leased.size > 0) {
    const batch = pick([...leased.values()]);
    leased.delete(batch.key);
    say(`a ${batch.seq}`);
    queue.ack(batch);
    await queue.flush();
    say(`A ${batch.seq}`);
  } else if (roll < 0.7 && leased.size > 0) {
    // Abandoned without ack (a lost publish): it must come back, with the same records.
    leased.delete(pick([...leased.keys()]));
  }
  await Promise.race(inFlight);
}

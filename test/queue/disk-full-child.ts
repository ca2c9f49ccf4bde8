/**
 * A queue user for test/queue/disk-full-kill.test.ts, run on a small tmpfs that the test fills and frees
 * at random while it SIGKILLs this process. Lines it prints:
 *   O <cursor>        the queue opened; the committed cursor it continues from
 *   C <n>             records up to <n> (and cursor <n>) are committed
 *   F                 a commit failed (disk full); the same records are offered again, as a source re-reads
 *   D <json>          (drain mode) everything was sent and acknowledged: the records seen, the drops, the cursor
 * Usage: node test/queue/disk-full-child.ts ingest|drain <queue file>
 */
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';

const [mode, path] = process.argv.slice(2);
if ((mode !== 'ingest' && mode !== 'drain') || !path) throw new Error('usage: disk-full-child.ts ingest|drain <queue file>');
const say = (line: string) => process.stdout.write(`${line}\n`);

const DISK_FULL_QUEUE: Omit<QueueOptions, 'path' | 'log'> = {
  synchronous: 'full',
  commitEveryRecords: 50,
  commitIntervalMs: 5,
  maxBytes: 1 << 30,
  maxAgeMs: 30 * 86_400_000,
  fullPolicy: 'drop_oldest',
  minFreeDisk: 0,
  reserveBytes: 1024 * 1024,
  cacheBytes: 1 << 20,
  batchMaxRecords: 100,
  batchMaxBytes: 1 << 20,
  codec: { compression: 'none', level: undefined },
  priorities: {},
};

const queue = Queue.open({ ...DISK_FULL_QUEUE, path, log: silentLogger });
const start = queue.cursor('gen');
let next = (typeof start === 'number' ? start : 0) + 1;
say(`O ${next - 1}`);

if (mode === 'ingest') {
  // Incompressible, so the file grows by what is queued. Batches are leased and acknowledged now and then,
  // as a sender does, so acknowledgements meet the full disk too.
  for (;;) {
    const records = Array.from({ length: 50 }, (_, i) => ({ n: next + i, pad: Buffer.from(crypto.getRandomValues(new Uint8Array(200))).toString('base64') }));
    const last = next + records.length - 1;
    try {
      await queue.enqueue('s', records, { source: 'gen', value: last });
      next = last + 1;
      say(`C ${last}`);
    } catch {
      say('F');
      await new Promise((r) => setTimeout(r, 5));
    }
    if (Math.random() < 0.3) {
      // As the sender does: a batch that cannot be recorded on a full disk (QUEUE_WRITE_FAILED, retryable)
      // is asked for again later.
      try {
        const batch = queue.nextBatch(new Set(), 2);
        if (batch && Math.random() < 0.5) queue.ack(batch);
      } catch (err) {
        if ((err as { code?: string }).code !== 'QUEUE_WRITE_FAILED') throw err;
        say('B');
      }
    }
  }
} else {
  const seen: number[] = [];
  const busy = new Set<string>();
  for (;;) {
    let batch: ReturnType<typeof queue.nextBatch>;
    try {
      batch = queue.nextBatch(busy, 8);
    } catch (err) {
      if ((err as { code?: string }).code !== 'QUEUE_WRITE_FAILED') throw err;
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    if (!batch) {
      if (!queue.hasUnsent()) break;
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    for (const r of decodeRecords(decompress(batch.body, batch.compression, 1 << 30))) seen.push(r.n as number);
    queue.ack(batch);
  }
  await queue.flush();
  const stats = queue.stats();
  queue.close();
  say(`D ${JSON.stringify({ seen, drops: stats.drops, cursor: queue.cursor('gen') })}`);
}

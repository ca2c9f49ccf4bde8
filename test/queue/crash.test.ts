import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { Queue } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress, compressionFromId } from '../../agent/envelope/codec.ts';
import { silentLogger } from '../../agent/log.ts';

const CHILD = join(import.meta.dirname, 'sigkill-child.ts');
const KILLS = Number(process.env.QUEUE_CRASH_KILLS ?? 25);
const LINE_DEADLINE_MS = 30_000;

/** What the children told us, across all kills. */
interface Reported {
  committedUpTo: number;
  /** Batch sequence → the records it was leased with (the first time). */
  leased: Map<number, number[]>;
  ackIntended: Set<number>;
  ackCommitted: Set<number>;
}

/** Runs one child until it printed `lines` lines after its start line, then SIGKILLs it. */
async function runUntilKilled(path: string, lines: number, seen: Reported): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, [CHILD, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let counted = -1;
      const deadline = setTimeout(
        () => reject(new Error(`child printed ${counted} of ${lines} lines within ${LINE_DEADLINE_MS} ms; stderr: ${stderr}`)),
        LINE_DEADLINE_MS,
      );
      void exited.then(({ code, signal }) => {
        clearTimeout(deadline);
        reject(new Error(`child exited by itself (code ${code}, signal ${signal}); stderr: ${stderr}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          check(line, seen);
        } catch (err) {
          clearTimeout(deadline);
          reject(err as Error);
          return;
        }
        if (++counted >= lines) {
          clearTimeout(deadline);
          resolve();
        }
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const { signal } = await exited;
    assert.equal(signal, 'SIGKILL', `child ended by ${signal} instead of the kill; stderr: ${stderr}`);
  }
}

/** Holds each line against what earlier lines (and earlier children) reported. */
function check(line: string, seen: Reported): void {
  const [kind, a = '', b = ''] = line.split(' ');
  switch (kind) {
    case 'S':
      assert.ok(Number(a) >= seen.committedUpTo, `restarted from cursor ${a}, but records and cursor up to ${seen.committedUpTo} were reported committed`);
      return;
    case 'C':
      assert.ok(Number(a) > seen.committedUpTo, `commit ${a} reported after ${seen.committedUpTo}: emits must commit in order`);
      seen.committedUpTo = Number(a);
      return;
    case 'L': {
      const seq = Number(a);
      const ids = b.split(',').map(Number);
      assert.ok(!seen.ackCommitted.has(seq), `batch ${seq} was leased again after its ack was committed`);
      const before = seen.leased.get(seq);
      if (before) assert.deepEqual(ids, before, `batch ${seq} re-sent with other records`);
      else seen.leased.set(seq, ids);
      return;
    }
    case 'a':
      seen.ackIntended.add(Number(a));
      return;
    case 'A':
      seen.ackCommitted.add(Number(a));
      return;
    default:
      throw new Error(`unexpected line from child: ${line}`);
  }
}

function storedIds(path: string): { ids: number[]; integrity: string } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    const rows = db.prepare('SELECT codec, payload FROM chunks ORDER BY id').all() as { codec: number; payload: Buffer }[];
    const ids = rows.flatMap((r) => decodeRecords(decompress(r.payload, compressionFromId(r.codec) ?? 'none', 1 << 26)).map((rec) => rec.n as number));
    return { ids, integrity };
  } finally {
    db.close();
  }
}

test(`records and acks reported committed survive ${KILLS} SIGKILLs at random points, without duplicates or gaps`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-queue-crash-'));
  const path = join(dir, 'q.db');
  const seen: Reported = { committedUpTo: 0, leased: new Map(), ackIntended: new Set(), ackCommitted: new Set() };
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      // From "right after start" (a kill during open or the first commit) to well into a busy run.
      const lines = Math.random() < 0.2 ? Math.floor(Math.random() * 3) : 3 + Math.floor(Math.random() * 120);
      await runUntilKilled(path, lines, seen);
    }

    const files = readdirSync(dir).filter((f) => !['q.db', 'q.db-wal', 'q.db-shm', 'q.db-reserve', 'q.db-seq'].includes(f));
    assert.deepEqual(files, [], 'a killed queue must never be taken for a corrupt one (nothing quarantined)');
    const { ids, integrity } = storedIds(path);
    assert.equal(integrity, 'ok', 'integrity_check after the kills');

    const queue = Queue.open({
      path,
      synchronous: 'full',
      commitEveryRecords: 100,
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
    try {
      const cursor = queue.cursor('gen');
      assert.equal(typeof cursor, 'number', 'the source cursor is committed');
      const upTo = cursor as number;
      assert.ok(upTo >= seen.committedUpTo, `cursor ${upTo} is behind the reported commit ${seen.committedUpTo}`);
      assert.deepEqual(queue.stats().drops, {}, 'nothing may be dropped (no limits were reached)');

      const idsOf = (seqs: Iterable<number>) => new Set([...seqs].flatMap((s) => seen.leased.get(s) ?? []));
      const acked = idsOf(seen.ackCommitted);
      const maybeAcked = idsOf([...seen.ackIntended].filter((s) => !seen.ackCommitted.has(s)));
      const stored = new Set(ids);
      assert.equal(
        stored.size,
        ids.length,
        `duplicate records in the queue: ${ids
          .filter((id, i) => ids.indexOf(id) !== i)
          .slice(0, 10)
          .join(', ')}`,
      );
      const beyond = ids.filter((id) => id > upTo);
      assert.deepEqual(beyond, [], `records beyond the committed cursor ${upTo} (records and cursor must commit together)`);
      const back = [...acked].filter((id) => stored.has(id));
      assert.deepEqual(back, [], 'records whose ack was reported committed are back in the queue');
      const lost: number[] = [];
      for (let id = 1; id <= upTo; id++) if (!stored.has(id) && !acked.has(id) && !maybeAcked.has(id)) lost.push(id);
      assert.deepEqual(lost.slice(0, 20), [], `${lost.length} records up to the cursor are neither queued nor acked`);

      // Every batch recorded before a kill and not acked comes back with the same sequence and records.
      const busy = new Set<string>();
      let recovered = 0;
      for (let batch = queue.nextBatch(busy); batch; batch = queue.nextBatch(busy)) {
        busy.add(batch.key);
        const before = seen.leased.get(batch.seq);
        if (!before) continue;
        recovered++;
        assert.deepEqual(
          decodeRecords(decompress(batch.body, batch.compression, 1 << 26)).map((r) => r.n),
          before,
          `batch ${batch.seq} after the kills`,
        );
      }
      console.log(
        `crash test: ${KILLS} kills, cursor ${upTo}, ${ids.length} records queued, ${acked.size} acked, ${seen.leased.size} batches leased, ${recovered} re-leased after the last kill`,
      );
      assert.ok(seen.ackCommitted.size > 0 && upTo > 100, 'the children did real work between kills');
    } finally {
      queue.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

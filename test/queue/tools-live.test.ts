import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Queue } from '../../agent/queue/queue.ts';
import { decodeRecords, decompress } from '../../agent/envelope/codec.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';
import { queueCli, sensorRecords } from '../helpers/queue-tools.ts';

const BACKLOG = Number(process.env.QUEUE_TOOLS_LIVE_BACKLOG ?? 20_000);

/** Sums the records in the file, read by a connection of its own (what the agent's view must agree with). */
function recordsInFile(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT coalesce(sum(count), 0) FROM chunks').pluck().get() as number;
  } finally {
    db.close();
  }
}

// The agent keeps ingesting (a commit every few ms) while export, purge and replay run as separate processes
// on its live file. Reported: the longest time one emit waited for its commit, and the longest the event loop
// was held (SQLite's busy handler waits synchronously while a tool holds the write lock).
test('queue tools on a live queue: ingest goes on, the agent sees purge and replay, every record once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-qlive-'));
  const path = join(dir, 'queue.db');
  const q = Queue.open(testQueueOptions(path, { commitEveryRecords: 500, commitIntervalMs: 5 }));
  try {
    let n = 0;
    for (; n < BACKLOG; n += 500) await q.enqueue('telemetry', sensorRecords(n, 500));
    const first = q.nextBatch(new Set())!;
    assert.ok(first, 'a recorded batch to carry its identity through');

    /** Ingests 20 records every 2 ms while `during` runs; the longest emit wait and event-loop stall. */
    const measure = async (during: () => Promise<void>) => {
      let ingesting = true;
      let maxWait = 0;
      let emits = 0;
      const loop = monitorEventLoopDelay({ resolution: 1 });
      const ingest = (async () => {
        while (ingesting) {
          const started = performance.now();
          await q.enqueue('telemetry', sensorRecords(n, 20));
          n += 20;
          emits++;
          maxWait = Math.max(maxWait, performance.now() - started);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      loop.enable();
      try {
        await during();
      } finally {
        ingesting = false;
        await ingest;
        loop.disable();
      }
      return { maxWait, loopMax: loop.max / 1e6, emits };
    };
    // The same ingest beside a process that only reads (inspect): what the machine's own noise costs.
    const baseline = await measure(async () => {
      assert.equal((await queueCli(['inspect', '--file', path])).code, 0);
    });
    const out = join(dir, 'live.cbor');
    let removed = 0;
    const holds: number[] = [];
    const hold = (stderr: string) => holds.push(Number(/longest write transaction ([\d.]+) ms/.exec(stderr)?.[1] ?? Number.NaN));
    const tools = await measure(async () => {
      const exported = await queueCli(['export', '--file', path, '--format', 'cbor', '--out', out]);
      assert.equal(exported.code, 0, exported.stderr);
      const purged = await queueCli(['purge', '--file', path, '--from-export', out, '--yes']);
      assert.equal(purged.code, 0, purged.stderr);
      hold(purged.stderr);
      removed = Number(/removed ([\d,]+) records/.exec(purged.stderr)![1]!.replaceAll(',', ''));
      assert.ok(removed >= BACKLOG, `purge removed ${removed}`);
      // The batch in flight when the export ran was purged with the rest: its acknowledgement now changes nothing.
      q.ack(first);
      const replayed = await queueCli(['replay', out, '--file', path, '--yes']);
      assert.equal(replayed.code, 0, replayed.stderr);
      hold(replayed.stderr);
    });
    await q.flush();
    process.stdout.write(
      `# live queue: export, purge and replay of ${removed} records beside ${tools.emits} emits: longest emit wait ${tools.maxWait.toFixed(1)} ms, longest event-loop stall ${tools.loopMax.toFixed(1)} ms; beside a reader only (${baseline.emits} emits): ${baseline.maxWait.toFixed(1)} ms, ${baseline.loopMax.toFixed(1)} ms; longest write transaction of purge ${holds[0]} ms, of replay ${holds[1]} ms\n`,
    );
    // The agent's view (rebuilt when another process wrote) agrees with the file.
    assert.equal(q.stats().records, recordsInFile(path));
    // The acknowledgement of the batch purged and replayed came before the replay; the replayed copy is a
    // new unit of the queue with the same sequence, so every record is there once: ingest, purge and replay
    // lost nothing and doubled nothing.
    const busy = new Set<string>();
    const seen = new Map<number, number>();
    let again = 0;
    for (let b = q.nextBatch(busy); b; b = q.nextBatch(busy)) {
      busy.add(b.key);
      if (b.stream === first.stream && b.seq === first.seq) again++;
      for (const r of decodeRecords(decompress(b.body, b.compression, 1 << 26))) seen.set(r.n as number, (seen.get(r.n as number) ?? 0) + 1);
    }
    assert.equal(again, 1, 'the recorded batch came back under its own sequence');
    assert.equal(seen.size, n, `records missing: ${n - seen.size}`);
    assert.ok(
      [...seen.values()].every((c) => c === 1),
      'a record is in the queue twice',
    );
    // The longest the agent's commit can wait for a tool is the tool's longest write transaction (reads take no
    // lock): that is what must stay under 100 ms. The emit waits above also hold the machine's own noise (on a
    // shared 2-core machine as large as the goal), so they are reported, not asserted.
    for (const ms of holds) assert.ok(ms < 100, `a tool held the write lock for ${ms} ms`);
  } finally {
    q.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

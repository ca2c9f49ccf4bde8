/**
 * Queue tools (`edge-agent queue …`): export and salvage rates on a realistic queue, and the longest ingest
 * stall while export, purge and replay run beside a live agent's queue.
 *
 *   node scripts/bench/queue-tools.ts            (QUEUE_TOOLS_RECORDS=300000 by default)
 *
 * Records: per-record timestamps, noisy floats, 500 sensor ids, two streams. The agent side is a Queue in
 * this process with the shipped defaults (synchronous full, deflate 1, 1 KiB pages; commits every 10 ms, so
 * an emit normally waits 10 ms plus its fsync), ingesting 2,000 rec/s in
 * emits of 20; each tool is the real command as a child process (its start-up, ≈0.3–1 s, is in its time).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { silentLogger } from '../../agent/log.ts';
import { Queue, type QueueOptions } from '../../agent/queue/queue.ts';

const RECORDS = Number(process.env.QUEUE_TOOLS_RECORDS ?? 300_000);

function options(path: string): QueueOptions {
  return {
    path,
    synchronous: 'full',
    commitEveryRecords: 1000,
    commitIntervalMs: 10,
    maxBytes: 1 << 30,
    maxAgeMs: 7 * 86_400_000,
    fullPolicy: 'drop_oldest',
    cacheBytes: 2 << 20,
    batchMaxRecords: 1000,
    batchMaxBytes: 256 << 10,
    codec: { compression: 'deflate', level: 1 },
    priorities: {},
    log: silentLogger,
  };
}

let n = 0;
function records(count: number) {
  return Array.from({ length: count }, () => {
    n++;
    return {
      ts: 1_780_000_000_000 + n * 37,
      sensor: `s-${(n * 7919) % 500}`,
      temp: 20 + Math.random() * 5,
      hum: 40 + Math.random() * 20,
      v: Math.round(Math.random() * 4096),
    };
  });
}

function cli(args: string[]): Promise<{ ms: number; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['agent/cli/main.ts', 'queue', ...args], { maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      if (err && !args.includes('salvage')) reject(new Error(`${args.join(' ')}: ${stderr}`));
      else resolve({ ms: performance.now() - started, stderr });
    });
  });
}

async function fill(queue: Queue, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    await Promise.all([queue.enqueue('telemetry', records(700)), queue.enqueue('status', records(300))]);
  }
}

/** Ingests 2,000 rec/s (20 every 10 ms) while `during` runs: the longest emit wait and event-loop stall. */
async function stall(queue: Queue, during: () => Promise<unknown>): Promise<{ wait: number; loop: number; emits: number }> {
  let running = true;
  let wait = 0;
  let emits = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const ingest = (async () => {
    while (running) {
      const started = performance.now();
      await queue.enqueue('telemetry', records(20));
      wait = Math.max(wait, performance.now() - started);
      emits++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  await during();
  running = false;
  await ingest;
  loop.disable();
  return { wait, loop: loop.max / 1e6, emits };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-bench-qtools-'));
const path = join(dir, 'queue.db');
try {
  const queue = Queue.open(options(path));
  await fill(queue, RECORDS);
  queue.close();
  const size = statSync(path).size;
  const rows: string[][] = [['what', 'records', 'time', 'rate']];
  const rate = (count: number, ms: number) => `${Math.round(count / (ms / 1000)).toLocaleString('en')} rec/s`;
  for (const format of ['ndjson', 'cbor']) {
    const out = join(dir, `export.${format}`);
    const { ms } = await cli(['export', '--file', path, '--format', format, '--out', out]);
    rows.push([
      `export ${format} (stopped queue, ${(size / 1e6).toFixed(1)} MB)`,
      RECORDS.toLocaleString('en'),
      `${(ms / 1000).toFixed(2)} s`,
      rate(RECORDS, ms),
    ]);
  }
  const damaged = join(dir, 'damaged.db');
  copyFileSync(path, damaged);
  const salvaged = await cli(['salvage', damaged, '--out', join(dir, 'salvage.cbor'), '--format', 'cbor']);
  rows.push(['salvage (whole file, row by row)', RECORDS.toLocaleString('en'), `${(salvaged.ms / 1000).toFixed(2)} s`, rate(RECORDS, salvaged.ms)]);
  process.stdout.write(`${rows.map((r) => r.join(' | ')).join('\n')}\n\n`);

  // The live part: the agent's queue open here, ingesting, while the tools run beside it.
  const live = Queue.open(options(path));
  const stalls: string[][] = [['beside ingest of 2,000 rec/s', 'emits', 'longest emit wait', 'longest event-loop stall', 'longest tool write transaction']];
  let lastStderr = '';
  const tool = async (args: string[]) => {
    lastStderr = (await cli(args)).stderr;
  };
  const report = (what: string, s: { wait: number; loop: number; emits: number }) =>
    stalls.push([
      what,
      String(s.emits),
      `${s.wait.toFixed(1)} ms`,
      `${s.loop.toFixed(1)} ms`,
      /longest write transaction ([\d.]+ ms)/.exec(lastStderr)?.[1] ?? '-',
    ]);
  report('a reader only (queue inspect, the baseline)', await stall(live, () => tool(['inspect', '--file', path])));
  const out = join(dir, 'live.cbor');
  report(
    `queue export (${RECORDS.toLocaleString('en')}+ records)`,
    await stall(live, () => tool(['export', '--file', path, '--format', 'cbor', '--out', out])),
  );
  report('queue purge --from-export --yes', await stall(live, () => tool(['purge', '--file', path, '--from-export', out, '--yes'])));
  report('queue replay --yes', await stall(live, () => tool(['replay', out, '--file', path, '--yes'])));
  live.close();
  process.stdout.write(`${stalls.map((r) => r.join(' | ')).join('\n')}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The file and http sources committing into a real queue (SQLite, the agent's default queue settings).
 * Prints, per source, records/s and CPU seconds per 100k records of this process (source + queue; the file
 * writer and the HTTP clients run in other processes and are not counted), and the latency from input to
 * commit (p50/p95/p99). Records are realistic: per-record timestamps, noisy floats, many sensor ids.
 *
 * - file, throughput: a file of --records lines (≈120 B of JSON each) written beforehand, read from its
 *   beginning until every line is committed.
 * - file, latency: a child process appends --rate lines/s in 10 ms bursts, each line carrying the time it was
 *   written; latency = commit (emit resolved) − write.
 * - http, throughput: --clients concurrent clients (a child process, fetch) post bodies of 100 records as
 *   fast as they are answered, --records in all.
 * - http, latency: one client posting --rate records/s (bodies of 100); latency = 202 received − request sent.
 *
 *   node scripts/bench/file-http-bench.ts [--records 100000] [--rate 2000] [--seconds 10] [--clients 4] [--commit-interval 500]
 *
 * The latency is mostly the queue's group commit: a record waits for commit_interval or commit_every_records
 * (1000), whichever comes first; --commit-interval shows it at other settings.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../agent/log.ts';
import { Queue } from '../../agent/queue/queue.ts';
import type { AgentRecord, Cursor, EmitOptions, ServiceSource, SourceContext, SourceDriver } from '../../agent/sdk/index.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';
import { fileSource } from '../../drivers/sources/file/index.ts';
import { httpSource } from '../../drivers/sources/http/index.ts';
import { freePort } from '../lib/ports.ts';
import { numberArg, parseArgs, report } from './proc.ts';
import { describeSettings, parseBenchConfig, queueOptions } from './settings.ts';

const args = parseArgs(process.argv.slice(2));
const RECORDS = numberArg(args, 'records', 100_000);
const RATE = numberArg(args, 'rate', 2000);
const SECONDS = numberArg(args, 'seconds', 10);
const CLIENTS = numberArg(args, 'clients', 4);
/** queue.commit_interval in ms (the agent's default: 500). */
const COMMIT_MS = numberArg(args, 'commit-interval', 500);

/**
 * One realistic reading, ≈120 bytes of JSON; `t` is when it was made (ms, sub-ms resolution). Self-contained:
 * the child processes get its text (Node strips the type annotations, leaving plain JavaScript).
 */
const makeRecord = (seq: number): AgentRecord => ({
  t: performance.timeOrigin + performance.now(),
  ts: Date.now(),
  sensor: `ward3-bed${seq % 48}-spo2`,
  seq,
  value: Math.round((95 + Math.random() * 4) * 1000) / 1000,
  unit: '%',
  q: 'ok',
});
const RECORD_JS = makeRecord.toString();

function percentiles(values: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 10) / 10;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

interface Run {
  committed: number;
  latencies: number[];
  stop: () => Promise<void>;
  source: ServiceSource;
}

/** Starts a source on a real queue; tracks commits and, for records carrying `t`, input-to-commit latency. */
async function run(dir: string, driver: SourceDriver, options: Record<string, unknown>, name: string): Promise<Run> {
  const loaded = parseBenchConfig(`data_dir: .\nqueue:\n  path: queue.db\n  commit_interval: ${COMMIT_MS}ms\n`, dir);
  const queue = Queue.open(queueOptions(loaded, join(dir, `${name}.db`), silentLogger));
  const env = driverEnv({ log: silentLogger, baseDir: dir });
  const config = driver.options.parse(options) as Record<string, unknown>;
  const source = (await driver.create({ ...config, type: driver.type, name, stream: name, interval: 10_000, on_start_error: 'fail' }, env)) as ServiceSource;
  const state: Run = { committed: 0, latencies: [], source, stop: async () => {} };
  const abort = new AbortController();
  const ctx: SourceContext = {
    name,
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: env.counters,
    problems: problemReporter(() => env.counters, silentLogger),
    emit: (records: AgentRecord[], cursor?: Cursor, options?: EmitOptions) => {
      const made = records.map((r) => r.t as number | undefined);
      const where = cursor === undefined ? undefined : { source: name, value: cursor };
      return queue.enqueue(options?.stream ?? name, records, where, options?.commitWithinMs).then(() => {
        const now = performance.timeOrigin + performance.now();
        state.committed += made.length;
        for (const t of made) if (typeof t === 'number') state.latencies.push(now - t);
      });
    },
    queueRefuses: (stream?: string) => queue.refusesNew(stream ?? name),
    fail: (err) => {
      throw err;
    },
  };
  await source.start(ctx);
  state.stop = async () => {
    abort.abort();
    await source.stop();
    queue.close();
  };
  console.error(JSON.stringify({ settings: describeSettings(loaded, { type: driver.type }) }));
  return state;
}

async function until(test: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function child(script: string, argv: string[]): Promise<string> {
  const p = spawn(process.execPath, ['--input-type=module', '-e', script, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d));
  return new Promise((resolve, reject) => p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench child exited ${code}`)))));
}

const cpuSeconds = (before: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(before);
  return (c.user + c.system) / 1e6;
};

async function fileThroughput(dir: string): Promise<void> {
  const path = join(dir, 'through.log');
  let text = '';
  for (let i = 0; i < RECORDS; i++) text += `${JSON.stringify(makeRecord(i))}\n`;
  writeFileSync(path, text);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const r = await run(dir, fileSource, { paths: [path], format: { type: 'json_lines' }, start_at: 'beginning' }, 'file_through');
  await until(() => r.committed >= RECORDS, `${RECORDS} lines committed`, 300_000);
  const wall = (performance.now() - t0) / 1000;
  const cpuS = cpuSeconds(cpu);
  await r.stop();
  report({
    bench: 'file-throughput',
    commit_interval_ms: COMMIT_MS,
    records: RECORDS,
    bytes_per_line: Math.round(text.length / RECORDS),
    seconds: Math.round(wall * 100) / 100,
    records_per_s: Math.round(RECORDS / wall),
    cpu_s_per_100k: Math.round((cpuS / RECORDS) * 100_000 * 100) / 100,
  });
}

const FILE_WRITER = `
import { appendFileSync } from 'node:fs';
const [path, rate, seconds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const make = ${RECORD_JS};
const start = performance.now();
let seq = 0;
const timer = setInterval(() => {
  const elapsed = (performance.now() - start) / 1000;
  let text = '';
  while (seq < Math.min(elapsed, seconds) * rate) text += JSON.stringify(make(seq++)) + '\\n';
  if (text) appendFileSync(path, text);
  if (elapsed >= seconds) { clearInterval(timer); process.stdout.write(String(seq)); }
}, 10);
`;

async function fileLatency(dir: string): Promise<void> {
  const path = join(dir, 'latency.log');
  writeFileSync(path, '');
  const r = await run(dir, fileSource, { paths: [path], format: { type: 'json_lines' } }, 'file_latency');
  const written = Number(await child(FILE_WRITER, [path, String(RATE), String(SECONDS)]));
  await until(() => r.committed >= written, `${written} lines committed`, 60_000);
  await r.stop();
  report({ bench: 'file-latency', commit_interval_ms: COMMIT_MS, rate_per_s: RATE, records: written, latency_ms: percentiles(r.latencies) });
}

const HTTP_CLIENT = `
const [url, total, clients, rate] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const make = ${RECORD_JS};
let seq = 0, requests = 0;
const latencies = [];
const start = performance.now();
async function client() {
  while (seq < total) {
    if (rate > 0) {
      const due = start + (seq / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const records = [];
    for (let i = 0; i < 100 && seq < total; i++) records.push(make(seq++));
    const t = performance.now();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(records) });
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error('status ' + res.status);
    latencies.push(performance.now() - t);
    requests++;
  }
}
await Promise.all(Array.from({ length: clients }, client));
process.stdout.write(JSON.stringify({ requests, latencies, seconds: (performance.now() - start) / 1000 }));
`;

async function http(dir: string, total: number, clients: number, rate: number, bench: string): Promise<void> {
  const port = await freePort();
  const r = await run(dir, httpSource, { port, auth: 'none', max_records: 1000 }, bench.replace('-', '_'));
  const cpu = process.cpuUsage();
  const out = JSON.parse(
    await child(HTTP_CLIENT, [`http://127.0.0.1:${port}/ingest/${bench.replace('-', '_')}`, String(total), String(clients), String(rate)]),
  ) as {
    requests: number;
    latencies: number[];
    seconds: number;
  };
  const cpuS = cpuSeconds(cpu);
  await r.stop();
  report({
    bench,
    commit_interval_ms: COMMIT_MS,
    records: r.committed,
    requests: out.requests,
    clients,
    ...(rate > 0
      ? { rate_per_s: rate }
      : { records_per_s: Math.round(r.committed / out.seconds), cpu_s_per_100k: Math.round((cpuS / r.committed) * 100_000 * 100) / 100 }),
    latency_ms: percentiles(out.latencies),
  });
}

const dir = mkdtempSync(join(tmpdir(), 'edge-bench-file-http-'));
try {
  await fileThroughput(dir);
  await fileLatency(dir);
  await http(dir, RECORDS, CLIENTS, 0, 'http-throughput');
  await http(dir, RATE * SECONDS, 1, RATE, 'http-latency');
} finally {
  rmSync(dir, { recursive: true, force: true });
}

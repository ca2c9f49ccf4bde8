/**
 * The mqtt source at a steady message rate: a device publishes JSON readings with QoS 1 to a Mosquitto of our
 * own; the source (in a worker process, with a real queue at the product defaults: synchronous=full, 100 ms
 * commit interval) commits them. Prints the achieved committed rate, the worker's CPU use, and the lag from
 * publish to commit.
 *
 *   node scripts/bench/mqtt-source-bench.ts [--rate 1000] [--seconds 10] [--protocol 5|4] [--qos 1|0]
 *
 * The worker is this file started with `--worker`; it prints one JSON line with its figures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { mqttSource } from '../../drivers/sources/mqtt/index.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { silentLogger } from '../../agent/log.ts';
import type { ServiceSource } from '../../agent/sdk/index.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { numberArg, parseArgs } from './proc.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';

const TOPIC = 'site/bench/reading';

interface WorkerResult {
  committed: number;
  firstCommitAt: number;
  lastCommitAt: number;
  cpuMs: number;
  wallMs: number;
  maxLagMs: number;
  p99LagMs: number;
  rssBytes: number;
}

async function worker(args: Map<string, string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-mqtt-bench-'));
  const queue = Queue.open({
    path: join(dir, 'q.db'),
    synchronous: 'full',
    commitEveryRecords: 1000,
    commitIntervalMs: 100,
    maxBytes: 1 << 28,
    maxAgeMs: 86_400_000,
    fullPolicy: 'drop_oldest',
    cacheBytes: 2_000 * 1024,
    batchMaxRecords: 500,
    batchMaxBytes: 1 << 20,
    codec: { compression: 'deflate', level: 1 },
    priorities: {},
    log: silentLogger,
  });
  const config = mqttSource.options.parse({
    url: args.get('url'),
    client_id: 'bench-gateway',
    protocol_version: Number(args.get('protocol')),
    topics: [{ filter: TOPIC, qos: Number(args.get('qos')) }],
    payload: 'json',
  });
  const source = (await mqttSource.create(
    { ...config, type: 'mqtt', name: 'bench', stream: 'bench', interval: 1000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as ServiceSource;
  const expected = Number(args.get('expect'));
  const lags: number[] = [];
  let committed = 0;
  let firstCommitAt = 0;
  let lastCommitAt = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const abort = new AbortController();
  await source.start({
    name: 'bench',
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: { add() {} },
    problems: problemReporter(() => ({ add() {} }), silentLogger),
    emit: async (records) => {
      // Read before the enqueue: records become the queue's (it may rewrite large integers for the wire).
      const sent = records.map((r) => r.sent as number);
      await queue.enqueue('bench', records);
      const now = Date.now();
      firstCommitAt ||= now;
      lastCommitAt = now;
      for (const t of sent) lags.push(now - t);
      committed += records.length;
      if (committed >= expected) done();
    },
    fail: (err) => {
      console.error(err);
      process.exit(2);
    },
  });
  process.send!('ready');
  await finished;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  abort.abort();
  await source.stop();
  queue.close();
  rmSync(dir, { recursive: true, force: true });
  lags.sort((a, b) => a - b);
  const result: WorkerResult = {
    committed,
    firstCommitAt,
    lastCommitAt,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    maxLagMs: lags.at(-1) ?? 0,
    p99LagMs: lags[Math.floor(lags.length * 0.99)] ?? 0,
    rssBytes: process.memoryUsage().rss,
  };
  process.send!(result);
}

async function main(args: Map<string, string>): Promise<void> {
  const rate = numberArg(args, 'rate', 1000);
  const seconds = numberArg(args, 'seconds', 10);
  const protocol = numberArg(args, 'protocol', 5);
  const qos = numberArg(args, 'qos', 1);
  const total = Math.round(rate * seconds);
  const broker = await startMosquitto();
  try {
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--worker', '--url', broker.url, '--protocol', String(protocol), '--qos', String(qos), '--expect', String(total)],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    const messages: unknown[] = [];
    let wake: (() => void) | undefined;
    child.on('message', (m) => {
      messages.push(m);
      wake?.();
    });
    const next = async () => {
      while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return messages.shift();
    };
    await next(); // ready: subscribed

    const device = await mqtt.connectAsync(broker.url, { clientId: 'bench-device', protocolVersion: 5 });
    const started = performance.now();
    // Paced by the clock: message i leaves at started + i/rate, whatever the timer granularity.
    for (let sent = 0; sent < total; ) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        device.publish(TOPIC, JSON.stringify({ sent: Date.now(), seq: sent, sensor: `s${sent % 16}`, value: 20 + (sent % 7) / 10 }), { qos: 1 });
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const publishSeconds = (performance.now() - started) / 1000;
    const result = (await next()) as WorkerResult;
    await device.endAsync();
    child.kill();
    const commitSeconds = (result.lastCommitAt - result.firstCommitAt) / 1000 || publishSeconds;
    console.log(
      JSON.stringify({
        protocol,
        qos,
        offered_rate: rate,
        published: total,
        publish_seconds: +publishSeconds.toFixed(2),
        committed: result.committed,
        committed_per_s: Math.round(result.committed / commitSeconds),
        cpu_pct: +((100 * result.cpuMs) / result.wallMs).toFixed(1),
        max_lag_ms: result.maxLagMs,
        p99_lag_ms: result.p99LagMs,
        rss_mb: +(result.rssBytes / 2 ** 20).toFixed(1),
      }),
    );
  } finally {
    await broker.stop();
    rmSync(broker.dir, { recursive: true, force: true });
  }
}

const args = parseArgs(process.argv.slice(2));
if (args.has('worker')) await worker(args);
else await main(args);

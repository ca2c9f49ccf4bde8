/**
 * The end-to-end scenario of scripts/bench/pulsar-bench.ts (real agent from YAML, synthetic source at rate 0,
 * count N, CBOR ▸ deflate ▸ XChaCha20-Poly1305 batches) with the Kafka sink to a real single-node Kafka 4
 * broker (KRaft) instead. The clock runs from startAgent until every record is acknowledged (acks=all) and
 * deleted from the queue. The agent runs in a child pinned to core 0; the broker runs on the other core.
 * Wire bytes: what the agent's sockets wrote (Kafka protocol, envelopes included). Prints one JSON line.
 *
 *   node scripts/bench/kafka-bench.ts [--records 200000] [--seconds 120] [--max-in-flight 16] [--shape classic|realistic]
 */
import { spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../../agent/log.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { startKafka } from '../lib/kafka.ts';
import { numberArg, parseArgs, readMemory, report } from './proc.ts';
import { parseBenchConfig } from './settings.ts';

const args = parseArgs(process.argv.slice(2));
const records = numberArg(args, 'records', 200_000);
const seconds = numberArg(args, 'seconds', 120);
const shape = args.get('shape') ?? 'classic';

async function worker(bootstrap: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-bench-kafka-'));
  const yaml = [
    'device: { id: bench }',
    'data_dir: data',
    'log: { level: warn }',
    'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
    'queue: { path: queue.db }',
    'sources:',
    `  - { type: synthetic, name: synthetic, rate: 0, count: ${records}, shape: ${shape} }`,
    'sink:',
    '  type: kafka',
    `  brokers: [${bootstrap}]`,
    `  topic: bench-${Date.now()}`,
    ...(args.has('max-in-flight') ? ['sender:', `  max_in_flight: ${args.get('max-in-flight')}`] : []),
    '',
  ].join('\n');
  const sockets: Socket[] = [];
  diagnostics.subscribe('net.client.socket', (message) => sockets.push((message as { socket: Socket }).socket));
  try {
    const agent = await startAgent(parseBenchConfig(yaml, dir), createLogger('warn'));
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const done = await new Promise<boolean>((resolve) => {
      const deadline = setTimeout(() => (clearInterval(poll), resolve(false)), seconds * 1000);
      const poll = setInterval(() => {
        const { queue, sender } = agent.status();
        if (queue.committed >= records && queue.records === 0 && sender.inFlight === 0) {
          clearInterval(poll);
          clearTimeout(deadline);
          resolve(true);
        }
      }, 2);
    });
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const mem = readMemory();
    const status = agent.status();
    const written = sockets.reduce((sum, s) => sum + s.bytesWritten, 0);
    await agent.stop();
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    report({
      kind: 'e2e-kafka',
      shape,
      complete: done,
      records: status.sender.recordsSent,
      seconds: elapsed,
      recordsPerSecond: status.sender.recordsSent / elapsed,
      batches: status.sender.batchesSent,
      retries: status.sender.retries,
      rejected: status.sender.rejected,
      cpuSeconds,
      cpuSecondsPer100k: (cpuSeconds / status.sender.recordsSent) * 100_000,
      wireBytesPerRecord: written / status.sender.recordsSent,
      peakRss: mem.hwm,
      rssAtEnd: mem.rss,
      node: process.version,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

if (args.has('worker-bootstrap')) {
  await worker(args.get('worker-bootstrap')!);
} else {
  // Full JIT and G1 for the broker here (the test default trades throughput for a quick start).
  process.env.KAFKA_JVM_OPTS ??= '';
  const broker = await startKafka({ partitions: 1 });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const child = spawn('taskset', ['-c', '0', process.execPath, import.meta.filename, ...process.argv.slice(2), '--worker-bootstrap', broker.bootstrap], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`worker exited ${code}: ${out}`))));
    });
    const result = JSON.parse(line.split('\n').pop()!);
    result.brokerRss = readMemory(broker.pid).rss;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await broker.close();
  }
}

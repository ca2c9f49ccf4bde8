/**
 * The end-to-end scenario of scripts/bench/e2e-worker.ts (real agent from YAML, synthetic source at rate 0,
 * count N, CBOR ▸ deflate ▸ XChaCha20-Poly1305 batches) with the Pulsar sink's WebSocket transport to a real
 * Pulsar standalone broker instead of MQTT. The clock runs from startAgent until every record is
 * acknowledged (send receipts) and deleted from the queue. The agent runs in a child pinned to core 0;
 * the broker runs on the other core. Prints one JSON line.
 *
 *   node scripts/bench/pulsar-bench.ts [--records 200000] [--seconds 120] [--max-in-flight 16]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../../agent/log.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { startPulsar } from '../lib/pulsar.ts';
import { numberArg, parseArgs, readMemory, report } from './proc.ts';
import { parseBenchConfig } from './settings.ts';

const args = parseArgs(process.argv.slice(2));
const records = numberArg(args, 'records', 200_000);
const seconds = numberArg(args, 'seconds', 120);

async function worker(url: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-bench-pulsar-'));
  const yaml = [
    'device: { id: bench }',
    'data_dir: data',
    'log: { level: warn }',
    'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
    'queue: { path: queue.db }',
    'sources:',
    `  - { type: synthetic, name: synthetic, rate: 0, count: ${records} }`,
    'sink:',
    '  type: pulsar',
    `  url: ${url}`,
    `  topic: bench-${Date.now()}`,
    ...(args.has('max-in-flight') ? ['sender:', `  max_in_flight: ${args.get('max-in-flight')}`] : []),
    '',
  ].join('\n');
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
    await agent.stop();
    report({
      kind: 'e2e-pulsar',
      transport: 'websocket',
      complete: done,
      records: status.sender.recordsSent,
      seconds: elapsed,
      recordsPerSecond: status.sender.recordsSent / elapsed,
      batches: status.sender.batchesSent,
      retries: status.sender.retries,
      rejected: status.sender.rejected,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRss: mem.hwm,
      rssAtEnd: mem.rss,
      node: process.version,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

if (args.has('worker-url')) {
  await worker(args.get('worker-url')!);
} else {
  const broker = await startPulsar();
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const child = spawn('taskset', ['-c', '0', process.execPath, import.meta.filename, ...process.argv.slice(2), '--worker-url', broker.wsUrl], {
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

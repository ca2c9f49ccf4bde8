/**
 * The end-to-end scenario of scripts/bench/e2e-worker.ts (real agent from YAML, synthetic source at rate 0,
 * count N, CBOR ▸ zstd ▸ XChaCha20-Poly1305 batches) with the Pulsar sink's WebSocket transport to a real
 * Pulsar standalone broker instead of MQTT. The clock runs from startAgent until every record is
 * acknowledged (send receipts) and deleted from the queue. The agent runs in a child pinned to core 0;
 * the broker runs on the other core. Prints one JSON line.
 *
 *   node scripts/bench/pulsar-bench.ts [--records 200000] [--seconds 120] [--max-in-flight 16]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../agent/log.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { startPulsar } from '../lib/pulsar.ts';
import { benchAgentYaml, memoryFigures, runPinnedWorker, runUntilDrained, sentFigures } from './broker-bench.ts';
import { numberArg, parseArgs, report } from './proc.ts';
import { parseBenchConfig } from './settings.ts';

const args = parseArgs(process.argv.slice(2));
const records = numberArg(args, 'records', 200_000);
const seconds = numberArg(args, 'seconds', 120);

async function worker(url: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-bench-pulsar-'));
  const sink = ['  type: pulsar', `  url: ${url}`, `  topic: bench-${Date.now()}`];
  const yaml = benchAgentYaml(records, '', sink, args.get('max-in-flight'));
  try {
    const agent = await startAgent(parseBenchConfig(yaml, dir), createLogger('warn'));
    const run = await runUntilDrained(agent, records, seconds);
    await agent.stop();
    report({ kind: 'e2e-pulsar', transport: 'websocket', ...sentFigures(run), ...memoryFigures(run) });
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
    await runPinnedWorker('worker-url', broker.wsUrl, broker.pid);
  } finally {
    await broker.close();
  }
}

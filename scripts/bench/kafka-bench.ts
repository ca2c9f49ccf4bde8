/**
 * The end-to-end scenario of scripts/bench/pulsar-bench.ts (real agent from YAML, synthetic source at rate 0,
 * count N, CBOR ▸ zstd ▸ XChaCha20-Poly1305 batches) with the Kafka sink to a real single-node Kafka 4
 * broker (KRaft) instead. The clock runs from startAgent until every record is acknowledged (acks=all) and
 * deleted from the queue. The agent runs in a child pinned to core 0; the broker runs on the other core.
 * Wire bytes: what the agent's sockets wrote (Kafka protocol, envelopes included). Prints one JSON line.
 *
 *   node scripts/bench/kafka-bench.ts [--records 200000] [--seconds 120] [--max-in-flight 16] [--shape classic|realistic]
 */
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../agent/log.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { startKafka } from '../lib/kafka.ts';
import { benchAgentYaml, memoryFigures, runPinnedWorker, runUntilDrained, sentFigures } from './broker-bench.ts';
import { numberArg, parseArgs, report } from './proc.ts';
import { parseBenchConfig } from './settings.ts';

const args = parseArgs(process.argv.slice(2));
const records = numberArg(args, 'records', 200_000);
const seconds = numberArg(args, 'seconds', 120);
const shape = args.get('shape') ?? 'classic';

async function worker(bootstrap: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-bench-kafka-'));
  const sink = ['  type: kafka', `  brokers: [${bootstrap}]`, `  topic: bench-${Date.now()}`];
  const yaml = benchAgentYaml(records, `, shape: ${shape}`, sink, args.get('max-in-flight'));
  const sockets: Socket[] = [];
  diagnostics.subscribe('net.client.socket', (message) => sockets.push((message as { socket: Socket }).socket));
  try {
    const agent = await startAgent(parseBenchConfig(yaml, dir), createLogger('warn'));
    const run = await runUntilDrained(agent, records, seconds);
    const written = sockets.reduce((sum, s) => sum + s.bytesWritten, 0);
    await agent.stop();
    const sent = run.status.sender.recordsSent;
    report({
      kind: 'e2e-kafka',
      shape,
      ...sentFigures(run),
      cpuSecondsPer100k: (run.cpuSeconds / sent) * 100_000,
      wireBytesPerRecord: written / sent,
      ...memoryFigures(run),
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
    await runPinnedWorker('worker-bootstrap', broker.bootstrap, broker.pid);
  } finally {
    await broker.close();
  }
}

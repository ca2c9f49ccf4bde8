/**
 * The shared harness of the end-to-end broker benchmarks (scripts/bench/kafka-bench.ts, pulsar-bench.ts): the
 * agent's YAML, the clock from startAgent until every record is acknowledged and deleted from the queue, and
 * the parent that runs the agent in a child pinned to core 0 while the broker runs on the other core.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { startAgent } from '../../agent/runtime/agent.ts';
import { type Memory, readMemory } from './proc.ts';

type Agent = Awaited<ReturnType<typeof startAgent>>;

/** The agent config: synthetic source at rate 0 (with SOURCE_EXTRA, e.g. `shape: realistic`), the given sink. */
export function benchAgentYaml(records: number, sourceExtra: string, sinkLines: string[], maxInFlight: string | undefined): string {
  return [
    'device: { id: bench }',
    'data_dir: data',
    'log: { level: warn }',
    'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
    'queue: { path: queue.db }',
    'sources:',
    `  - { type: synthetic, name: synthetic, rate: 0, count: ${records}${sourceExtra} }`,
    'sink:',
    ...sinkLines,
    ...(maxInFlight !== undefined ? ['sender:', `  max_in_flight: ${maxInFlight}`] : []),
    '',
  ].join('\n');
}

export interface DrainRun {
  /** Every record was committed, sent and deleted before the deadline. */
  complete: boolean;
  seconds: number;
  cpuSeconds: number;
  memory: Memory;
  status: ReturnType<Agent['status']>;
}

/** Clocks the started agent until RECORDS are committed and the queue and in-flight window are empty, or SECONDS pass. */
export async function runUntilDrained(agent: Agent, records: number, seconds: number): Promise<DrainRun> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const complete = await new Promise<boolean>((resolve) => {
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
  return { complete, seconds: elapsed, cpuSeconds: (cpu.user + cpu.system) / 1e6, memory: readMemory(), status: agent.status() };
}

/**
 * Runs this script again as the worker (pinned to core 0, with `--WORKER_FLAG VALUE` appended), prints its JSON
 * line with the broker's RSS added.
 */
export async function runPinnedWorker(workerFlag: string, value: string, brokerPid: number): Promise<void> {
  const script = process.argv[1]!;
  const line = await new Promise<string>((resolve, reject) => {
    const child = spawn('taskset', ['-c', '0', process.execPath, script, ...process.argv.slice(2), `--${workerFlag}`, value], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`worker exited ${code}: ${out}`))));
  });
  const result = JSON.parse(line.split('\n').pop()!);
  result.brokerRss = readMemory(brokerPid).rss;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** The delivery figures every broker benchmark prints (JSON key order kept: they go into docs/benchmarks.md). */
export function sentFigures(run: DrainRun) {
  const sent = run.status.sender;
  return {
    complete: run.complete,
    records: sent.recordsSent,
    seconds: run.seconds,
    recordsPerSecond: sent.recordsSent / run.seconds,
    batches: sent.batchesSent,
    retries: sent.retries,
    rejected: sent.rejected,
    cpuSeconds: run.cpuSeconds,
  };
}

/** The agent's memory at the end of the run, and the Node version. */
export function memoryFigures(run: DrainRun) {
  return { peakRss: run.memory.hwm, rssAtEnd: run.memory.rss, node: process.version };
}

/**
 * The hl7 and modbus sources into a real, durable queue (synchronous: full, the default commit settings).
 *
 *   node scripts/bench/hl7-modbus-bench.ts [--messages 4000] [--senders 1,8] [--polls 300]
 *
 * hl7: ORU^R01 results of 1–2 KB (12–24 observations with noisy values, per-message ids), sent by `senders`
 * concurrent MLLP connections, each waiting for its ACK before the next message as a lab system does. The
 * gateway side runs in a child process, so its CPU is its own: prints messages/s, CPU-s per 100k messages
 * and the median and 99th-percentile time from sending a message to its AA (which includes its commit).
 * modbus: 100-register polls (50 float32 values) of a real pymodbus TCP server, back to back: CPU-s per 100k
 * polls (one record each, commit included) and the time of one poll's read and decode.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hl7Source } from '../../drivers/sources/hl7/index.ts';
import { mllpFrame } from '../../drivers/sources/hl7/mllp.ts';
import { modbusSource } from '../../drivers/sources/modbus/index.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { parseConfigObject } from '../../agent/app.ts';
import { queueOptions } from '../../agent/runtime/queue-options.ts';
import { silentLogger } from '../../agent/log.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';
import type { PolledSource, ServiceSource, SourceContext } from '../../agent/sdk/index.ts';
import { freePort } from '../lib/ports.ts';
import { oruMessage } from '../../test/helpers/hl7.ts';
import { startModbusServer, words } from '../../test/helpers/modbus.ts';
import { numberArg, parseArgs } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const messages = numberArg(args, 'messages', 4000);
const polls = numberArg(args, 'polls', 300);
const senderCounts = String(args.get('senders') ?? '1,8')
  .split(',')
  .map(Number);

/** A queue with the agent's default settings (an empty config's), as a gateway runs it. */
function openQueue(dir: string): Queue {
  const { config } = parseConfigObject({}, 'defaults', dir);
  return Queue.open(queueOptions(config, join(dir, 'q.db'), silentLogger));
}

function context(queue: Queue, name: string): SourceContext {
  return {
    name,
    log: silentLogger,
    cursor: queue.cursor(name),
    signal: new AbortController().signal,
    counters: { add() {} },
    problems: problemReporter(() => ({ add() {} }), silentLogger),
    emit: (records, cursor, options) =>
      queue.enqueue(name, records, cursor === undefined ? undefined : { source: name, value: cursor }, options?.commitWithinMs),
    fail: (err) => {
      throw err;
    },
  };
}

/** The gateway side of the hl7 run, in a child process: reports its port, then its CPU when told. */
async function hl7Gateway(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-hl7-bench-'));
  const queue = openQueue(dir);
  const port = await freePort();
  const options = hl7Source.options.parse({ listen: `127.0.0.1:${port}` });
  const source = (await hl7Source.create(
    { ...options, type: 'hl7', name: 'lab', stream: 'lab', interval: 1000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as ServiceSource;
  await source.start(context(queue, 'lab'));
  const cpu = process.cpuUsage();
  process.send!({ port });
  process.on('message', async () => {
    const used = process.cpuUsage(cpu);
    await source.stop();
    const stats = queue.stats();
    queue.close();
    rmSync(dir, { recursive: true, force: true });
    process.send!({ cpuS: (used.user + used.system) / 1e6, records: stats.records });
    process.disconnect();
  });
}

async function sender(port: number, ids: string[], latencies: number[]): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  let answered: (() => void) | undefined;
  socket.on('data', () => answered?.());
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  for (const id of ids) {
    const frame = mllpFrame(Buffer.from(oruMessage({ controlId: id, observations: 12 + ((id.length * 7 + Number(id.slice(-2))) % 13) })));
    const start = performance.now();
    await new Promise<void>((resolve) => {
      answered = resolve;
      socket.write(frame);
    });
    latencies.push(performance.now() - start);
  }
  socket.destroy();
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function hl7Run(senders: number): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--gateway'], { stdio: 'inherit' });
  const reply = () => new Promise<Record<string, number>>((resolve) => child.once('message', (m) => resolve(m as Record<string, number>)));
  const { port } = await reply();
  const latencies: number[] = [];
  const per = Math.ceil(messages / senders);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: senders }, (_, s) =>
      sender(
        port!,
        Array.from({ length: per }, (_, i) => `S${s}M${String(i).padStart(6, '0')}`),
        latencies,
      ),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  child.send('stop');
  const { cpuS, records } = await reply();
  console.log(
    `hl7   senders=${senders}: ${records} messages in ${seconds.toFixed(1)} s = ${(records! / seconds).toFixed(0)} msg/s; gateway CPU ${((cpuS! / records!) * 1e5).toFixed(2)} CPU-s per 100k; send→AA median ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms`,
  );
}

async function modbusRun(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-modbus-bench-'));
  const port = await freePort();
  const holding = Array.from({ length: 100 }, (_, i) => i).flatMap((i) => (i % 2 === 0 ? words('float32', 20 + Math.sin(i) * 5) : []));
  const server = await startModbusServer(dir, { 1: { holding } }, { tcp: port });
  const queue = openQueue(dir);
  const points = Array.from({ length: 50 }, (_, i) => ({ name: `t${i}`, address: i * 2, type: 'float32', scale: 0.1 }));
  const options = modbusSource.options.parse({ transport: { type: 'tcp', host: '127.0.0.1', port }, points });
  const source = (await modbusSource.create(
    { ...options, type: 'modbus', name: 'plc', stream: 'plc', interval: 0, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as PolledSource;
  // Each poll's read and decode, up to the emit (the commit after it waits for queue.commit_interval, which
  // bounds a polled source's rate, not its cost).
  let emittedAt = 0;
  const durable = context(queue, 'plc');
  const ctx: SourceContext = { ...durable, emit: (records, cursor, o) => ((emittedAt = performance.now()), durable.emit(records, cursor, o)) };
  await source.gather(ctx); // connect
  const times: number[] = [];
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < polls; i++) {
    const t = performance.now();
    await source.gather(ctx);
    times.push(emittedAt - t);
  }
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  await source.close?.();
  const records = queue.stats().records;
  queue.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `modbus 100 registers per poll: ${polls} polls in ${seconds.toFixed(1)} s = ${(polls / seconds).toFixed(0)} polls/s (${records - 1} records); agent CPU ${(((used.user + used.system) / 1e6 / polls) * 1e5).toFixed(2)} CPU-s per 100k polls; read and decode of one poll median ${quantile(times, 0.5).toFixed(1)} ms, p99 ${quantile(times, 0.99).toFixed(1)} ms (the server is Python); each poll then waits for its commit (queue.commit_interval)`,
  );
}

if (process.argv.includes('--gateway')) {
  await hl7Gateway();
} else {
  for (const n of senderCounts) await hl7Run(n);
  await modbusRun();
}

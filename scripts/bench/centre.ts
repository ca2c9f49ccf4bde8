/**
 * The centre's throughput (docs/benchmarks.md, "Centre"): `edge-agent receive` processes on one MQTT 5
 * shared subscription of a Mosquitto of our own, writing into PostgreSQL (a fresh database on the machine's
 * server, dropped after) or into JSON lines, with 1 and 2 receivers. `--devices` simulated gateways (own keys)
 * send `--batches` batches each of `--records` realistic records (timestamp, sensor id out of 400, noisy
 * float, status), sealed beforehand so sealing is not measured, then published at full speed while the
 * receivers run.
 *
 * Figures: records/s on the wall clock (first publish to last record landed), and records per CPU-second of
 * the receiver processes (user + system from /proc, from "receiver running" to the end): that is "per core",
 * and holds on a loaded machine where the wall clock does not. The CPU of the PostgreSQL backends serving the
 * receivers is shown beside it (the server's WAL writer and checkpointer are not counted).
 *
 *   node scripts/bench/centre.ts [--devices 100] [--batches 40] [--records 50] [--receivers 1,2]
 *                                [--outputs postgres,jsonl] [--json FILE]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { x25519 } from '../../agent/keys/x25519.ts';
import { simulateFleet, type SimulatedFleet } from '../lib/centre-sim.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { fmtInt, table } from './format.ts';
import { numberArg, parseArgs, readCpuSeconds, report } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const devices = numberArg(args, 'devices', 100);
const batches = numberArg(args, 'batches', 40);
const records = numberArg(args, 'records', 50);
const receiverCounts = (args.get('receivers') ?? '1,2').split(',').map(Number);
const outputs = (args.get('outputs') ?? 'postgres,jsonl').split(',');
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const MAIN = resolve(import.meta.dirname, '../../agent/cli/main.ts');

interface Result {
  output: string;
  receivers: number;
  records: number;
  wallSeconds: number;
  cpuSeconds: number;
  recordsPerSecond: number;
  recordsPerCpuSecond: number;
  /** CPU of the PostgreSQL backends serving the receivers (not the server's background writers). */
  databaseCpuSeconds: number;
}

function startReceiver(config: string): Promise<{ pid: number; cpuAtStart: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [MAIN, 'receive', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return new Promise((resolveStart, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      if (stderr.includes('"msg":"receiver running"')) {
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolveStart({
          pid: child.pid!,
          cpuAtStart: readCpuSeconds(child.pid!),
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
    void exited.then(() => reject(new Error(`receiver exited: ${stderr.slice(-2000)}`)));
  });
}

function config(dir: string, fleet: SimulatedFleet, i: number, brokerUrl: string, output: string, database: string): string {
  const path = join(dir, `centre-${i}.yaml`);
  const target =
    output === 'postgres' ? `  postgres: { url: "postgres://${PG.user}@${PG.host}:${PG.port}/${database}" }` : `  output: ${join(dir, `out-${i}.jsonl`)}`;
  writeFileSync(
    path,
    `data_dir: ${join(dir, `data-${i}`)}
log: { level: info, format: json }
receiver:
  private_key: ${fleet.centreKeyFile}
  input: { type: mqtt, url: ${brokerUrl}, client_id: bench-${i}, shared_group: bench, protocol_version: 5 }
${target}
  devices:
${fleet.devicesYaml(4)}
`,
  );
  return path;
}

function linesIn(path: string): number {
  try {
    const bytes = readFileSync(path);
    let n = 0;
    for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

async function run(output: string, receivers: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-centre-bench-'));
  const fleet = simulateFleet(x25519, dir, devices);
  const broker = await startMosquitto();
  const database = `edge_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  if (output === 'postgres') await admin.query(`CREATE DATABASE ${database}`);
  const db = output === 'postgres' ? new pg.Client({ ...PG, database }) : undefined;
  const running: Awaited<ReturnType<typeof startReceiver>>[] = [];
  try {
    for (let i = 0; i < receivers; i++) running.push(await startReceiver(config(dir, fleet, i, broker.url, output, database)));
    await db?.connect();
    const sealed: { topic: string; bytes: Buffer }[] = [];
    for (let seq = 1; seq <= batches; seq++) {
      for (let i = 0; i < devices; i++) sealed.push({ topic: `edge-agent/v1/${fleet.devices[i]!.id}/telemetry`, bytes: fleet.seal(i, seq, records) });
    }
    const total = devices * batches * records;
    const landed = async () =>
      db
        ? Number((await db.query('SELECT count(*) AS n FROM edge_agent.records')).rows[0].n)
        : running.reduce((sum, _, i) => sum + linesIn(join(dir, `out-${i}.jsonl`)), 0);
    const client = await mqtt.connectAsync(broker.url, { clientId: 'bench-gateways', protocolVersion: 5 });
    const cpuBefore = running.map((r) => r.cpuAtStart);
    const backends = async () =>
      (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database])).rows
        .map((r) => r.pid)
        .filter((pid) => pid !== (db as unknown as { processID?: number })?.processID);
    const dbBefore = new Map((await backends()).map((pid) => [pid, readCpuSeconds(pid)]));
    const started = performance.now();
    // 200 publishes in flight at most: the broker's window, not a queue in this process.
    for (let i = 0; i < sealed.length; i += 200) await Promise.all(sealed.slice(i, i + 200).map((m) => client.publishAsync(m.topic, m.bytes, { qos: 1 })));
    while ((await landed()) < total) await new Promise((r) => setTimeout(r, 100));
    const wallSeconds = (performance.now() - started) / 1000;
    const cpuSeconds = running.reduce((sum, r, i) => sum + readCpuSeconds(r.pid) - cpuBefore[i]!, 0);
    const databaseCpuSeconds = (await backends()).reduce((sum, pid) => sum + readCpuSeconds(pid) - (dbBefore.get(pid) ?? 0), 0);
    await client.endAsync();
    return {
      output,
      receivers,
      records: total,
      wallSeconds,
      cpuSeconds,
      recordsPerSecond: total / wallSeconds,
      recordsPerCpuSecond: total / cpuSeconds,
      databaseCpuSeconds,
    };
  } finally {
    await Promise.all(running.map((r) => r.stop()));
    await db?.end();
    if (output === 'postgres') await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (const output of outputs) for (const n of receiverCounts) results.push(await run(output, n));

const RATE = 10; // records/s per gateway: the assumption of docs/benchmarks.md
console.log(`${devices} gateways × ${batches} batches × ${records} records (${fmtInt(devices * batches * records)} records per run)\n`);
console.log(
  table([
    [
      'output',
      'receivers',
      'wall s',
      'receiver CPU s',
      'PostgreSQL backends CPU s',
      'records/s (wall)',
      'records/s per receiver core',
      `gateways per receiver core at ${RATE} rec/s`,
    ],
    ...results.map((r) => [
      r.output,
      String(r.receivers),
      r.wallSeconds.toFixed(1),
      r.cpuSeconds.toFixed(1),
      r.output === 'postgres' ? r.databaseCpuSeconds.toFixed(1) : '—',
      fmtInt(r.recordsPerSecond),
      fmtInt(r.recordsPerCpuSecond),
      fmtInt(r.recordsPerCpuSecond / RATE),
    ]),
  ]),
);
report({ devices, batches, records, results });

/**
 * What end-to-end acknowledgement costs: the same pipeline with `acknowledged_by: broker` and `centre`.
 * The gateway is `edge-agent run` in a child process (a synthetic source, as fast as the queue takes it);
 * the receiver runs in this process with an output that only counts; both talk to a private Mosquitto.
 * CPU is measured between the moment 10 % of the records reached the receiver and the moment all of them had
 * and the gateway's queue was empty, so start-up is not counted: the gateway's from /proc/<pid>/stat, the
 * receiver's with process.cpuUsage() (this process: the receiver and its MQTT client only).
 *
 *   node scripts/bench/delivery-bench.ts [RECORDS=200000] [ROUNDS=2]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseConfig } from '../../agent/app.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import type { RecordOutput } from '../../agent/receiver/output.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';
import { silentLogger } from '../../agent/log.ts';
import { startMosquitto } from '../lib/mosquitto.ts';

const RECORDS = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 2);
const TICK = 100; // USER_HZ on Linux

function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
}

function queued(dir: string): number {
  try {
    const db = new Database(join(dir, 'data', 'queue.db'), { readonly: true });
    try {
      return db.prepare('SELECT coalesce(sum(count), 0) FROM chunks').pluck().get() as number;
    } finally {
      db.close();
    }
  } catch {
    return -1; // not created yet
  }
}

async function until(test: () => boolean, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function round(mode: 'broker' | 'centre') {
  const dir = mkdtempSync(join(tmpdir(), 'edge-delivery-bench-'));
  writeKeyPair(x25519, join(dir, 'keys', 'device'));
  writeKeyPair(x25519, join(dir, 'keys', 'centre'));
  const broker = await startMosquitto();
  const yaml = `device: { id: gw-bench }
data_dir: data
log: { level: warn }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - { type: synthetic, name: gen, rate: 0, batch: 500, count: ${RECORDS} }
sink: { type: mqtt, url: ${broker.url}, acknowledged_by: ${mode} }
receiver:
  private_key: keys/centre.key
  devices: [{ id: gw-bench, public_keys: [keys/device.pub] }]
`;
  const path = join(dir, 'agent.yaml');
  writeFileSync(path, yaml);
  let records = 0;
  const output: RecordOutput = { write: async (_h, r) => void (records += r.length), close: async () => {} };
  const receiver = await startReceiver(x25519, parseConfig(yaml, path, dir), silentLogger, { output });
  const agent = spawn(process.execPath, ['agent/cli/main.ts', 'run', '--config', path], { stdio: ['ignore', 'ignore', 'inherit'] });
  await until(() => records >= RECORDS / 10);
  const gw0 = cpuSecondsOf(agent.pid!);
  const rc0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const from = records;
  await until(() => records >= RECORDS && queued(dir) === 0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const gw = cpuSecondsOf(agent.pid!) - gw0;
  const rcUsage = process.cpuUsage(rc0);
  const rc = (rcUsage.user + rcUsage.system) / 1e6;
  const n = records - from;
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  await receiver.close();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
  return { mode, records: n, gatewayCpuPer100k: (gw / n) * 1e5, receiverCpuPer100k: (rc / n) * 1e5, recordsPerSecond: n / wall, acks: 0 };
}

console.log(`delivery bench: ${RECORDS} synthetic records per round, ${ROUNDS} rounds per mode, node ${process.version}`);
for (let r = 0; r < ROUNDS; r++) {
  for (const mode of ['broker', 'centre'] as const) {
    const res = await round(mode);
    console.log(
      `${mode.padEnd(6)} gateway ${res.gatewayCpuPer100k.toFixed(3)} CPU-s/100k   receiver ${res.receiverCpuPer100k.toFixed(3)} CPU-s/100k   ${Math.round(res.recordsPerSecond)} rec/s (wall, shared machine)`,
    );
  }
}

/**
 * The governor's figures, from the agent as a process (`agent/cli/main.ts run`), a synthetic source of
 * realistic records, the MQTT sink through a counting TCP proxy to a Mosquitto of this script's own:
 *
 * - CPU of the agent (user + system, /proc/PID/stat) over `--seconds`: idle (no source), forwarding (the source
 *   at `--rate` records/s, gates open) and held (the same, the memory gate closed by a fixture /proc tree);
 * - the bandwidth cap: bytes both ways at the proxy over `--cap-seconds` (60 by default) against the cap
 *   (`--cap` bytes/s), a backlog waiting all the while.
 *
 *   node scripts/bench/governor.ts [--seconds 20] [--rate 100] [--cap 16384] [--cap-seconds 60] [--only cpu|cap]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CountingProxy } from '../lib/counting-proxy.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { numberArg, parseArgs, readCpuSeconds, report } from './proc.ts';
import { Subscriber } from './subscriber.ts';

const args = parseArgs(process.argv.slice(2));
const seconds = numberArg(args, 'seconds', 20);
const rate = numberArg(args, 'rate', 100);
const cap = numberArg(args, 'cap', 16_384);
const capSeconds = numberArg(args, 'cap-seconds', 60);
const only = args.get('only');
const root = resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fixtureProc(dir: string, memAvailableMiB: number): string {
  const proc = join(dir, 'proc');
  mkdirSync(join(proc, 'pressure'), { recursive: true });
  writeFileSync(join(proc, 'meminfo'), `MemTotal: 1024000 kB\nMemAvailable: ${memAvailableMiB * 1024} kB\n`);
  writeFileSync(join(proc, 'loadavg'), '0.10 0.10 0.10 1/100 1\n');
  return proc;
}

function configText(dir: string, url: string, opts: { rate: number | undefined; memory: number; bandwidth?: number }): string {
  // Idle: one record at start, then nothing (a source is required to run).
  const source = `sources:
  - type: synthetic
    name: load
    rate: ${opts.rate ?? 1}${opts.rate === undefined ? '\n    count: 1' : ''}
    batch: ${Math.max(1, Math.min(100, opts.rate ?? 1))}
    shape: realistic
    record_bytes: 120
    sensors: 400`;
  return `device:
  id: bench-gw
data_dir: ${dir}/data
keys:
  device_private: ${dir}/keys/device.key
  centre_public: ${dir}/keys/centre.pub
  generate_if_missing: true
${source}
batch:
  max_bytes: 16KiB
sink:
  type: mqtt
  url: ${url}
  protocol_version: 5
governor:
  proc_root: ${fixtureProc(dir, opts.memory)}
  sys_root: ${dir}/sys
  gates:
    memory: { hold: 32, resume: 48 }
${opts.bandwidth ? `  bandwidth: { bytes_per_second: ${opts.bandwidth}, burst: ${opts.bandwidth} }` : ''}
log:
  level: warn
`;
}

async function runAgent(
  name: string,
  url: string,
  opts: { rate: number | undefined; memory: number; bandwidth?: number },
  measure: (pid: number) => Promise<unknown>,
) {
  const dir = mkdtempSync(join(tmpdir(), `governor-bench-${name}-`));
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, configText(dir, url, opts));
  const child = spawn(process.execPath, [join(root, 'agent/cli/main.ts'), 'run', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await sleep(5_000); // start-up and the first batches are not what is measured
    return await measure(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const mosquitto = await startMosquitto();
const subscriber = await Subscriber.start(mosquitto.url);
const results: Record<string, unknown> = {};
try {
  if (only === undefined || only === 'cpu') {
    const proxy = await CountingProxy.start(mosquitto.port);
    const url = `mqtt://127.0.0.1:${proxy.port}`;
    for (const [name, opts] of [
      ['idle', { rate: undefined, memory: 512 }],
      ['forwarding', { rate, memory: 512 }],
      ['held_by_memory_gate', { rate, memory: 16 }],
    ] as const) {
      results[`cpu_${name}`] = await runAgent(name, url, opts, async (pid) => {
        const cpu0 = readCpuSeconds(pid);
        const bytes0 = proxy.total;
        const t0 = performance.now();
        await sleep(seconds * 1000);
        const elapsed = (performance.now() - t0) / 1000;
        return {
          cpu_percent: Math.round(((readCpuSeconds(pid) - cpu0) / elapsed) * 1000) / 10,
          proxy_bytes_per_s: Math.round((proxy.total - bytes0) / elapsed),
          seconds: Math.round(elapsed),
        };
      });
    }
    await proxy.close();
  }
  if (only === undefined || only === 'cap') {
    const proxy = await CountingProxy.start(mosquitto.port);
    // A source far faster than the cap: a backlog waits all the time.
    results.bandwidth_cap = await runAgent('cap', `mqtt://127.0.0.1:${proxy.port}`, { rate: 1000, memory: 512, bandwidth: cap }, async () => {
      const t0 = performance.now();
      const bytes0 = proxy.total;
      const perTen: number[] = [];
      let mark = bytes0;
      for (let i = 0; i < capSeconds / 10; i++) {
        await sleep(10_000);
        perTen.push(Math.round((proxy.total - mark) / 10));
        mark = proxy.total;
      }
      const elapsed = (performance.now() - t0) / 1000;
      const measured = (proxy.total - bytes0) / elapsed;
      return {
        cap_bytes_per_s: cap,
        measured_bytes_per_s: Math.round(measured),
        error_percent: Math.round(((measured - cap) / cap) * 1000) / 10,
        per_10s_bytes_per_s: perTen,
        seconds: Math.round(elapsed),
      };
    });
    await proxy.close();
  }
} finally {
  await subscriber.close();
  await mosquitto.stop();
}
report(results);

/**
 * Anonymous memory of the agent at a steady load (issue 11): the shipped executable (or, with `--tree`, the source
 * tree under the same heap caps) runs a synthetic source into the embedded broker and the receiver's file, at
 * `--rate` records/s (0: as fast as it goes) for `--seconds`; Anonymous from /proc/PID/smaps_rollup is sampled every
 * second and the last and highest are printed with the CPU seconds per record. Targets: ≤ 32 MB at 1k rec/s,
 * ≤ 48 MB at full speed.
 *
 *   node scripts/bench/memory.ts [--rate 1000] [--seconds 60] [--tree] [--executable PATH]
 *
 * Extra environment for the process (e.g. MALLOC_ARENA_MAX=1) is passed through `--env NAME=VALUE`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { numberArg, parseArgs, readCpuSeconds } from './proc.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;

function anonymousBytes(pid: number): number {
  try {
    const m = /^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const args = parseArgs(process.argv.slice(2));
const rate = numberArg(args, 'rate', 1000);
const seconds = numberArg(args, 'seconds', 60);
const tree = args.has('tree');
const executable = args.get('executable') ?? join(ROOT, 'dist/edge-agent-linux-x64');
const extraEnv: Record<string, string> = {};
const envArg = args.get('env');
if (envArg !== undefined) {
  const [name, ...value] = envArg.split('=');
  extraEnv[name!] = value.join('=');
}
if (!tree && !existsSync(executable)) throw new Error(`${executable} is missing: run \`npm run build\` or pass --tree`);

const dir = mkdtempSync(join(tmpdir(), 'edge-agent-memory-bench-'));
writeFileSync(
  join(dir, 'run.yaml'),
  `device: { id: bench-gw }
data_dir: data
keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }
sources:
  - { type: synthetic, name: load, rate: ${rate}, batch: ${rate === 0 ? 500 : 100} }
sink: { type: mqtt, url: embedded, protocol_version: 4 }
broker: { embedded: true }
receiver:
  enabled: true
  private_key: keys/centre.key
  devices: [{ id: bench-gw, public_keys: [keys/device.pub] }]
  output: records.jsonl
`,
);
// The tree runs under the executable's shipped caps (agent/cli/bin.ts: 32 MB old space, 1 MB semi-space).
const argv = tree
  ? [process.execPath, '--max-old-space-size=32', '--max-semi-space-size=1', join(ROOT, 'agent/cli/main.ts'), 'run', '--config', 'run.yaml']
  : [executable, 'run', '--config', 'run.yaml'];
const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'ignore', 'ignore'] });
const pid = child.pid!;
let peak = 0;
let last = 0;
for (let s = 0; s < seconds; s++) {
  await new Promise((r) => setTimeout(r, 1000));
  if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the agent exited (${child.exitCode ?? child.signalCode})`);
  last = anonymousBytes(pid);
  peak = Math.max(peak, last);
}
const cpu = readCpuSeconds(pid);
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
const output = join(dir, 'records.jsonl');
const records = existsSync(output) ? readFileSync(output, 'utf8').split('\n').length - 1 : 0;
rmSync(dir, { recursive: true, force: true });
const target = rate === 0 ? 48 : 32;
process.stdout.write(
  `${tree ? 'tree' : 'executable'} rate=${rate || 'full'} ${seconds} s${envArg ? ` ${envArg}` : ''}: anonymous last ${(last / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB (target ≤ ${target} MB); ${records} records delivered, ${records > 0 ? ((cpu / records) * 1e6).toFixed(1) : '?'} CPU µs/record\n`,
);

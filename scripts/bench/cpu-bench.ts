/**
 * CPU cost end to end, per record shape and size: CPU seconds per 100k records (user + system of the agent
 * process, from process.cpuUsage, so other work on a shared machine does not inflate them the way it
 * inflates wall-clock rates), wire bytes per record, and the records' mean JSON size. Each scenario is one
 * `scripts/bench/e2e-worker.ts` run, pinned to core 0 with the executable's heap caps (DEFAULT_HEAP_CAPS:
 * 48 MB old space, 1 MB semi-space), into a Mosquitto of this script's own (CBOR ▸ zstd ▸ XChaCha20-Poly1305, QoS 1).
 *
 * Scenarios:
 * - `classic`: the synthetic source's original {n, ts, sensor, value, unit} record (the old benchmark);
 * - `real-50`, `real-120`, `real-500`, `real-5k`: its `realistic` shape at those record_bytes;
 * - `sqlite-120`: a SQLite table of 120 B rows (id, ts, sensor, value, unit, status) polled by the sqlite source;
 * - `sqlite-500`: a SQLite table whose `readings` column holds 30 float readings as JSON (json_columns).
 *
 *   node scripts/bench/cpu-bench.ts [--records 200000] [--repeat 2] [--only real-120,sqlite-500]
 *        [--profile DIR]   also write a --cpu-prof profile per scenario into DIR and print its top functions
 *        [--no-caps]       run the workers without heap caps (and without the executable's MEMORY_FLAGS)
 *        [--old-space 48] [--semi-space 1]   the heap caps in MB (the executable's defaults)
 *        [--v8-flags="FLAGS"]   more runtime flags for this checkout's workers (say, one the executable may bake in)
 *        [--against DIR]   before/after, pair by pair: each run of this checkout's worker follows one of the
 *                          checkout at DIR (another `git worktree` with node_modules), so both see the same load
 *        [--wrap "CMD ARGS"]   run each worker under CMD (say `valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p`:
 *                          instruction counts, which the machine's load does not move), both sides alike
 *        [--core 0]        the core the workers are pinned to (another one for a long --wrap run beside timed ones)
 *        [--json]          also print each worker's own JSON line (commits, batches, user/system CPU, …)
 *        [--worker-args "--batch 250"]   more flags for every scenario's worker (e2e-worker.ts), say a source setting
 *        [--executable [PATH]]   run the shipped executable (PATH, else dist/edge-agent-linux-x64, built when
 *                          missing or stale) with the same config instead of the in-process worker: the agent
 *                          as a gateway runs it (bundled, with its code cache and its own heap caps), its CPU
 *                          read from /proc and its records counted by the subscriber as they arrive. With
 *                          --against, DIR's executable is built and measured the same way. The worker's
 *                          run pays for what the product does not: type stripping of the .ts sources (and
 *                          compiling that stripper, a WebAssembly module, in the background) and polling
 *                          the agent's status every 2 ms. --wrap, --profile, --v8-flags and the heap-cap
 *                          options apply to the worker only and are refused with --executable.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_HEAP_CAPS, MEMORY_FLAGS } from '../../agent/cli/heap-caps.ts';
import { openSqlite } from '../../agent/sdk/index.ts';
import { recordMaker } from '../../drivers/sources/synthetic/shapes.ts';
import { startMosquitto } from '../lib/mosquitto.ts';
import { numberArg, parseArgs } from './proc.ts';
import { summariseProfile } from './profile.ts';
import { Subscriber } from './subscriber.ts';
import { e2eConfigYaml } from './e2e-config.ts';
import { AgentProcess, ensureExecutable } from './executable.ts';

const args = parseArgs(process.argv.slice(2));
const records = numberArg(args, 'records', 200_000);
const repeat = numberArg(args, 'repeat', 2);
const only = args.get('only')?.split(',');
const profileDir = args.get('profile');
const root = resolve(import.meta.dirname, '../..');
const against = args.has('against') ? resolve(args.get('against')!) : undefined;

interface Scenario {
  name: string;
  /** Fewer records for big ones: the figure is per 100k either way. */
  records: number;
  worker: string[];
  /** Mean JSON bytes of a record as the source delivers it. */
  jsonBytes: number;
}

function meanJson(make: (n: number) => unknown): number {
  let total = 0;
  for (let n = 1; n <= 5000; n++) total += Buffer.byteLength(JSON.stringify(make(n)));
  return total / 5000;
}

/**
 * The synthetic source holds batch × max_pending records until their commit (the queue bounds what it stores,
 * not what waits for a commit): at the defaults (500 × 16) that is 40 MB of 5 KB records, more than the 32 MB
 * heap cap. Big records get smaller emits, keeping about 1–2 MB of JSON in flight.
 */
function emitsFor(bytes: number): string[] {
  if (bytes <= 200) return [];
  if (bytes <= 1000) return ['--batch', '250', '--max-pending', '8'];
  return ['--batch', '50', '--max-pending', '8', '--commit-every', '200'];
}

const synthetic = (name: string, shape: 'classic' | 'realistic', bytes: number, count: number): Scenario => {
  const make = recordMaker({ shape, sensors: shape === 'classic' ? 16 : 400, record_bytes: bytes });
  return {
    name,
    records: count,
    worker: ['--shape', shape, ...(shape === 'classic' ? [] : ['--record-bytes', String(bytes), ...emitsFor(bytes)])],
    jsonBytes: meanJson((n) => make(n, 1767225600000, n % 500)),
  };
};

/** Builds a SQLite table of `count` rows, each row built by `row(n)`, and returns its file. */
function sqliteTable(dir: string, name: string, count: number, columns: string, row: (n: number) => unknown[]): string {
  const path = join(dir, `${name}.db`);
  const db = openSqlite(path, {});
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE readings (id INTEGER PRIMARY KEY, ${columns})`);
  const marks = columns.split(',').map(() => '?');
  const insert = db.prepare(`INSERT INTO readings VALUES (?, ${marks.join(', ')})`);
  db.transaction(() => {
    for (let n = 1; n <= count; n++) insert.run(n, ...row(n));
  })();
  db.close();
  return path;
}

function sqliteScenarios(dir: string): Scenario[] {
  const real120 = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 120 });
  const real500 = recordMaker({ shape: 'realistic', sensors: 400, record_bytes: 500 });
  const at = 1767225600000;
  const rows120 = (n: number) => {
    const r = real120(n, at + n * 2, 0);
    return [r.ts, r.sensor, r.value, r.unit, r.status];
  };
  const rows500 = (n: number) => {
    const r = real500(n, at + n * 2, 0);
    return [r.ts, `gw-${n % 40}/${String(r.sensor).split('/').pop()}`, JSON.stringify((r.readings as number[]).slice(0, 30))];
  };
  const out: Scenario[] = [];
  if (!only || only.includes('sqlite-120')) {
    const count = records;
    const file = sqliteTable(dir, 'rows120', count, 'ts INTEGER, sensor TEXT, value REAL, unit TEXT, status TEXT', rows120);
    const sample = (n: number) => {
      const [ts, sensor, value, unit, status] = rows120(n);
      return { id: n, ts, sensor, value, unit, status };
    };
    out.push({ name: 'sqlite-120', records: count, worker: ['--sqlite', file, '--table', 'readings'], jsonBytes: meanJson(sample) });
  }
  if (!only || only.includes('sqlite-500')) {
    const count = Math.ceil(records / 2);
    const file = sqliteTable(dir, 'rows500', count, 'ts INTEGER, device TEXT, readings TEXT', rows500);
    const sample = (n: number) => {
      const [ts, device, readings] = rows500(n);
      return { id: n, ts, device, readings: JSON.parse(readings as string) };
    };
    out.push({
      name: 'sqlite-500',
      records: count,
      worker: ['--sqlite', file, '--table', 'readings', '--json-columns', 'readings'],
      jsonBytes: meanJson(sample),
    });
  }
  return out;
}

interface WorkerResult {
  complete: boolean;
  records: number;
  seconds: number;
  cpuSeconds: number;
  cpuSecondsPer100k: number;
  steadyCpuSecondsPer100k: number | null;
  envelopeBytesPerRecord: number;
  socketBytesPerRecord: number;
  peakRss: number;
}

/** `--v8-flags`, for this checkout's workers only: `--against` runs the other side as it is (it may be this checkout too). */
const ownFlags = args.get('v8-flags')?.split(' ').filter(Boolean) ?? [];
/** `--wrap`: a command the workers of both sides run under (a profiler counting instructions). */
const wrap = args.get('wrap')?.split(' ').filter(Boolean) ?? [];

function runWorker(extra: string[], count: number, url: string, profile: string | undefined, cwd = root, flags = ownFlags): Promise<WorkerResult> {
  const caps = args.has('no-caps')
    ? []
    : [
        `--max-old-space-size=${numberArg(args, 'old-space', DEFAULT_HEAP_CAPS.oldSpaceMb)}`,
        `--max-semi-space-size=${numberArg(args, 'semi-space', DEFAULT_HEAP_CAPS.semiSpaceMb)}`,
        ...MEMORY_FLAGS,
      ];
  const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const command = [
    '-c',
    args.get('core') ?? '0',
    ...wrap,
    process.execPath,
    ...caps,
    ...flags,
    ...prof,
    'scripts/bench/e2e-worker.ts',
    '--url',
    url,
    '--records',
    String(count),
    '--seconds',
    '600',
    ...extra,
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn('taskset', command, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`e2e-worker exited with ${code}:\n${stderr.trim()}`));
      const line = stdout.trim().split('\n').pop()!;
      if (args.has('json')) console.log(`  ${cwd === root ? 'this checkout' : cwd}: ${line}`);
      resolvePromise(JSON.parse(line) as WorkerResult);
    });
  });
}

let executableRuns = 0;

/**
 * One scenario on the shipped executable: the worker's config (e2e-config.ts) with a device id of its own,
 * `edge-agent run` pinned to the core, done when the subscriber has counted every record. Steady CPU: from
 * the moment a tenth had arrived to the last, as the worker counts it.
 */
async function runExecutable(executable: string, extra: string[], count: number, url: string): Promise<WorkerResult> {
  const device = `cpu-${process.pid}-${++executableRuns}`;
  const runDir = mkdtempSync(join(dir, 'exe-'));
  const config = join(runDir, 'agent.yaml');
  writeFileSync(config, e2eConfigYaml(parseArgs(extra), { device, url, records: count }));
  const agent = new AgentProcess(executable, config, args.get('core') ?? '0');
  try {
    let warm: { cpu: number; records: number } | undefined;
    const complete = await subscriber.until(
      () => {
        const arrived = subscriber.device(device).records;
        if (warm === undefined && arrived >= count / 10) warm = { cpu: agent.cpuSeconds(), records: arrived };
        return arrived >= count;
      },
      600_000,
      () => !agent.running,
    );
    const seconds = (performance.now() - agent.spawnedAt) / 1000;
    if (!agent.running) throw new Error(`${executable} exited during the run (${agent.failure})`);
    const cpuSeconds = agent.cpuSeconds();
    const peakRss = agent.memory().hwm;
    const arrived = subscriber.device(device);
    if (args.has('json'))
      console.log(
        `  ${executable}: ${JSON.stringify({ records: arrived.records, seconds, recordsPerSecond: arrived.records / seconds, cpuSeconds, peakRss })}`,
      );
    return {
      complete,
      records: arrived.records,
      seconds,
      cpuSeconds,
      cpuSecondsPer100k: (cpuSeconds / arrived.records) * 100_000,
      steadyCpuSecondsPer100k: warm ? ((cpuSeconds - warm.cpu) / (arrived.records - warm.records)) * 100_000 : null,
      envelopeBytesPerRecord: arrived.bytes / arrived.records,
      // The subscriber sees MQTT payloads, not the socket: the envelope bytes stand for both here.
      socketBytesPerRecord: arrived.bytes / arrived.records,
      peakRss,
    };
  } finally {
    await agent.stop();
    rmSync(runDir, { recursive: true, force: true });
  }
}

for (const workerOnly of ['wrap', 'profile', 'v8-flags', 'no-caps', 'old-space', 'semi-space']) {
  if (args.has('executable') && args.has(workerOnly)) throw new Error(`--${workerOnly} applies to the worker only; leave out --executable`);
}
const dir = mkdtempSync(join(tmpdir(), 'edge-bench-cpu-'));
/** `--executable`: the executables measured, this checkout's and (with --against) DIR's. */
const executables = args.has('executable')
  ? {
      own: ensureExecutable(root, dir, args.get('executable') === 'true' ? undefined : args.get('executable')).path,
      against: against ? ensureExecutable(against, dir).path : undefined,
    }
  : undefined;
const broker = await startMosquitto();
// A counting subscriber stands for the centre: without one, an MQTT 5 broker answers every batch "no matching
// subscribers" (PUBACK 0x10), which the sender rightly treats as not delivered and sends again.
const subscriber = await Subscriber.start(broker.url);
try {
  const scenarios = [
    synthetic('classic', 'classic', 0, records),
    synthetic('real-50', 'realistic', 50, records),
    synthetic('real-120', 'realistic', 120, records),
    synthetic('real-500', 'realistic', 500, Math.ceil(records / 2)),
    synthetic('real-5k', 'realistic', 5000, Math.ceil(records / 10)),
  ].filter((s) => !only || only.includes(s.name));
  scenarios.push(...sqliteScenarios(dir));
  const workerArgs = args.get('worker-args')?.split(' ').filter(Boolean) ?? [];
  for (const s of scenarios) s.worker.push(...workerArgs);
  console.log(
    `node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at start (the machine is shared: CPU seconds, not rates, are the figures to compare)`,
  );
  if (executables) console.log(`the executable: ${executables.own}${executables.against ? ` against ${executables.against}` : ''}`);
  console.log('CPU-s per 100k: after the first tenth of the records was acknowledged (start-up left out); "whole" includes start-up');
  console.log('scenario     | JSON B/rec | records | CPU-s per 100k (runs)         | whole | µs CPU per KB JSON | wire B/rec (envelope) | peak RSS MiB');
  for (const s of scenarios) {
    const runs: WorkerResult[] = [];
    const before: WorkerResult[] = [];
    for (let i = 0; i < repeat; i++) {
      if (against) {
        const b = executables
          ? await runExecutable(executables.against!, s.worker, s.records, broker.url)
          : await runWorker(s.worker, s.records, broker.url, undefined, against, []);
        if (!b.complete) throw new Error(`${s.name} (${against}): not every record was acknowledged within 600 s`);
        before.push(b);
      }
      let profile: string | undefined;
      if (profileDir && i === 0) {
        profile = join(resolve(profileDir), s.name);
        rmSync(profile, { recursive: true, force: true });
        mkdirSync(profile, { recursive: true });
      }
      const r = executables ? await runExecutable(executables.own, s.worker, s.records, broker.url) : await runWorker(s.worker, s.records, broker.url, profile);
      if (!r.complete) throw new Error(`${s.name}: not every record was acknowledged within 600 s`);
      runs.push(r);
      if (profile) {
        const file = readdirSync(profile).find((f) => f.endsWith('.cpuprofile'));
        if (file) {
          const summary = summariseProfile(join(profile, file), root, 12);
          console.log(`  profile ${s.name}: ${(summary.totalMs / 1000).toFixed(2)} s sampled`);
          for (const a of summary.byArea.slice(0, 6)) console.log(`    ${(a.share * 100).toFixed(1)}% ${a.area}`);
          for (const e of summary.top)
            console.log(`    ${e.selfMs.toFixed(0).padStart(6)} ms ${(e.share * 100).toFixed(1)}% ${e.name} ${e.where}  ← ${e.callers[0]?.name ?? ''}`);
        }
      }
    }
    if (against) {
      const pairs = before.map(
        (b, i) =>
          `${(b.steadyCpuSecondsPer100k ?? b.cpuSecondsPer100k).toFixed(3)}/${(runs[i]!.steadyCpuSecondsPer100k ?? runs[i]!.cpuSecondsPer100k).toFixed(3)}`,
      );
      console.log(
        `${s.name.padEnd(12)} | pairs before/after (${against} / this checkout), CPU-s per 100k: ${pairs.join(', ')}; load ${loadavg()[0]!.toFixed(1)}`,
      );
    }
    const per100k = runs.map((r) => r.steadyCpuSecondsPer100k ?? r.cpuSecondsPer100k).sort((a, b) => a - b);
    const median = per100k[per100k.length >> 1]!;
    const whole = runs.map((r) => r.cpuSecondsPer100k).sort((a, b) => a - b)[runs.length >> 1]!;
    const usPerKb = (median / 100_000 / (s.jsonBytes / 1024)) * 1e6;
    console.log(
      `${s.name.padEnd(12)} | ${s.jsonBytes.toFixed(0).padStart(10)} | ${String(s.records).padStart(7)} | ${median.toFixed(3)} (${per100k.map((v) => v.toFixed(3)).join(', ')})`.padEnd(
        68,
      ) +
        ` | ${whole.toFixed(2).padStart(5)} | ${usPerKb.toFixed(0).padStart(18)} | ${runs[0]!.socketBytesPerRecord.toFixed(1)} (${runs[0]!.envelopeBytesPerRecord.toFixed(1)}) | ${(Math.max(...runs.map((r) => r.peakRss)) / 2 ** 20).toFixed(1)}`,
    );
  }
} finally {
  await subscriber.close().catch(() => {});
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}

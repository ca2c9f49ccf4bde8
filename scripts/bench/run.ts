/**
 * The benchmark: durable ingest and end-to-end throughput on one core, peak RSS, disk bytes and wire bytes
 * per record, write amplification at fixed ingest rates, and (with --backlog) RSS with a backlog queued and
 * the drain rate of a backlog. Prints figures, not pass/fail; the goals are printed beside them.
 *
 *   npm run bench -- [--records 1000000] [--repeat 3] [--seconds 5] [--wa-seconds 20] [--no-wa]
 *                    [--backlog] [--backlog-records 1000000,10000000] [--rss-seconds 15]
 *                    [--profile] [--no-baseline] [--json FILE]
 *
 *   --records N        records per full-rate run (default 1,000,000)
 *   --repeat R         runs of each main scenario, reported as median (min–max) (default 3)
 *   --seconds S        time cap of the small-batch source scenario, which runs far below the others (default 5)
 *   --wa-seconds S     measured seconds of each fixed-rate write-amplification run (default 20; 4 runs)
 *   --no-wa            skip the fixed-rate write-amplification runs
 *   --backlog          also RSS with 0 / 1M / 10M records queued and the sink unreachable, and the drain
 *                      rate of the 1M backlog (≈2 minutes more; needs ≈0.5 GB in /tmp for a while)
 *   --backlog-records  the backlog sizes (default 1000000,10000000; the first one is drained)
 *   --rss-seconds S    how long the agent runs on each backlog before its memory is read (default 15)
 *   --profile          one more end-to-end worker run under --cpu-prof, summarised as top functions
 *   --no-baseline      skip the comparison runs (no heap caps; synchronous=normal)
 *   --json FILE        also write every run's raw result
 *   --executable PATH  measure this executable instead of dist/edge-agent-linux-x64 (which is otherwise built
 *                      when stale; if the working tree does not build, HEAD is built in a scratch directory)
 *   --sources          then the per-source figures at realistic settings: serial (115200 baud NMEA), sensors
 *                      (a sysfs tree), SQLite/PostgreSQL/MySQL (10k-row polls), local MQTT (1k msg/s)
 *   --pulsar           then end to end through a real Pulsar standalone (same workload as MQTT)
 *   --peers            instead of all the above, side by side with a Mosquitto bridge (scripts/bench/peers.ts,
 *                      ≈2 minutes): the agent's MQTT source → queue → MQTT sink against a Mosquitto bridge at
 *                      its defaults and made durable, on the same records; takes --records (default 100,000
 *                      there), --repeat (default 1 there), --executable, --json and its own options
 *                      (`npm run bench -- --peers --help`)
 *
 * This process, a Mosquitto of its own and its counting subscriber are pinned to core 1. Measured: the
 * shipped executable `taskset -c 0 dist/edge-agent-linux-x64 run --config FILE` (built first when missing
 * or stale), and workers `taskset -c 0 node [heap flags] scripts/bench/<worker>.ts …` that print one JSON line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMosquitto, type Mosquitto } from '../lib/mosquitto.ts';
import { freePort } from '../lib/ports.ts';
import { ensureExecutable } from './executable.ts';
import { parseConfig } from '../../agent/app.ts';
import { backlogRss, drain, fixedRate, fullRate, type BacklogRssResult, type DrainResult, type ExeContext, type ExeResult } from './executable-scenarios.ts';
import { fmtInt, fmtK } from './format.ts';
import { numberArg, parseArgs } from './proc.ts';
import { DEFAULT_HEAP_CAPS, heapCapArgs } from '../../agent/cli/heap-caps.ts';
import { summariseProfile, type ProfileSummary } from './profile.ts';
import { render, type BenchResults, type FsyncResult, type WorkerResult } from './report.ts';
import { Subscriber } from './subscriber.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The executable's default caps, for the node workers too. */
const HEAP_FLAGS = heapCapArgs(DEFAULT_HEAP_CAPS);
const MEASURED_CORE = '0';
const OTHER_CORE = '1';

const argv = process.argv.slice(2);
const args = parseArgs(argv);
/** queue.commit_interval as the config schema defaults it, so the figures follow the product's default. */
const DEFAULT_COMMIT_INTERVAL = `${parseConfig('{}', '(defaults)', '/').config.queue.commit_interval}ms`;
if (args.has('peers')) {
  // A comparison of its own (its own brokers, agent and defaults), not an addition to the main scenarios.
  const peers = join(dirname(fileURLToPath(import.meta.url)), 'peers.ts');
  const r = spawnSync(process.execPath, [peers, ...argv.filter((a) => a !== '--peers')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
if (args.has('help')) {
  process.stdout.write(
    `${readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('*/')[0]!
      .replace(/^\/\*\*?|^ \* ?/gm, '')}\n`,
  );
  process.exit(0);
}
const records = numberArg(args, 'records', 1_000_000);
const repeat = Math.max(1, numberArg(args, 'repeat', 3));
const cap = numberArg(args, 'seconds', 5);
const waSeconds = numberArg(args, 'wa-seconds', 20);
const writeAmplification = !args.has('no-wa');
const backlog = args.has('backlog');
const backlogSizes = (args.get('backlog-records') ?? '1000000,10000000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const rssSeconds = numberArg(args, 'rss-seconds', 15);
const profile = args.has('profile');
const baseline = !args.has('no-baseline');
const jsonOut = args.get('json');
// Every run keeps its queue (and keys) in a directory of its own under this one, removed at the end.
const workDir = mkdtempSync(join(tmpdir(), 'edge-bench-'));
/** Where the measured code lives: this checkout, or an export of HEAD when the checkout does not build. */
let codeRoot = ROOT;

export interface Scenario {
  id: string;
  title: string;
  worker: 'ingest' | 'e2e';
  args: string[];
  heapFlags: boolean;
  runs: number;
}

const full = ['--records', String(records), '--seconds', '120'];
// The synthetic source's defaults (500 records per emit, 16 emits awaiting their commit) keep more than
// commit_every_records (1000) waiting, so commits are triggered by count. "small-batch source" (100 × 4 =
// 400 < 1000) shows what a source below that threshold gets: every commit waits for commit_interval.
const scenarios: Scenario[] = [
  { id: 'ingest', title: 'ingest, defaults', worker: 'ingest', args: full, heapFlags: true, runs: repeat },
  { id: 'e2e', title: 'end to end (node, .ts), defaults', worker: 'e2e', args: full, heapFlags: true, runs: repeat },
  {
    id: 'ingest-small',
    title: 'ingest, small-batch source (100 × 4)',
    worker: 'ingest',
    args: ['--records', String(records), '--seconds', String(cap), '--batch', '100', '--max-pending', '4'],
    heapFlags: true,
    runs: 1,
  },
  ...(baseline
    ? ([
        { id: 'ingest-noflags', title: 'ingest, no heap caps', worker: 'ingest', args: full, heapFlags: false, runs: 1 },
        { id: 'e2e-noflags', title: 'end to end (node, .ts), no heap caps', worker: 'e2e', args: full, heapFlags: false, runs: 1 },
        // Not the product setting: what waiting for fsync costs, by taking most of it away.
        { id: 'ingest-normal', title: 'ingest, synchronous=normal', worker: 'ingest', args: [...full, '--synchronous', 'normal'], heapFlags: true, runs: 1 },
        {
          id: 'e2e-normal',
          title: 'end to end (node, .ts), synchronous=normal',
          worker: 'e2e',
          args: [...full, '--synchronous', 'normal'],
          heapFlags: true,
          runs: 1,
        },
      ] satisfies Scenario[])
    : []),
];

function taskset(args: string[]): void {
  const r = spawnSync('taskset', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

class BrokerGone extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs one worker pinned to the measured core and parses its JSON line. `brokerPid`: the run is abandoned
 * (the worker killed, BrokerGone thrown) if that process disappears meanwhile, rather than timing an agent
 * that waits for a broker that is gone.
 */
function runWorker<T = WorkerResult>(worker: string, workerArgs: string[], nodeFlags: string[], brokerPid?: number): Promise<T> {
  const script = join('scripts', 'bench', `${worker}-worker.ts`);
  const command = ['-c', MEASURED_CORE, process.execPath, ...nodeFlags, script, '--dir', workDir, ...workerArgs];
  return new Promise((resolvePromise, reject) => {
    const child = spawn('taskset', command, { cwd: codeRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let brokerGone = false;
    const watch = setInterval(() => {
      if (brokerPid !== undefined && !alive(brokerPid)) {
        brokerGone = true;
        child.kill('SIGKILL');
      }
    }, 250);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(watch);
      if (brokerGone) {
        reject(new BrokerGone(`the broker (pid ${brokerPid}) exited during the run`));
        return;
      }
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`taskset ${command.join(' ')} exited with ${code ?? signal}:\n${stderr.trim()}\n${stdout.trim()}`));
        return;
      }
      resolvePromise(JSON.parse(line) as T);
    });
  });
}

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const fs = spawnSync('df', ['-T', tmpdir()], { encoding: 'utf8' }).stdout.trim().split('\n').pop()?.split(/\s+/)[1] ?? 'unknown';
  const mosquitto = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'unknown';
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() !== '';
  const revision = `${head}${dirty ? ' + uncommitted changes' : ''}`;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return {
    revision,
    cpu,
    cores: availableParallelism(),
    kernel: release(),
    tmpdir: tmpdir(),
    filesystem: fs,
    mosquitto,
    node: process.version,
    nodePath: relative(ROOT, process.execPath) || process.execPath,
    load,
  };
}

async function main(): Promise<void> {
  const info = machine(); // before pinning: availableParallelism() counts the cores this process may use
  taskset(['-cp', OTHER_CORE, String(process.pid)]);
  process.stderr.write(`edge-agent benchmark: ${records.toLocaleString('en-US')} records, ${repeat} run(s) per main scenario\n`);
  const out0 = { executable: '' };
  let exe: ReturnType<typeof ensureExecutable>;
  try {
    exe = ensureExecutable(ROOT, workDir, args.get('executable'));
  } catch (err) {
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  }
  // A private copy: a test elsewhere that rebuilds dist/ meanwhile must not swap the executable mid-bench
  // (pkg writes the plain Node binary first and injects the application after).
  const snapshot = join(workDir, 'edge-agent-linux-x64');
  copyFileSync(exe.path, snapshot);
  chmodSync(snapshot, 0o755);
  out0.executable = `${relative(ROOT, exe.path)} (copied to ${snapshot} for the run)`;
  exe = { ...exe, path: snapshot };
  // Node workers run the same code as the executable: when that is an export of HEAD, from there.
  codeRoot = exe.root;
  if (codeRoot !== ROOT) cpSync(join(ROOT, 'scripts', 'bench'), join(codeRoot, 'scripts', 'bench'), { recursive: true });

  let broker: Mosquitto | undefined;
  let subscriber: Subscriber | undefined;
  const out: BenchResults = {
    ...out0,
    info,
    records,
    repeat,
    cap,
    scenarios,
    workers: new Map(),
    arrivals: new Map(),
    exe: new Map(),
    writeAmplification: [],
    backlogRss: [],
    drains: [],
    fsync: [],
    notes: [],
  };
  if (exe.note) out.notes.push(exe.note);
  const push = <T>(map: Map<string, T[]>, id: string, value: T) => map.set(id, [...(map.get(id) ?? []), value]);
  const fsyncProbe = async (when: string) => {
    const r = await runWorker<Omit<FsyncResult, 'when' | 'at'>>('fsync', [], []);
    out.fsync.push({ ...r, when, at: new Date().toTimeString().slice(0, 5) });
    process.stderr.write(`  fsync probe (${when}): p50 ${r.p50.toFixed(2)} ms, p90 ${r.p90.toFixed(2)} ms\n`);
  };
  try {
    await fsyncProbe('before');
    broker = await startMosquitto();
    taskset(['-cp', OTHER_CORE, String(broker.pid)]);
    subscriber = await Subscriber.start(broker.url);
    /** A broker that something else stopped is started again (same port) before the next end-to-end run. */
    const ensureBroker = async () => {
      if (alive(broker!.pid)) return;
      out.notes.push(`the bench's Mosquitto (port ${broker!.port}) was stopped from outside and started again`);
      await subscriber?.close().catch(() => {});
      await broker!.restart();
      taskset(['-cp', OTHER_CORE, String(broker!.pid)]);
      subscriber = await Subscriber.start(broker!.url);
    };
    const runE2e = async (workerArgs: string[], nodeFlags: string[]): Promise<WorkerResult> => {
      for (let attempt = 1; ; attempt++) {
        await ensureBroker();
        subscriber!.reset();
        try {
          return await runWorker('e2e', ['--url', broker!.url, ...workerArgs], nodeFlags, broker!.pid);
        } catch (err) {
          if (!(err instanceof BrokerGone) || attempt >= 3) throw err;
          out.notes.push(`an end-to-end run was repeated: ${err.message}`);
          process.stderr.write('broker gone; again … ');
        }
      }
    };
    const ctx: ExeContext = {
      executable: exe.path,
      core: MEASURED_CORE,
      workDir,
      broker: async () => {
        await ensureBroker();
        return { url: broker!.url, subscriber: subscriber! };
      },
    };
    /** One measured run; a failure is reported (first lines of its error) and the bench goes on. */
    const step = async <T>(title: string, run: () => Promise<T>, show: (r: T) => string): Promise<T | undefined> => {
      process.stderr.write(`  ${title} … `);
      try {
        const r = await run();
        process.stderr.write(`${show(r)}\n`);
        return r;
      } catch (err) {
        const why = (err as Error).message
          .split('\n')
          .filter((l) => /error|failed|exited/i.test(l))
          .slice(0, 3)
          .join(' / ');
        process.stderr.write(`FAILED: ${why}\n`);
        out.notes.push(`${title} FAILED: ${why}`);
        return undefined;
      }
    };
    const keep = <T>(map: Map<string, T[]>, id: string, value: T | undefined) => {
      if (value !== undefined) push(map, id, value);
    };
    const exeShow = (r: ExeResult) =>
      `${fmtInt(r.recordsPerSecond)} rec/s, VmHWM ${(r.peakRss / 2 ** 20).toFixed(1)} MiB, ${r.writeBytesPerRecord.toFixed(1)} B/rec written${r.complete ? '' : ' (INCOMPLETE)'}`;

    // The executable unpacks its SQLite addon on first use; a short run first keeps that out of the figures.
    await step('executable warm-up (20,000 records)', () => fullRate(ctx, { records: 20_000 }), exeShow);

    for (const s of scenarios) {
      for (let i = 0; i < s.runs; i++) {
        const flags = s.heapFlags ? HEAP_FLAGS : [];
        const r = await step(
          `${s.title} (${i + 1}/${s.runs})`,
          () => (s.worker === 'e2e' ? runE2e(s.args, flags) : runWorker('ingest', s.args, flags)),
          (r) => `${fmtInt(r.recordsPerSecond)} rec/s${r.complete ? '' : ` (stopped after ${r.seconds.toFixed(1)} s: ${fmtInt(r.records)} records)`}`,
        );
        if (r === undefined) continue;
        if (s.worker === 'e2e') {
          await subscriber!.waitFor(r.records);
          push(out.arrivals, s.id, { records: subscriber!.records, messages: subscriber!.messages, bytes: subscriber!.bytes });
        }
        push(out.workers, s.id, r);
      }
      // The shipped executable's main runs right after the node worker's, under the same disk conditions.
      if (s.id === 'e2e') {
        for (let i = 0; i < repeat; i++)
          keep(out.exe, 'exe', await step(`end to end, shipped executable (${i + 1}/${repeat})`, () => fullRate(ctx, { records }), exeShow));
      }
    }
    if (baseline) {
      keep(
        out.exe,
        'exe-nocaps',
        await step('end to end, shipped executable, no heap caps', () => fullRate(ctx, { records, heapEnv: { EDGE_AGENT_MAX_OLD_SPACE_MB: '0' } }), exeShow),
      );
    }

    const wa = new Map<string, ExeResult[]>();
    if (writeAmplification) {
      // The default first (its full-rate figure is the main executable run above), then a shorter and a longer one.
      for (const commitInterval of [DEFAULT_COMMIT_INTERVAL, '100ms', '1s']) {
        for (const rate of [1_000, 10_000]) {
          keep(
            wa,
            'wa',
            await step(
              `write amplification, ${fmtK(rate)} rec/s, commit_interval ${commitInterval} (${waSeconds} s)`,
              () => fixedRate(ctx, { rate, seconds: waSeconds, commitInterval }),
              (r) => `${r.writeBytesPerRecord.toFixed(1)} B/rec`,
            ),
          );
        }
        // Full rate with the default interval is the main executable run above.
        if (commitInterval !== DEFAULT_COMMIT_INTERVAL)
          keep(
            wa,
            'wa',
            await step(`write amplification, full rate, commit_interval ${commitInterval}`, () => fullRate(ctx, { records, commitInterval }), exeShow),
          );
      }
    }

    out.writeAmplification = wa.get('wa') ?? [];
    const lists = new Map<string, unknown[]>();
    if (backlog) {
      const unreachableUrl = `mqtt://127.0.0.1:${await freePort()}`;
      const dir = mkdtempSync(join(workDir, 'backlog-'));
      mkdirSync(join(dir, 'data'), { recursive: true });
      keep(
        lists,
        'rss',
        await step(
          'RSS, nothing queued, 1k rec/s, sink unreachable',
          () => backlogRss(ctx, { dir, rate: 1_000, seconds: rssSeconds, unreachableUrl }),
          (r: BacklogRssResult) => `VmHWM ${(r.peakRss / 2 ** 20).toFixed(1)} MiB`,
        ),
      );
      rmSync(dir, { recursive: true, force: true });
      for (const [i, size] of backlogSizes.entries()) {
        const dir = mkdtempSync(join(workDir, 'backlog-'));
        mkdirSync(join(dir, 'data'), { recursive: true });
        const built = await step(
          `building a backlog of ${fmtInt(size)} records (full-rate ingest)`,
          () => runWorker('ingest', ['--records', String(size), '--seconds', '600', '--queue', join(dir, 'data', 'queue.db')], HEAP_FLAGS),
          (r) => `${fmtInt(r.recordsPerSecond)} rec/s, ${((r.dbBytes as number) / 2 ** 20).toFixed(0)} MiB file`,
        );
        if (built === undefined) continue;
        push(out.workers, `backlog-${size}`, built);
        keep(
          lists,
          'rss',
          await step(
            `RSS, ${fmtInt(size)} queued, 1k rec/s, sink unreachable`,
            () => backlogRss(ctx, { dir, rate: 1_000, seconds: rssSeconds, unreachableUrl }),
            (r: BacklogRssResult) => `VmHWM ${(r.peakRss / 2 ** 20).toFixed(1)} MiB`,
          ),
        );
        if (i === 0)
          keep(
            lists,
            'drain',
            await step(
              `drain of the ${fmtInt(size)}-record backlog, 1k rec/s continuing`,
              () => drain(ctx, { dir, rate: 1_000 }),
              (r: DrainResult) => `${fmtInt(r.recordsPerSecond)} rec/s`,
            ),
          );
        rmSync(dir, { recursive: true, force: true });
      }
    }

    out.backlogRss = (lists.get('rss') ?? []) as BacklogRssResult[];
    out.drains = (lists.get('drain') ?? []) as DrainResult[];
    if (profile) {
      const dir = mkdtempSync(join(workDir, 'prof-'));
      const r = await step(
        'end to end (node, .ts) with --cpu-prof',
        () => runE2e(full, [...HEAP_FLAGS, '--cpu-prof', `--cpu-prof-dir=${dir}`]),
        (r) => `${fmtInt(r.recordsPerSecond)} rec/s`,
      );
      keep(out.workers, 'profile', r);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file) out.profile = summariseProfile(join(dir, file), codeRoot, 14) satisfies ProfileSummary;
    }
    await fsyncProbe('after');
  } finally {
    await subscriber?.close().catch(() => {});
    if (broker && alive(broker.pid)) await broker.stop();
    if (broker) rmSync(broker.dir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  }

  process.stdout.write(`${render(out, HEAP_FLAGS, MEASURED_CORE, OTHER_CORE)}\n`);
  if (jsonOut) {
    const plain = { ...out, workers: Object.fromEntries(out.workers), arrivals: Object.fromEntries(out.arrivals), exe: Object.fromEntries(out.exe), argv };
    writeFileSync(jsonOut, JSON.stringify(plain, null, 2));
    process.stderr.write(`raw results written to ${jsonOut}\n`);
  }
}

await main();

// Per-driver figures, each its own script (they need their own peers: a pty, the databases, a Pulsar broker).
const here = dirname(fileURLToPath(import.meta.url));
const extra: [string, string[]][] = [];
if (args.has('sources')) extra.push(['serial-bench.ts', []], ['sensors-bench.ts', []], ['db-bench.ts', []], ['mqtt-source-bench.ts', []]);
if (args.has('pulsar')) extra.push(['pulsar-bench.ts', ['--records', String(numberArg(args, 'records', 1_000_000))]]);
for (const [script, scriptArgs] of extra) {
  process.stdout.write(`\n== ${script} ${scriptArgs.join(' ')}\n`);
  const r = spawnSync(process.execPath, [join(here, script), ...scriptArgs], { stdio: 'inherit' });
  if (r.status !== 0) process.stdout.write(`(${script} exited with ${r.status ?? r.signal})\n`);
}

/**
 * The shipped executable (dist/edge-agent-linux-x64, `npm run build`) as the benchmark runs it: built when
 * missing or older than its sources, started pinned to one core with a YAML config of the bench's making,
 * and watched from outside through /proc (memory, CPU, disk I/O), since that is how an operator sees it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCpuSeconds, readIo, readMemory, type IoCounters, type Memory } from './proc.ts';

/** What the executable is built from (as test/build/binary.test.ts decides staleness). */
const SOURCES = ['agent', 'drivers', 'scripts/build', 'package.json', 'package-lock.json'];

function newestMtime(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** `--version` exits 0: the executable starts and loads every registered driver. */
function starts(path: string): { ok: boolean; why: string } {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return {
    ok: r.status === 0,
    why:
      (r.stderr || r.error?.message || '')
        .trim()
        .split('\n')
        .filter((l) => /Error/.test(l))
        .pop() ?? `exit ${r.status}`,
  };
}

function build(repo: string): { ok: boolean; why: string } {
  const r = spawnSync(process.execPath, [join(repo, 'scripts', 'build', 'build.ts')], { cwd: repo, encoding: 'utf8' });
  return {
    ok: r.status === 0,
    why:
      `${r.stderr}\n${r.stdout}`
        .trim()
        .split('\n')
        .filter((l) => /Error/.test(l))
        .pop() ?? `exit ${r.status}`,
  };
}

/**
 * The x64 executable to measure: `override` if given; else dist/edge-agent-linux-x64, built first when it is
 * missing or stale (≈7 s). When the working tree does not build or its executable does not start (other
 * people's half-finished work), the committed revision is exported (`git archive HEAD`) into `scratch` and
 * built there instead, and a note says so: the figures are then those of HEAD, not of the working tree.
 */
export function ensureExecutable(root: string, scratch: string, override?: string): { path: string; root: string; note?: string } {
  if (override !== undefined) {
    const check = starts(override);
    if (!check.ok) throw new Error(`${override} --version failed: ${check.why}`);
    return { path: override, root, note: `executable given with --executable: ${override}` };
  }
  const path = join(root, 'dist', 'edge-agent-linux-x64');
  const sources = Math.max(...SOURCES.map((s) => newestMtime(join(root, s))));
  if (existsSync(path) && statSync(path).mtimeMs > sources && starts(path).ok) return { path, root };
  process.stderr.write(`  building the ${existsSync(path) ? 'stale' : 'missing'} executable (scripts/build/build.ts) … `);
  const t = performance.now();
  const built = build(root);
  const check = built.ok ? starts(path) : built;
  if (check.ok) {
    process.stderr.write(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    return { path, root };
  }
  process.stderr.write(`failed (${check.why}); building the committed revision instead … `);
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  const dir = join(scratch, `head-${head}`);
  mkdirSync(dir, { recursive: true });
  const exported = spawnSync('sh', ['-c', `git archive HEAD | tar -x -C '${dir}'`], { cwd: root, encoding: 'utf8' });
  if (exported.status !== 0) throw new Error(`git archive HEAD failed: ${exported.stderr}`);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const fallback = join(dir, 'dist', 'edge-agent-linux-x64');
  const again = build(dir);
  const checkAgain = again.ok ? starts(fallback) : again;
  if (!checkAgain.ok) throw new Error(`neither the working tree nor HEAD (${head}) builds a working executable: ${checkAgain.why}`);
  process.stderr.write(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  return {
    path: fallback,
    root: dir,
    note: `the working tree's executable does not build or start (${check.why}); measured the committed revision ${head} instead (git archive HEAD), the executable and the node workers alike`,
  };
}

export interface AgentConfig {
  device: string;
  /** MQTT broker URL; an unreachable one keeps everything queued. */
  url: string;
  /** Synthetic source: records per second (0: as fast as the queue takes them) and total (0: no end). */
  rate: number;
  count: number;
  batch?: number;
  maxPending?: number;
  commitInterval?: string;
  commitEveryRecords?: number;
}

/** A complete `edge-agent run` config; data (queue.db) under `dir`/data, keys generated under `dir`/keys. */
export function writeAgentConfig(dir: string, c: AgentConfig): string {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const yaml = [
    `device: { id: ${c.device} }`,
    'data_dir: data',
    'log: { level: warn }',
    'keys: { device_private: keys/device.key, centre_public: keys/centre.pub, generate_if_missing: true }',
    'queue:',
    '  path: queue.db',
    ...(c.commitInterval ? [`  commit_interval: ${c.commitInterval}`] : []),
    ...(c.commitEveryRecords ? [`  commit_every_records: ${c.commitEveryRecords}`] : []),
    'sources:',
    '  - type: synthetic',
    '    name: synthetic',
    `    rate: ${c.rate}`,
    `    count: ${c.count}`,
    ...(c.batch ? [`    batch: ${c.batch}`] : []),
    ...(c.maxPending ? [`    max_pending: ${c.maxPending}`] : []),
    'sink:',
    '  type: mqtt',
    `  url: ${c.url}`,
    '',
  ].join('\n');
  const path = join(dir, 'agent.yaml');
  writeFileSync(path, yaml);
  return path;
}

/**
 * One `taskset -c <core> edge-agent-linux-x64 run --config FILE`. taskset and the executable's heap-cap
 * re-exec both replace the process image, so the child's pid is the agent's for its whole life; VmHWM starts
 * again at each execve, so it is the capped agent's own peak. Anonymous and file-backed RSS are sampled
 * every 50 ms for their peaks (the kernel keeps a peak only for the total).
 */
export class AgentProcess {
  readonly pid: number;
  readonly spawnedAt: number;
  peakAnon = 0;
  peakFile = 0;
  private stderr = '';
  private readonly child: ChildProcess;
  private readonly sampler: NodeJS.Timeout;
  private readonly exit: Promise<number | string>;

  /** `leading`: arguments before `run`, such as node's script path when `executable` is node running the source tree. */
  constructor(executable: string, config: string, core: string, env: Record<string, string> = {}, leading: string[] = []) {
    this.spawnedAt = performance.now();
    this.child = spawn('taskset', ['-c', core, executable, ...leading, 'run', '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    if (this.child.pid === undefined) throw new Error(`could not start ${executable}`);
    this.pid = this.child.pid;
    this.child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.exit = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    this.sampler = setInterval(() => this.sample(), 50);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Whether the latest 4,000 characters of its stderr contain `text` (a log message it has written). */
  logged(text: string): boolean {
    return this.stderr.includes(text);
  }

  /** Why it is not running, for error messages. */
  get failure(): string {
    return `${this.child.exitCode ?? this.child.signalCode}: ${this.stderr.trim()}`;
  }

  private sample(): void {
    const m = readMemory(this.pid);
    this.peakAnon = Math.max(this.peakAnon, m.anon);
    this.peakFile = Math.max(this.peakFile, m.file);
  }

  memory(): Memory {
    this.sample();
    return readMemory(this.pid);
  }

  io(): IoCounters {
    return readIo(this.pid);
  }

  cpuSeconds(): number {
    return readCpuSeconds(this.pid);
  }

  /** SIGTERM (the agent commits what waits and marks the queue cleanly closed), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exit;
    clearTimeout(timer);
  }
}

/**
 * Start-up of the shipped executable, pair by pair against a bare `node -e 0`:
 *
 *   node scripts/bench/startup.ts [--executable dist/edge-agent-linux-x64] [--runs 15]
 *
 * Each pair runs `node -e 0` to its exit, then `EXECUTABLE run --config C` until it logs "agent running"
 * (then SIGKILL), C being a gateway's plain config: one synthetic source, the MQTT sink to the local
 * Mosquitto (127.0.0.1:1883; the sink need not connect for "agent running"), no embedded broker, no
 * receiver. A first unmeasured run writes the keys and unpacks the addon, as a gateway's first start does.
 * Prints the medians and the median of the per-pair ratios, and the CPU seconds the executable used up to
 * "agent running" (user + system from /proc, read before the kill). Also `--version` pair by pair.
 *
 * `--against OTHER`: then OTHER (another build of the executable) and EXE to "agent running" in the same
 * rounds, in alternating order, each round with its own `node -e 0`: both ratios and EXE/OTHER per round.
 *
 * `--without-extra-ca`: both commands run without NODE_EXTRA_CA_CERTS. Some machines set it to the whole
 * system bundle; Node then reads and decodes every certificate in it (on a thread of its own) once crypto is
 * loaded, which the agent's start does and `node -e 0` never does: ≈ 50M instructions, 8 % of a start, that
 * a gateway without the variable does not pay. The default keeps the environment as it is.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { median } from './format.ts';
import { numberArg, parseArgs, readCpuSeconds } from './proc.ts';
import { plainGatewayYaml } from '../lib/gateway-configs.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = process.execPath;

const CONFIG = plainGatewayYaml('gw-startup', 'mqtt://127.0.0.1:1883');

interface Timed {
  ms: number;
  cpuSeconds?: number;
}

/** Spawn to exit (no `until`), or spawn to the first output line matching `until`, then SIGKILL. */
function time(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, until?: RegExp): Promise<Timed> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    let result: Timed | undefined;
    const onData = (d: Buffer): void => {
      if (until === undefined || result !== undefined) return;
      seen += d.toString();
      if (until.test(seen)) {
        result = { ms: performance.now() - t0, cpuSeconds: readCpuSeconds(child.pid!) };
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      if (until === undefined) return code === 0 ? done({ ms: performance.now() - t0 }) : fail(new Error(`${cmd} exited ${code ?? signal}`));
      if (result) done(result);
      else fail(new Error(`${cmd} ${args.join(' ')} exited (${code ?? signal}) before ${until}: ${seen.slice(-2000)}`));
    });
  });
}

async function pairs(label: string, runs: number, measure: () => Promise<Timed>, cwd: string, nodeEnv: NodeJS.ProcessEnv): Promise<void> {
  const a: number[] = [];
  const b: number[] = [];
  const ratio: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const base = await time(NODE, ['-e', '0'], cwd, nodeEnv);
    const x = await measure();
    a.push(x.ms);
    b.push(base.ms);
    ratio.push(x.ms / base.ms);
    if (x.cpuSeconds !== undefined) cpu.push(x.cpuSeconds);
  }
  const f = (xs: number[]): string => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  process.stdout.write(
    `${label}: ${f(a)}; node -e 0: ${f(b)}; ratio per pair, median ${median(ratio).toFixed(2)}× (${Math.min(...ratio).toFixed(2)}–${Math.max(...ratio).toFixed(2)})` +
      `${cpu.length ? `; CPU to "agent running" ${(median(cpu) * 1000).toFixed(0)} ms` : ''}\n`,
  );
}

/** EXE against OTHER in the same rounds (order alternating), each round with its own `node -e 0`. */
async function against(runs: number, exe: () => Promise<Timed>, other: () => Promise<Timed>, cwd: string, nodeEnv: NodeJS.ProcessEnv): Promise<void> {
  const a: number[] = [];
  const b: number[] = [];
  const ra: number[] = [];
  const rb: number[] = [];
  const ab: number[] = [];
  for (let i = 0; i < runs; i++) {
    const base = await time(NODE, ['-e', '0'], cwd, nodeEnv);
    let x: Timed;
    let y: Timed;
    if (i % 2) {
      x = await exe();
      y = await other();
    } else {
      y = await other();
      x = await exe();
    }
    a.push(x.ms);
    b.push(y.ms);
    ra.push(x.ms / base.ms);
    rb.push(y.ms / base.ms);
    ab.push(x.ms / y.ms);
  }
  process.stdout.write(
    `against, ${runs} rounds: EXE ${median(a).toFixed(0)} ms (${median(ra).toFixed(2)}× node -e 0), OTHER ${median(b).toFixed(0)} ms (${median(rb).toFixed(2)}×); ` +
      `EXE/OTHER per round, median ${median(ab).toFixed(3)} (${Math.min(...ab).toFixed(2)}–${Math.max(...ab).toFixed(2)})\n`,
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const exe = resolve(args.get('executable') ?? join(ROOT, 'dist', 'edge-agent-linux-x64'));
  const runs = numberArg(args, 'runs', 15);
  const dir = mkdtempSync(join(tmpdir(), 'edge-agent-startup-'));
  try {
    writeFileSync(join(dir, 'run.yaml'), CONFIG);
    const base = { ...process.env };
    if (args.has('without-extra-ca')) delete base.NODE_EXTRA_CA_CERTS;
    else if (base.NODE_EXTRA_CA_CERTS) process.stdout.write(`NODE_EXTRA_CA_CERTS is set (${base.NODE_EXTRA_CA_CERTS}): see --without-extra-ca\n`);
    const env = { ...base, EDGE_AGENT_NATIVE_CACHE: join(dir, 'native'), PKG_NATIVE_CACHE_PATH: join(dir, 'native') };
    const running = /agent running/;
    await time(exe, ['run', '--config', 'run.yaml'], dir, env, running); // keys, addon, queue file
    process.stdout.write(`${exe}, ${runs} pairs, load average ${(await import('node:os')).loadavg()[0]!.toFixed(2)}\n`);
    await pairs('--version', runs, () => time(exe, ['--version'], dir, env), dir, base);
    await pairs('run to "agent running"', runs, () => time(exe, ['run', '--config', 'run.yaml'], dir, env, running), dir, base);
    const otherExe = args.get('against');
    if (otherExe !== undefined) {
      // Its own data directory: each executable unpacks its own addon and keeps its own queue file.
      const otherDir = mkdtempSync(join(tmpdir(), 'edge-agent-startup-other-'));
      try {
        writeFileSync(join(otherDir, 'run.yaml'), CONFIG);
        const otherEnv = { ...base, EDGE_AGENT_NATIVE_CACHE: join(otherDir, 'native'), PKG_NATIVE_CACHE_PATH: join(otherDir, 'native') };
        const runOther = () => time(resolve(otherExe), ['run', '--config', 'run.yaml'], otherDir, otherEnv, running);
        await runOther(); // keys, addon, queue file
        await against(runs, () => time(exe, ['run', '--config', 'run.yaml'], dir, env, running), runOther, dir, base);
      } finally {
        rmSync(otherDir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`startup: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

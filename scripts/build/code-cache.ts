/**
 * The code cache of a real start (docs/packaging.md, "Start: the code cache of a real start"): runs a
 * just-built executable that carries no cache (agent/util/packed-main.ts) as a gateway starts it, `run` with
 * a plain config, until it logs "agent running", then sends SIGINT, at which it writes the V8 code cache of
 * the application: it then holds every function the start called.
 *
 * V8 accepts a cache only from the same V8 with the same flags, so it is made by the target's own
 * executable: natively for the build machine's architecture, under qemu-user (with an aarch64 sysroot) for
 * arm64 on an x64 machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Arch } from './node-binaries.ts';
import { plainGatewayYaml } from '../lib/gateway-configs.ts';
import { runUntilAgentRunning } from '../lib/run-until-running.ts';

/**
 * A gateway's plain config (as scripts/bench/startup.ts measures): a synthetic source, the MQTT sink. The
 * sink's broker is a port nothing listens on, so the start is the same whether or not the build machine
 * runs a broker (the sink need not connect for "agent running").
 */
const CONFIG = plainGatewayYaml('gw-code-cache', 'mqtt://127.0.0.1:9');

/** Generous: arm64 under qemu-user starts in seconds, not milliseconds. */
const TIMEOUT_MS = 120_000;

/** qemu-user and the sysroot it loads the executable's glibc and libstdc++ from (Debian's cross packages). */
const QEMU: Partial<Record<Arch, { commands: string[]; sysroot: string; loader: string }>> = {
  arm64: { commands: ['qemu-aarch64', 'qemu-aarch64-static'], sysroot: '/usr/aarch64-linux-gnu', loader: 'lib/ld-linux-aarch64.so.1' },
};

const found = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/**
 * How to run an executable of `arch` here: [command, ...leading args], or the reason it cannot be run
 * (then the executable ships without a cache and starts as before).
 */
export function runnerFor(arch: Arch): string[] | string {
  if (arch === process.arch) return [];
  const q = QEMU[arch];
  if (q === undefined) return `no way to run linux-${arch} executables on a ${process.arch} machine`;
  const qemu = q.commands.find(found);
  if (qemu === undefined) return `${q.commands.join(' or ')} not installed (Debian: apt-get install qemu-user)`;
  const sysroot = process.env.QEMU_LD_PREFIX ?? (existsSync(join(q.sysroot, q.loader)) ? q.sysroot : undefined);
  if (sysroot === undefined) return `no ${arch} sysroot for qemu (Debian: apt-get install libc6-arm64-cross libstdc++6-arm64-cross, or set QEMU_LD_PREFIX)`;
  return [qemu, '-L', sysroot];
}

/** Runs `exe` (via `runner`) in `dir` with `env` until it logs "agent running", then stops it with SIGINT. */
async function startAndStop(exe: string, runner: string[], dir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await runUntilAgentRunning([...runner, exe, 'run', '--config', 'run.yaml'], { cwd: dir, env, timeoutMs: TIMEOUT_MS });
  if (r.timedOut) throw new Error(`${exe} did not log "agent running" within ${TIMEOUT_MS / 1000} s: ${r.output.slice(-2000)}`);
  if (!r.stopped || r.code !== 0) {
    throw new Error(`${exe} run exited (${r.code ?? r.signal}) ${r.stopped ? 'after SIGINT' : 'before "agent running"'}: ${r.output.slice(-2000)}`);
  }
}

/**
 * Returns the code cache of a gateway's usual start, a restart: a first start writes the keys, the queue file
 * and the addon (what only a gateway's very first start does), the second, measured one writes the cache.
 */
export async function makeCodeCache(exe: string, runner: string[]): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-agent-code-cache-'));
  try {
    writeFileSync(join(dir, 'run.yaml'), CONFIG);
    const out = join(dir, 'main.cache');
    const env: NodeJS.ProcessEnv = { ...process.env, EDGE_AGENT_NATIVE_CACHE: join(dir, 'native') };
    // Options that change V8's flags would make a cache V8 rejects at every start.
    delete env.NODE_OPTIONS;
    delete env.EDGE_AGENT_CODE_CACHE_OUT;
    await startAndStop(exe, runner, dir, env);
    await startAndStop(exe, runner, dir, { ...env, EDGE_AGENT_CODE_CACHE_OUT: out });
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

#!/usr/bin/env node
/**
 * Entry point of the single executable (scripts/build/build.ts bundles this file). `node agent/cli/main.ts`
 * stays the entry for `npm start` and development.
 *
 * Heap caps. V8 sizes its heap when the isolate is created: `v8.setFlagsFromString('--max-old-space-size=…')`
 * afterwards changes nothing, so the caps have to be Node options at start. The executable carries the
 * default caps (agent/cli/heap-caps.ts: 48 MB old space, 1 MB semi-space) as the execArgv of its blob, so
 * every start has them with no restart. `receive` wants the old space its limits need (defaultOldSpaceMb),
 * so it restarts once unless that is what was baked. Only when `run` or `receive` wants other caps (EDGE_AGENT_MAX_OLD_SPACE_MB,
 * EDGE_AGENT_MAX_SEMI_SPACE_MB, 0 or `off` for the old space lifting the caps; or a --max-old-space-size in
 * NODE_OPTIONS, which the baked execArgv would otherwise override) does it replace its own process image
 * once, before loading anything else (`process.execve`: same pid, same stdio, no parent left behind), with
 * the caps as `--node-options=…`. Under plain `node` the caps are passed as node options the same way.
 * EDGE_AGENT_HEAP_REPORT=1 prints the resulting heap_size_limit on stderr.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { isSea } from 'node:sea';
import { getHeapStatistics } from 'node:v8';
import { VERSION } from '../version.ts';
import { holdHangups } from './early-hangup.ts';
import { DEFAULT_HEAP_CAPS, type HeapCaps, heapCapArgs, heapCapsOf, sameHeapCaps, setsHeapCaps } from './heap-caps.ts';

const MARKER = 'EDGE_AGENT_HEAP_REEXEC';
const LONG_RUNNING = new Set(['run', 'receive']);

function sizeFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (raw.toLowerCase() === 'off') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`edge-agent: ignoring ${name}=${JSON.stringify(raw)} (expected a whole number of MB), using ${fallback}\n`);
    return fallback;
  }
  return n;
}

/**
 * Old space when the environment does not say: `receive` fits the largest batch its config's limits allow
 * (agent/receiver/limits.ts; 176 MB for the defaults), every other command DEFAULT_HEAP_CAPS.
 */
async function defaultOldSpaceMb(command: string | undefined): Promise<number> {
  if (command !== 'receive') return DEFAULT_HEAP_CAPS.oldSpaceMb;
  // Loaded for `receive` only: it reads the config with yaml and zod's units, which `--version` (and every
  // other command before its own modules load) need not evaluate.
  const { receiveHeapMbFromArgs } = await import('../receiver/heap.ts');
  return receiveHeapMbFromArgs(process.argv.slice(3));
}

const KERNEL_ARCH: Record<string, string> = { x86_64: 'x64', aarch64: 'arm64' };

/**
 * Whether execve of our own executable will work. It has to be checked beforehand: a failed
 * process.execve aborts the process (SIGABRT), it does not throw. Under qemu-user without binfmt_misc
 * (an arm64 executable on an x86_64 kernel) the kernel refuses the image with ENOEXEC; qemu emulates
 * uname but not /proc/sys/kernel/arch, which tells the real kernel's architecture.
 */
function whyNoReexec(): string | undefined {
  if (typeof process.execve !== 'function') return 'process.execve is not available';
  try {
    accessSync(process.execPath, constants.X_OK);
  } catch {
    return `${process.execPath} is not executable`;
  }
  try {
    const kernel = readFileSync('/proc/sys/kernel/arch', 'utf8').trim();
    const arch = KERNEL_ARCH[kernel];
    if (arch !== undefined && arch !== process.arch) return `emulated (${process.arch} executable on a ${kernel} kernel)`;
  } catch {
    // Older kernels have no /proc/sys/kernel/arch: assume native.
  }
  return undefined;
}

/** The caps this start should run with. */
async function wantedHeapCaps(nodeOptions: string): Promise<HeapCaps> {
  const fromEnv = process.env.EDGE_AGENT_MAX_OLD_SPACE_MB !== undefined || process.env.EDGE_AGENT_MAX_SEMI_SPACE_MB !== undefined;
  if (!fromEnv && setsHeapCaps(nodeOptions)) {
    // The operator's caps; a semi-space it leaves out stays at the default (V8's own is 16 MB or more).
    const caps = heapCapsOf(nodeOptions.split(/\s+/));
    return /--max[-_]semi[-_]space[-_]size=/.test(nodeOptions) ? caps : { ...caps, semiSpaceMb: DEFAULT_HEAP_CAPS.semiSpaceMb };
  }
  const oldSpaceMb = sizeFromEnv('EDGE_AGENT_MAX_OLD_SPACE_MB', await defaultOldSpaceMb(process.argv[2]));
  if (oldSpaceMb === 0) return { oldSpaceMb: 0, semiSpaceMb: 0 };
  return { oldSpaceMb, semiSpaceMb: sizeFromEnv('EDGE_AGENT_MAX_SEMI_SPACE_MB', DEFAULT_HEAP_CAPS.semiSpaceMb) };
}

/** Returns only when the wanted caps are in force or cannot be applied; otherwise the process image is replaced. */
async function applyHeapCaps(): Promise<void> {
  if (process.env[MARKER] !== undefined) {
    delete process.env[MARKER]; // second start: the caps are in force, and child processes start afresh
    return;
  }
  // Only the long-running commands: the short ones (--version, keygen, check-config) keep the defaults.
  if (!LONG_RUNNING.has(process.argv[2] ?? '')) return;
  const nodeOptions = process.env.NODE_OPTIONS ?? '';
  const wanted = await wantedHeapCaps(nodeOptions);
  // Node applies NODE_OPTIONS first, then its command line (for the executable: the baked execArgv).
  if (sameHeapCaps(wanted, heapCapsOf([...nodeOptions.split(/\s+/), ...process.execArgv]))) return;
  const why = whyNoReexec();
  if (why !== undefined) {
    process.stderr.write(`edge-agent: running with the default heap caps: ${why}\n`);
    return;
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env[MARKER] = '1';
  // A single executable takes every argument as the application's except a leading --node-options (its
  // blob allows it: execArgvExtension "cli"); plain node needs its own options and the script path again.
  const args = isSea()
    ? [`--node-options=${heapCapArgs(wanted).join(' ')}`, ...process.argv.slice(2)]
    : [...process.execArgv, ...heapCapArgs(wanted), ...process.argv.slice(1)];
  process.execve!(process.execPath, [process.execPath, ...args], env); // presence checked in whyNoReexec
}

/** The caps settled (or this process image replaced), then the command. */
async function start(): Promise<void> {
  await applyHeapCaps();
  if (process.env.EDGE_AGENT_HEAP_REPORT === '1') {
    // For checking the caps (test/build/binary.test.ts, docs/packaging.md): one line on stderr.
    process.stderr.write(`edge-agent: heap_size_limit=${getHeapStatistics().heap_size_limit} pid=${process.pid}\n`);
  }
  const argv = process.argv.slice(2);
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    // What main.ts would print, without loading the command line, the config schemas and every driver
    // (≈0.1 s of the executable's start): health checks and fleet tools call --version often.
    process.stdout.write(`${VERSION}\n`);
  } else {
    // Loaded only after the caps are settled: nothing heavy is allocated before a re-exec.
    (await import('./main.ts')).runCli(argv);
  }
}

// First thing (and again after a re-exec, which resets signal handlers): see agent/cli/early-hangup.ts.
if (LONG_RUNNING.has(process.argv[2] ?? '')) holdHangups();
void start();

#!/usr/bin/env node
/**
 * Entry point of the single executable (scripts/build/build.ts bundles this file). `node agent/cli/main.ts`
 * stays the entry for `npm start` and development.
 *
 * Heap caps. V8 sizes its heap when the isolate is created: `v8.setFlagsFromString('--max-old-space-size=…')`
 * afterwards changes nothing (measured: heap_size_limit stays at ≈4 GB and the heap grows past the cap), and
 * options baked into the executable by pkg are ignored in SEA mode. So the executable caps itself by
 * replacing its own process image once, before loading anything else, with the same executable, the same
 * arguments and NODE_OPTIONS carrying the caps (`process.execve`: same pid, same stdio, no parent left
 * behind). Only `run` and `receive` are capped. Defaults: 32 MB old space (`receive`: what its limits need,
 * see defaultOldSpaceMb), 1 MB semi-space;
 * EDGE_AGENT_MAX_OLD_SPACE_MB and EDGE_AGENT_MAX_SEMI_SPACE_MB override them, 0 (or `off`) for the old space
 * disables the caps, and a --max-old-space-size already in NODE_OPTIONS wins. EDGE_AGENT_HEAP_REPORT=1 prints the resulting
 * heap_size_limit on stderr.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { isSea } from 'node:sea';
import { getHeapStatistics } from 'node:v8';
import { receiveHeapMbFromArgs } from '../receiver/heap.ts';

const MARKER = 'EDGE_AGENT_HEAP_REEXEC';
const SAVED_NODE_OPTIONS = 'EDGE_AGENT_SAVED_NODE_OPTIONS';
const MB = 1024 * 1024;
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
 * (agent/receiver/limits.ts; 176 MB for the defaults), every other command 32 MB.
 */
function defaultOldSpaceMb(command: string | undefined): number {
  return command === 'receive' ? receiveHeapMbFromArgs(process.argv.slice(3)) : 32;
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

/** Returns only when the caps are in force, disabled, or cannot be applied; otherwise the process image is replaced. */
function applyHeapCaps(): void {
  if (process.env[MARKER] !== undefined) {
    // Second start: put the environment back as the operator set it, so child processes do not inherit the caps.
    const saved = process.env[SAVED_NODE_OPTIONS];
    if (saved) process.env.NODE_OPTIONS = saved;
    else delete process.env.NODE_OPTIONS;
    delete process.env[MARKER];
    delete process.env[SAVED_NODE_OPTIONS];
    return;
  }
  // Only the long-running commands: a re-exec costs one more executable start (≈0.1 s) and the short ones
  // (--version, keygen, check-config) finish long before their heap matters.
  if (!LONG_RUNNING.has(process.argv[2] ?? '')) return;
  const oldSpaceMb = sizeFromEnv('EDGE_AGENT_MAX_OLD_SPACE_MB', defaultOldSpaceMb(process.argv[2]));
  const semiSpaceMb = sizeFromEnv('EDGE_AGENT_MAX_SEMI_SPACE_MB', 1);
  if (oldSpaceMb === 0) return;
  const nodeOptions = process.env.NODE_OPTIONS ?? '';
  if (/--max[-_]old[-_]space[-_]size/.test(nodeOptions)) return;
  // Already in force (heap_size_limit is the old space plus the young generation, a few MB).
  if (getHeapStatistics().heap_size_limit <= (oldSpaceMb + 3 * Math.max(semiSpaceMb, 1) + 16) * MB) return;
  const why = whyNoReexec();
  if (why !== undefined) {
    process.stderr.write(`edge-agent: running without heap caps: ${why}\n`);
    return;
  }
  const caps = `--max-old-space-size=${oldSpaceMb}${semiSpaceMb > 0 ? ` --max-semi-space-size=${semiSpaceMb}` : ''}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env[MARKER] = '1';
  if (nodeOptions) env[SAVED_NODE_OPTIONS] = nodeOptions;
  env.NODE_OPTIONS = nodeOptions ? `${nodeOptions} ${caps}` : caps;
  // A single executable takes every argument as the application's (Node puts the executable back in
  // argv[1]); plain node needs its own options and the script path again.
  const args = isSea() ? process.argv.slice(2) : [...process.execArgv, ...process.argv.slice(1)];
  process.execve!(process.execPath, [process.execPath, ...args], env); // presence checked in whyNoReexec
}

applyHeapCaps();
if (process.env.EDGE_AGENT_HEAP_REPORT === '1') {
  // For checking the caps (test/build/binary.test.ts, docs/packaging.md): one line on stderr.
  process.stderr.write(`edge-agent: heap_size_limit=${getHeapStatistics().heap_size_limit} pid=${process.pid}\n`);
}
// Loaded only after the caps are settled: nothing heavy is allocated before a re-exec.
import('./main.ts').then((m) => m.runCli(process.argv.slice(2)));

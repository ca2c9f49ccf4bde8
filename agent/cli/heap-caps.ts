/**
 * V8 heap caps of the long-running commands, as flags. Shared by the executable's build (which bakes the
 * defaults into it as execArgv) and agent/cli/bin.ts (which restarts once when other caps are wanted).
 * Imports nothing heavy (node:v8, through running-flags.ts): bin.ts runs it before anything else is loaded.
 */
export interface HeapCaps {
  /** MB; 0 leaves V8's own limit (uncapped). */
  readonly oldSpaceMb: number;
  /** MB; 0 leaves V8's own size. */
  readonly semiSpaceMb: number;
}

/**
 * 48 MB old space, 1 MB semi-space. The bundle's source alone stays on the heap (3.6 MB), and the agent's
 * live heap at rest is ≈23 MB: under 32 MB the collector ran so often that a record cost ≈50 % more CPU
 * (1M records end to end: 222k–228k records per CPU second at 32 MB, 311k at 40, 334k–344k at 48 and 64),
 * for 10 MiB less peak RSS (docs/benchmarks.md, "Executable start-up, size, and heap at rest").
 */
export const DEFAULT_HEAP_CAPS: HeapCaps = { oldSpaceMb: 48, semiSpaceMb: 1 };

/** Set once the agent runs, not baked in with the caps: agent/util/running-flags.ts says why. */
export { MEMORY_FLAGS } from '../util/running-flags.ts';

/** The caps as flags: what the executable bakes in and a restart passes on (MEMORY_FLAGS come later). */
export function heapCapArgs(caps: HeapCaps): string[] {
  return [`--max-old-space-size=${caps.oldSpaceMb}`, `--max-semi-space-size=${caps.semiSpaceMb}`];
}

const FLAG = /^--max[-_](old|semi)[-_]space[-_]size=(\d+)$/;

/**
 * The caps that Node options in start order give: a later flag overrides an earlier one, and a flag left
 * out is 0 (V8's default). Node applies NODE_OPTIONS first, then its command-line options (for the
 * executable: the baked execArgv, then --node-options).
 */
export function heapCapsOf(options: readonly string[]): HeapCaps {
  let oldSpaceMb = 0;
  let semiSpaceMb = 0;
  for (const option of options) {
    const m = FLAG.exec(option);
    if (!m) continue;
    if (m[1] === 'old') oldSpaceMb = Number(m[2]);
    else semiSpaceMb = Number(m[2]);
  }
  return { oldSpaceMb, semiSpaceMb };
}

/** Whether NODE_OPTIONS-style text sets a heap cap of its own. */
export function setsHeapCaps(nodeOptions: string): boolean {
  return nodeOptions.split(/\s+/).some((o) => FLAG.test(o));
}

export const sameHeapCaps = (a: HeapCaps, b: HeapCaps): boolean => a.oldSpaceMb === b.oldSpaceMb && a.semiSpaceMb === b.semiSpaceMb;

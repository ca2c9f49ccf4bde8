/**
 * The V8 flags a long-running command sets once it runs rather than at start: `run` after "agent running",
 * `receive` after "receiver running" (the heap caps, which V8 reads only when it creates the heap, are start
 * flags: agent/cli/heap-caps.ts).
 *
 * V8's flags are part of what a code cache must match: the executable's cache (agent/util/packed-main.ts) is
 * made from a start that reached "agent running", so the build's instrumented start puts the start's flags
 * back before it writes the cache (`startFlagsAgain`), or every later start would reject it.
 */
import { setFlagsFromString } from 'node:v8';

/**
 * `--optimize-for-size`: V8 sizes the heap for memory rather than speed: after a full collection the old
 * generation may grow by 2 MB before the next (8 MB otherwise), and it is compacted and given back sooner.
 * Measured on the executable (docs/benchmarks.md, "Memory goals, third pass"): anonymous memory at 1k rec/s
 * ≈27 MiB (peak 29) instead of ≈34, at full speed ≈35–39 (peak 42) instead of ≈48–56, for ≈10 % more CPU
 * per record.
 *
 * Not a start flag: during the start it cost 35–55 ms of CPU. Mostly not its effect on the heap: it is one
 * of the V8 flags that enter the hash a code cache must match, so with it Node's own code cache of its
 * built-in modules (made with V8's defaults) is rejected and every built-in a start loads is compiled from
 * source (a bare `node -e 0` compiles 25 times as much source with it; the heap caps are flags outside the
 * hash: docs/benchmarks.md, "Start: libraries' eager loads deferred…"). V8 reads it while it runs (at each
 * collection, for the heap's growth), so set after the start it shapes the running heap as before: anonymous
 * memory at 1k rec/s stayed as it was (docs/benchmarks.md, "Start: the memory flag after the start, built-ins
 * on first use"). Built-ins first loaded after it is set are compiled from source, so it is set once what a
 * start loads is loaded (`run`: after the endpoint's HTTP server).
 */
export const MEMORY_FLAGS: readonly string[] = ['--optimize-for-size'];

let applied = false;

/** Sets MEMORY_FLAGS, once per process: `run` after "agent running", `receive` after "receiver running". */
export function applyRunningFlags(): void {
  if (applied) return;
  applied = true;
  for (const flag of MEMORY_FLAGS) setFlagsFromString(flag);
}

/** Puts back the flags a start runs with (`--no-X` for each `--X` of MEMORY_FLAGS), for the build's code cache. */
export function startFlagsAgain(): void {
  for (const flag of MEMORY_FLAGS) setFlagsFromString(flag.replace(/^--/, '--no-'));
}

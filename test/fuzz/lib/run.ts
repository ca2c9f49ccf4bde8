/**
 * Runs one fuzz target: the saved corpus first, then generated inputs, under fast-check (deterministic for a
 * seed, shrinking a failure to a small input). Besides the target's own properties it watches two budgets,
 * measured around each input and judged after the run, so a slow or loaded machine cannot make it flaky:
 * the slowest input's time (a generous bound that only a hang or a blow-up exceeds) and the memory one input
 * made grow (heap plus array buffers, coarse).
 */
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type CorpusEntry, readCorpus, saveCorpusEntry } from './corpus.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Known, reported problems in code this harness must not change; see docs/fuzzing.md. */
export class Findings {
  readonly seen = new Map<string, number>();
  readonly strict: boolean;

  constructor(strict: boolean) {
    this.strict = strict;
  }

  /** Counts a known open finding; under `strict` it fails the input like any other property. */
  note(name: string, detail: string): void {
    if (this.strict) throw new Error(`known finding ${name}: ${detail}`);
    this.seen.set(name, (this.seen.get(name) ?? 0) + 1);
  }
}

export interface Limits {
  /** Slowest single input allowed, ms: far above normal, so only a hang or a blow-up exceeds it. */
  msPerInput: number;
  /** Growth of heap plus array buffers across one input, bytes. */
  bytesPerInput: number;
}

export interface FuzzTarget<I> {
  name: string;
  limits: Limits;
  /** The saved corpus as inputs (replayed first in every run). */
  fromCorpus(entries: readonly CorpusEntry[]): I[];
  /** Generated inputs, mostly mutations of the corpus. */
  arbitrary(entries: readonly CorpusEntry[]): fc.Arbitrary<I>;
  /** Feeds one input to the code under test; throws when a property does not hold. */
  check(input: I, findings: Findings): void;
  /** The input as a corpus file. */
  toFile(input: I): { ext: string; bytes: Uint8Array };
  /** A short description for messages. */
  describe(input: I): string;
}

export interface RunOptions {
  seed: number;
  numRuns: number;
  /** Stop generating after this long (the long run); the bounded runs use numRuns only. */
  timeLimitMs?: number;
  strict?: boolean;
}

export interface RunResult<I> {
  seed: number;
  runs: number;
  failure: { message: string; input: I } | undefined;
  slowest: { ms: number; input: I | undefined };
  largest: { bytes: number; input: I | undefined };
  findings: Map<string, number>;
}

function memory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export function runTarget<I>(target: FuzzTarget<I>, opts: RunOptions): RunResult<I> {
  const entries = readCorpus(target.name);
  const findings = new Findings(opts.strict ?? false);
  const slowest: RunResult<I>['slowest'] = { ms: 0, input: undefined };
  const largest: RunResult<I>['largest'] = { bytes: 0, input: undefined };
  gc();
  const property = fc.property(target.arbitrary(entries), (input) => {
    const before = memory();
    const t0 = performance.now();
    try {
      target.check(input, findings);
    } finally {
      const ms = performance.now() - t0;
      const grown = memory() - before;
      if (ms > slowest.ms) Object.assign(slowest, { ms, input });
      if (grown > largest.bytes) Object.assign(largest, { bytes: grown, input });
    }
  });
  const details = fc.check(property, {
    seed: opts.seed,
    numRuns: opts.numRuns,
    examples: target.fromCorpus(entries).map((i) => [i] as [I]),
    ...(opts.timeLimitMs === undefined ? {} : { interruptAfterTimeLimit: opts.timeLimitMs }),
  });
  let failure: RunResult<I>['failure'];
  if (details.failed && details.counterexample) {
    const input = details.counterexample[0];
    const err = details.errorInstance;
    const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    failure = {
      input,
      message:
        `fuzz target ${target.name} failed with seed ${opts.seed} (path ${details.counterexamplePath}) after ${details.numRuns} inputs\n` +
        `  input: ${target.describe(input)}\n  ${why.split('\n').join('\n  ')}\n` +
        `  reproduce: FUZZ_SEED=${opts.seed} node --test test/fuzz/${target.name}.test.ts`,
    };
  } else if (details.failed) {
    failure = { input: undefined as I, message: `fuzz target ${target.name} failed with seed ${opts.seed}: ${String(details.errorInstance)}` };
  }
  if (!failure && slowest.ms > target.limits.msPerInput && slowest.input !== undefined) {
    failure = {
      input: slowest.input,
      message: `fuzz target ${target.name} (seed ${opts.seed}): one input took ${slowest.ms.toFixed(0)} ms (budget ${target.limits.msPerInput} ms): ${target.describe(slowest.input)}`,
    };
  }
  if (!failure && largest.bytes > target.limits.bytesPerInput && largest.input !== undefined) {
    failure = {
      input: largest.input,
      message: `fuzz target ${target.name} (seed ${opts.seed}): one input grew memory by ${(largest.bytes / 2 ** 20).toFixed(1)} MiB (budget ${(target.limits.bytesPerInput / 2 ** 20).toFixed(1)} MiB): ${target.describe(largest.input)}`,
    };
  }
  return { seed: opts.seed, runs: details.numRuns, failure, slowest, largest, findings: findings.seen };
}

/** Saves a failing input as `found-<seed>-<hash>.<ext>`; rename it by what it found once understood. */
export function saveFailure<I>(target: FuzzTarget<I>, seed: number, input: I): string {
  const { ext, bytes } = target.toFile(input);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  return saveCorpusEntry(target.name, `found-seed${seed}-${hash}.${ext}`, bytes);
}

/** The seed of a bounded run: fixed so a failure in CI reproduces, overridable to explore (FUZZ_SEED). */
export function boundedSeed(fixed: number): number {
  const env = process.env.FUZZ_SEED;
  return env === undefined || env === '' ? fixed : Number.parseInt(env, 10);
}

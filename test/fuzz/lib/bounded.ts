/**
 * The bounded run each test/fuzz/<target>.test.ts makes as part of `npm test`: a fixed seed (FUZZ_SEED
 * overrides it), a few seconds of inputs, a failure reported with its seed and input. Known open findings are
 * printed, not failed (docs/fuzzing.md); FUZZ_STRICT=1 fails them too.
 */
import assert from 'node:assert/strict';
import { boundedSeed, type FuzzTarget, runTarget } from './run.ts';

export function boundedRun<I>(target: FuzzTarget<I>, fixedSeed: number, numRuns: number): void {
  const seed = boundedSeed(fixedSeed);
  const result = runTarget(target, { seed, numRuns, strict: process.env.FUZZ_STRICT === '1' });
  const known = [...result.findings].map(([name, n]) => `${name} ×${n}`).join(', ');
  console.log(
    `fuzz ${target.name}: seed ${seed}, ${result.runs} inputs, slowest ${result.slowest.ms.toFixed(0)} ms, ` +
      `largest growth ${(result.largest.bytes / 2 ** 20).toFixed(1)} MiB${known ? `, known open findings: ${known}` : ''}`,
  );
  if (result.failure) assert.fail(result.failure.message);
  assert.ok(result.runs >= numRuns, `only ${result.runs} of ${numRuns} inputs ran`);
}

/**
 * The long fuzz run: `npm run fuzz -- --target envelope --seconds 600 [--strict]`. Runs one target (or all,
 * with `--target all`) on fresh random seeds until the time is up; every failing input is written into
 * test/fuzz/corpus/<target>/ as found-seed<seed>-<hash>.<ext>, and the seed is printed so the run repeats
 * with FUZZ_SEED. Exits 1 when anything failed. See docs/fuzzing.md.
 */
import { parseArgs } from 'node:util';
import { configTarget } from '../test/fuzz/targets/config.ts';
import { envelopeTarget } from '../test/fuzz/targets/envelope.ts';
import { payloadTarget } from '../test/fuzz/targets/payload.ts';
import { serialTarget } from '../test/fuzz/targets/serial.ts';
import { type FuzzTarget, runTarget, saveFailure } from '../test/fuzz/lib/run.ts';

const TARGETS: Record<string, FuzzTarget<never>> = {
  envelope: envelopeTarget as FuzzTarget<never>,
  config: configTarget as FuzzTarget<never>,
  serial: serialTarget as FuzzTarget<never>,
  payload: payloadTarget as FuzzTarget<never>,
};

const { values } = parseArgs({
  options: { target: { type: 'string', default: 'all' }, seconds: { type: 'string', default: '60' }, strict: { type: 'boolean', default: false } },
});
const names = values.target === 'all' ? Object.keys(TARGETS) : [values.target];
for (const name of names) {
  if (!TARGETS[name]) {
    console.error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}, all`);
    process.exit(2);
  }
}
const seconds = Number(values.seconds);
if (!(seconds > 0)) {
  console.error('--seconds must be a positive number');
  process.exit(2);
}

let failed = 0;
for (const name of names) {
  const target = TARGETS[name]!;
  const until = Date.now() + (seconds * 1000) / names.length;
  let inputs = 0;
  while (Date.now() < until) {
    const seed = Math.floor(Math.random() * 0x7fffffff);
    const result = runTarget(target, { seed, numRuns: 100_000, timeLimitMs: until - Date.now(), strict: values.strict });
    inputs += result.runs;
    const known = [...result.findings].map(([k, n]) => `${k} ×${n}`).join(', ');
    console.log(`${name}: seed ${seed}, ${result.runs} inputs, slowest ${result.slowest.ms.toFixed(0)} ms${known ? `, known: ${known}` : ''}`);
    if (result.failure) {
      failed++;
      console.log(result.failure.message);
      if (result.failure.input !== undefined) console.log(`  saved as ${saveFailure(target, seed, result.failure.input)}`);
    }
  }
  console.log(`${name}: ${inputs} inputs in all`);
}
process.exit(failed > 0 ? 1 : 0);

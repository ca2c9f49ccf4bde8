/** Bounded fuzz run of the mqtt source's payload decoding (docs/fuzzing.md); the corpus replays first. */
import { test } from 'node:test';
import { boundedRun } from './lib/bounded.ts';
import { payloadTarget } from './targets/payload.ts';

test('fuzz: any mqtt payload decodes to record fields (or bad_json in json mode), never throws', () => {
  boundedRun(payloadTarget, 0x9a1, 2000);
});

/** Bounded fuzz run of the envelope receive path (docs/fuzzing.md); the corpus replays first. */
import { test } from 'node:test';
import { boundedRun } from './lib/bounded.ts';
import { envelopeTarget } from './targets/envelope.ts';

test('fuzz: hostile envelopes are rejected with documented codes, within time and memory bounds', () => {
  boundedRun(envelopeTarget, 0x10e, 2500);
});

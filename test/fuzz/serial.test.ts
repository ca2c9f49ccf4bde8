/** Bounded fuzz run of the serial framers, decoders and NMEA parser (docs/fuzzing.md); the corpus replays first. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readCorpus } from './lib/corpus.ts';
import { Findings } from './lib/run.ts';
import { boundedRun } from './lib/bounded.ts';
import { serialTarget } from './targets/serial.ts';

test('fuzz: serial framing is bounded, never throws and does not depend on chunking', () => {
  boundedRun(serialTarget, 0x5e1, 3000);
});

test('a frame of exactly max_frame_bytes is kept however its delimiter or line end is split (found by the fuzzer)', () => {
  const cases = serialTarget.fromCorpus(readCorpus('serial').filter((e) => e.name.startsWith('found-') && e.name.includes('max-length')));
  assert.equal(cases.length, 2);
  for (const c of cases) serialTarget.check(c, new Findings(true));
});

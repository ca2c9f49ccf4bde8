/** Bounded fuzz run of the config loader (docs/fuzzing.md); the samples and the corpus replay first. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../agent/app.ts';
import { isAgentError } from '../../agent/errors.ts';
import { CORPUS_ROOT } from './lib/corpus.ts';
import { boundedRun } from './lib/bounded.ts';
import { configTarget } from './targets/config.ts';

test('fuzz: any YAML text gives a config or CONFIG_INVALID with located issues, within time and memory bounds', () => {
  boundedRun(configTarget, 0xc0f, 250);
});

test('an alias expansion bomb is CONFIG_INVALID, not a bare ReferenceError (found by the fuzzer)', () => {
  const text = readFileSync(join(CORPUS_ROOT, 'config', 'found-alias-expansion-threw-reference-error.yaml'), 'utf8');
  assert.throws(
    () => parseConfig(text, 'bomb.yaml', '/tmp'),
    (err) => isAgentError(err, 'CONFIG_INVALID') && /bomb\.yaml:\d+:\d+ \(yaml\): alias \*a\d expands the document beyond/.test(err.message),
  );
});

/**
 * The config loader (agent/app.ts parseConfig) on YAML text: the drivers' sample configs mutated line- and
 * character-wise with YAML's special tokens, and random text. Whatever the text, the loader returns a
 * validated config or throws CONFIG_INVALID listing its problems with a path and a message.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { parseConfig } from '../../../agent/app.ts';
import type { ConfigIssue } from '../../../agent/config/load.ts';
import { isAgentError } from '../../../agent/errors.ts';
import type { CorpusEntry } from '../lib/corpus.ts';
import { mutatedText } from '../lib/mutate.ts';
import type { FuzzTarget } from '../lib/run.ts';

const DRIVERS = resolve(import.meta.dirname, '../../../drivers');

/** The drivers' sample configs, read where they live so the seeds follow the samples. */
function samples(): string[] {
  return readdirSync(DRIVERS, { recursive: true, encoding: 'utf8' })
    .filter((p) => p.endsWith('sample.yaml'))
    .sort()
    .map((p) => readFileSync(join(DRIVERS, p), 'utf8'));
}

function check(text: string): void {
  try {
    const loaded = parseConfig(text, 'fuzz.yaml', '/tmp/fuzz');
    assert.ok(typeof loaded.config === 'object' && loaded.config !== null, 'a config that is not an object');
    assert.ok(Array.isArray(loaded.config.sources), 'a config without a sources list');
  } catch (err) {
    if (!isAgentError(err, 'CONFIG_INVALID')) throw new Error(`not CONFIG_INVALID: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    const issues = (err.details as { issues?: ConfigIssue[] } | undefined)?.issues;
    assert.ok(Array.isArray(issues) && issues.length > 0, 'CONFIG_INVALID without issues');
    for (const i of issues) {
      assert.equal(typeof i.path, 'string');
      assert.ok(typeof i.message === 'string' && i.message.length > 0, `issue at ${i.path} without a message`);
      assert.ok(i.line === undefined || (Number.isInteger(i.line) && i.line >= 1), `issue at ${i.path}: line ${i.line}`);
    }
  }
}

/** Nested flow collections and aliases: depth and expansion, the two ways YAML text can outgrow its size. */
const structured: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 3_000 }).map((n) => `sources: ${'['.repeat(n)}${']'.repeat(n)}\n`),
  fc.integer({ min: 1, max: 12 }).map((levels) => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= levels; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    return `${lines.join('\n')}\n`;
  }),
  fc.string({ maxLength: 200, unit: 'binary' }),
);

export const configTarget: FuzzTarget<string> = {
  name: 'config',
  limits: { msPerInput: 5000, bytesPerInput: 64 * 2 ** 20 },
  fromCorpus: (entries: readonly CorpusEntry[]) => [...samples(), ...entries.map((e) => e.bytes.toString('utf8'))],
  arbitrary: (entries) => {
    const seeds = [...samples(), ...entries.map((e) => e.bytes.toString('utf8'))];
    return fc.oneof({ weight: 6, arbitrary: mutatedText(seeds) }, { weight: 1, arbitrary: structured });
  },
  check,
  toFile: (text) => ({ ext: 'yaml', bytes: Buffer.from(text, 'utf8') }),
  describe: (text) => JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…` : text),
};

/**
 * The house rules of docs/architecture.md, checked on every run: the core knows drivers only through the
 * composition root, drivers know the core only through the SDK, layers import downwards, no import cycles, and
 * no file in the core grows past about 400 lines without saying why.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findCycle, importsOf, ROOT, tsFiles } from './imports.ts';

/** The rooms of agent/, lowest first: a room may import its own and lower rooms only. */
const LAYERS: readonly (readonly string[])[] = [
  ['domain', 'errors', 'version'],
  ['util', 'log'],
  ['telemetry'],
  ['contracts'],
  ['envelope', 'keys', 'trust'],
  ['config'],
  ['queue', 'broker', 'hosting', 'checks', 'governor'],
  ['receiver'],
  ['runtime'],
  ['remote', 'observe', 'update'],
  ['sdk', 'app'],
  ['cli'],
];
const rankOf = (file: string): number => {
  const room = file.split('/')[1]!.replace(/\.ts$/, '');
  const rank = LAYERS.findIndex((rooms) => rooms.includes(room));
  assert.notEqual(rank, -1, `${file}: agent/${room} is in no layer of this test (and of docs/architecture.md); add it where it belongs`);
  return rank;
};

const core = tsFiles('agent');
const driverFiles = tsFiles('drivers');

test('only the composition root (agent/app.ts) imports drivers', () => {
  const offenders = core.filter((f) => f !== 'agent/app.ts' && importsOf(f).some((t) => t.startsWith('drivers/')));
  assert.deepEqual(offenders, []);
});

test('no core module imports the SDK (it is the drivers\u2019 surface, not a crossroads)', () => {
  const offenders = core.filter((f) => !f.startsWith('agent/sdk/') && importsOf(f).some((t) => t.startsWith('agent/sdk/')));
  assert.deepEqual(offenders, []);
});

test('drivers import from the core only through the SDK', () => {
  const offenders = driverFiles.flatMap((f) =>
    importsOf(f)
      .filter((t) => t.startsWith('agent/') && !t.startsWith('agent/sdk/'))
      .map((t) => `${f} -> ${t}`),
  );
  assert.deepEqual(offenders, []);
});

test('core layers import downwards only', () => {
  const upward: string[] = [];
  for (const f of core) {
    for (const t of importsOf(f)) if (t.startsWith('agent/') && rankOf(t) > rankOf(f)) upward.push(`${f} -> ${t}`);
  }
  assert.deepEqual(upward, []);
});

test('no import cycle in agent/ or drivers/', () => {
  assert.equal(findCycle(core)?.join(' -> '), undefined);
  assert.equal(findCycle(driverFiles)?.join(' -> '), undefined);
});

test('no core file above 400 lines without a reason at its top', () => {
  const long = core.filter((f) => {
    const text = readFileSync(join(ROOT, f), 'utf8');
    return text.split('\n').length > 400 && !/Why this file is long:/.test(text.split('\n').slice(0, 20).join('\n'));
  });
  assert.deepEqual(long, []);
});

test('zod is imported by agent/util/zod.ts only (its configuration must precede every schema made)', () => {
  const direct = [...core, ...driverFiles].filter(
    (f) => f !== 'agent/util/zod.ts' && /^\s*(?:import|export)\s[^;]*?from\s+['"]zod(?:\/[^'"]*)?['"]/m.test(readFileSync(join(ROOT, f), 'utf8')),
  );
  assert.deepEqual(direct, []);
});

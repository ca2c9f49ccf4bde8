/**
 * libsodium is the reference the agent's crypto is checked against, not part of the agent: nothing the
 * executable carries (agent/, drivers/) imports it, and it is a development dependency only, so the bundle
 * leaves it out (agent/keys/x25519.ts says what its WebAssembly cost).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tsFiles } from './imports.ts';

const DEV_ONLY = ['libsodium-wrappers'];

test('no file of agent/ or drivers/ imports a development-only package (libsodium, the reference)', () => {
  const offenders: string[] = [];
  for (const file of [...tsFiles('agent'), ...tsFiles('drivers')]) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const name of DEV_ONLY) if (new RegExp(`['"]${name}['"]`).test(text)) offenders.push(`${file} imports ${name}`);
  }
  assert.deepEqual(offenders, []);
});

test('libsodium is a development dependency only', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  for (const name of DEV_ONLY) {
    assert.equal(pkg.dependencies?.[name], undefined, `${name} is in dependencies`);
    assert.ok(pkg.devDependencies?.[name], `${name} is not in devDependencies`);
  }
});

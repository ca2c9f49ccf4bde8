import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const declared = [...readFileSync('agent/errors.ts', 'utf8').matchAll(/^\s*\|\s*'([A-Z][A-Z0-9_]+)'/gm)].map((m) => m[1]!);
const documented = new Set([...readFileSync('docs/errors.md', 'utf8').matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));

test('docs/errors.md lists every error code agent/errors.ts declares, and none it does not', () => {
  assert.ok(declared.length > 20, `read ${declared.length} codes from agent/errors.ts`);
  assert.deepEqual(
    declared.filter((c) => !documented.has(c)),
    [],
    'declared but not in docs/errors.md',
  );
  assert.deepEqual(
    [...documented].filter((c) => !declared.includes(c)),
    [],
    'in docs/errors.md but not declared',
  );
});

// The type checker keeps `new AgentError('X', …)` to declared codes; this catches codes that reach it
// another way (a variable, a helper's parameter, a subclass's super call) and were never declared.
test('every code thrown in agent/ and drivers/ is declared and documented', () => {
  const thrown = new Map<string, string>();
  const patterns = [
    /new AgentError\(\s*'([A-Z][A-Z0-9_]+)'/g,
    /super\(\s*'([A-Z][A-Z0-9_]+)'/g,
    /\bcode: '([A-Z][A-Z0-9_]+)'/g,
    /\bcode = [^;\n]*?'([A-Z][A-Z0-9_]+)'(?:[^;\n]*?'([A-Z][A-Z0-9_]+)')?/g,
  ];
  for (const file of [...sources('agent'), ...sources('drivers')]) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of patterns) for (const m of text.matchAll(pattern)) for (const code of m.slice(1)) if (code) thrown.set(code, file);
  }
  assert.ok(thrown.size > 20, `found ${thrown.size} thrown codes`);
  const missing = [...thrown].filter(([code]) => !documented.has(code)).map(([code, file]) => `${code} (${file})`);
  assert.deepEqual(missing, [], 'thrown but not in docs/errors.md');
});

/**
 * Every command and subcommand the program defines, found by walking it (so a new one is covered without
 * editing this list): `--help` prints its usage on stdout and exits 0. In process through `main`, the same
 * path `node agent/cli/main.ts` takes; test/cli/usage.test.ts runs the top-level ones as child processes.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { main } from '../../agent/cli/main.ts';
import { buildProgram } from '../../agent/cli/program.ts';

function paths(command: Command, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const sub of command.commands) {
    if (sub.name() === 'help') continue;
    const path = [...prefix, sub.name()];
    out.push(path, ...paths(sub, path));
  }
  return out;
}

async function captured(argv: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await main(argv), stdout };
  } finally {
    process.stdout.write = write;
  }
}

it('every command and subcommand answers --help with its usage and exit 0', async () => {
  const all = paths(buildProgram(() => {}));
  // The groups and their members this test was written against must be among what it walks.
  for (const expected of ['run', 'receive', 'check-config', 'keygen', 'dead-letter list', 'fleet push', 'fleet root init', 'fleet operator certify']) {
    assert.ok(
      all.some((p) => p.join(' ') === expected),
      `"${expected}" not found among ${all.map((p) => p.join(' ')).join(', ')}`,
    );
  }
  for (const path of all) {
    const r = await captured([...path, '--help']);
    assert.equal(r.code, 0, `edge-agent ${path.join(' ')} --help exited ${r.code}`);
    assert.match(r.stdout, new RegExp(`^Usage: edge-agent ${path.join(' ')}`), `edge-agent ${path.join(' ')} --help`);
  }
});

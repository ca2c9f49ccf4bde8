import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * `npm run bench -- --peers` on a few hundred records: every variant runs (agent, bridge, durable bridge), the
 * table has every row, and every record published arrives at the centre (counted there, not estimated). The
 * figures themselves are the benchmark's (docs/benchmarks.md), never asserted here.
 */
describe('bench --peers', () => {
  it('prints every row for the agent and both bridges, with nothing lost or repeated', () => {
    const r = spawnSync(process.execPath, ['scripts/bench/run.ts', '--peers', '--records', '400', '--durable-records', '100'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
    });
    assert.equal(r.status, 0, `exit ${r.status ?? r.signal}:\n${r.stderr}\n${r.stdout}`);
    const out = r.stdout;
    const row = (name: string) => {
      const line = out.split('\n').find((l) => l.startsWith(`| ${name}`));
      assert.ok(line, `no row "${name}" in:\n${out}`);
      return line
        .split('|')
        .slice(2, -1)
        .map((c) => c.trim());
    };
    assert.deepEqual(row('per variant').slice(0, 3), ['agent', 'bridge', 'bridge+durable']);
    for (const name of [
      'delivered rec/s',
      'CPU-s per 100k records, gateway side',
      'CPU-s per 100k records, the agent’s / the bridging broker’s own',
      'CPU-s per 100k records, the gateway’s broker beside the agent',
      'disk bytes written per record',
      'wire bytes per record',
      'peak RSS, gateway side',
      'peak RSS, the agent’s / the bridging broker’s own',
    ]) {
      assert.equal(row(name).length, 5, `${name}: three variants and two ratios`);
    }
    assert.deepEqual(row('published').slice(0, 3), ['400', '400', '100']);
    assert.deepEqual(row('delivered at the centre').slice(0, 3), ['400', '400', '100']);
    assert.deepEqual(row('lost').slice(0, 3), ['0', '0', '0']);
    assert.deepEqual(row('repeated').slice(0, 3), ['0', '0', '0']);
    assert.match(out, /goal, the agent's own CPU per record ≤ the bridge's: .*\(bridge\).*\(bridge\+durable\)/);
    assert.match(out, /load average at start \d/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { governorSchema } from '../../agent/config/governor-schema.ts';
import { Budget } from '../../agent/governor/budget.ts';

const CHILD = 'test/governor/budget-child.ts';
const DAY = 86_400_000;
/** Kill -9 rounds; EDGE_TEST_GOVERNOR_KILLS scales them (default 3). */
const KILLS = Number(process.env.EDGE_TEST_GOVERNOR_KILLS ?? 3);

interface Line {
  cycleKey: string;
  dayKey: string;
  cycle: { wire: number; general: number };
  day: { wire: number; general: number };
  t: number;
}

function show(stateFile: string, offset: number): Line {
  const r = spawnSync(process.execPath, [CHILD, 'show', stateFile, String(offset)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as Line;
}

/** Runs the counting child until it has counted at least `lines` times, then kills it with SIGKILL; returns its last line. */
async function countAndKill(stateFile: string, offset: number, lines: number): Promise<Line> {
  const child = spawn(process.execPath, [CHILD, 'count', stateFile, String(offset)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  let seen = 0;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      seen = text.split('\n').length - 1;
      if (seen >= lines) resolve();
    });
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  // Everything it printed was counted before it was printed: the last complete line is a lower bound.
  const complete = text.slice(0, text.lastIndexOf('\n')).split('\n');
  return JSON.parse(complete.at(-1)!) as Line;
}

describe('budget counters survive kill -9 and clock jumps', () => {
  it('after each kill the counters resume from the file: never below what was counted, at most a step or two above', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-budget-'));
    const stateFile = join(dir, 'budget.json');
    // The wall clock: 20 February 2026, 10:00 UTC (cycle from the 17th, Berlin).
    const base = Date.parse('2026-02-20T10:00:00Z') - Date.now();
    let last: Line | undefined;
    for (let round = 0; round < KILLS; round++) {
      const before = await countAndKill(stateFile, base, 200 + Math.floor(Math.random() * 2000));
      if (last) assert.ok(before.cycle.wire >= last.cycle.wire, 'counting went on from the resumed total');
      const persisted = JSON.parse(readFileSync(stateFile, 'utf8')) as Line;
      const after = show(stateFile, base);
      assert.equal(after.cycleKey, '2026-02-17');
      assert.equal(after.dayKey, '2026-02-20');
      assert.ok(after.cycle.wire >= before.cycle.wire, `kill -9 forgot bytes: ${after.cycle.wire} < ${before.cycle.wire}`);
      assert.ok(after.cycle.wire - before.cycle.wire <= 5 * 64 * 1024, `resumed too far ahead: ${after.cycle.wire - before.cycle.wire} B`);
      assert.equal(after.cycle.wire, persisted.cycle.wire, 'the counters after restart are those in the file');
      assert.equal(after.day.wire, persisted.day.wire);
      last = after;
    }
  });

  it('a restart with the clock 1 day back, 1 day ahead, or at 1970 neither reopens nor skips a period; counters equal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-budget-'));
    const stateFile = join(dir, 'budget.json');
    const base = Date.parse('2026-03-16T20:00:00Z') - Date.now(); // the last day of the cycle that started 17 February
    await countAndKill(stateFile, base, 500);
    const before = show(stateFile, base);
    assert.equal(before.cycleKey, '2026-02-17');
    for (const [what, offset] of [
      ['-1 day', base - DAY],
      ['+1 day', base + DAY],
      ['1970', -Date.now()],
    ] as const) {
      const after = show(stateFile, offset);
      assert.deepEqual(
        { cycleKey: after.cycleKey, dayKey: after.dayKey, cycle: after.cycle.wire, day: after.day.wire },
        { cycleKey: before.cycleKey, dayKey: before.dayKey, cycle: before.cycle.wire, day: before.day.wire },
        `clock ${what}`,
      );
      assert.ok(after.t >= before.t, `governed time went back (${what})`);
    }
  });

  it('while running: a forward jump advances only by real elapsed time, a backward jump never reopens a spent day', () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-budget-'));
    const config = governorSchema.parse({ budget: { daily: '1MiB', timezone: 'UTC' } })!.budget!;
    const clock = { wall: Date.parse('2026-05-10T23:00:00Z'), up: 1_000_000 };
    const source = { wallMs: () => clock.wall, uptimeMs: () => clock.up, bootId: () => 'boot-a' };
    const budget = new Budget(config, join(dir, 'b.json'), source);
    budget.addWire(1024 * 1024);
    assert.match(budget.holds('normal') ?? '', /daily budget spent/);
    clock.wall += 2 * DAY; // the clock jumps two days ahead; one second really passes
    clock.up += 1_000;
    budget.tick();
    assert.equal(budget.snapshot().dayKey, '2026-05-10', 'a forward jump skipped the rest of the day');
    assert.match(budget.holds('normal') ?? '', /daily budget spent/);
    clock.wall -= 5 * DAY; // and back, before the day started
    clock.up += 1_000;
    budget.tick();
    assert.equal(budget.snapshot().dayKey, '2026-05-10', 'a backward jump reopened another day');
    assert.match(budget.holds('normal') ?? '', /daily budget spent/);
    clock.up += 3_600_000; // a real hour passes: the day ends at midnight UTC
    clock.wall += 3_600_000;
    budget.tick();
    assert.equal(budget.snapshot().dayKey, '2026-05-11');
    assert.equal(budget.total('day'), 0);
    assert.equal(budget.holds('normal'), undefined);
  });
});

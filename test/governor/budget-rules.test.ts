import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { governorSchema } from '../../agent/config/governor-schema.ts';
import { isAgentError } from '../../agent/errors.ts';
import { Budget } from '../../agent/governor/budget.ts';
import { Governor } from '../../agent/governor/governor.ts';
import { silentLogger } from '../../agent/log.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { FixtureTree } from './fixture-tree.ts';

const KiB = 1024;

function budgetOf(config: Record<string, unknown>, at = '2026-06-10T10:00:00Z') {
  const clock = { wall: Date.parse(at), up: 5_000_000 };
  const source = { wallMs: () => clock.wall, uptimeMs: () => clock.up, bootId: () => 'b' };
  const dir = mkdtempSync(join(tmpdir(), 'governor-rules-'));
  const parsed = governorSchema.parse({ budget: { timezone: 'UTC', ...config } })!.budget!;
  return { budget: new Budget(parsed, join(dir, 'b.json'), source), clock, dir, parsed, source };
}

describe('budget rules by class', () => {
  it('critical is exempt up to its sub-cap, always counted; then it is held like the rest', () => {
    const { budget } = budgetOf({ monthly: 100 * KiB, critical_cap: 10 * KiB });
    budget.addWire(100 * KiB); // the cycle is spent
    assert.match(budget.holds('normal') ?? '', /cycle budget spent/);
    assert.equal(budget.holds('critical', 4 * KiB), undefined, 'alarms still go');
    budget.charge('critical', 9 * KiB);
    assert.equal(budget.holds('critical', 1 * KiB), undefined);
    assert.match(budget.holds('critical', 2 * KiB) ?? '', /cycle budget spent/, 'beyond its sub-cap');
  });

  it('normal leaves the control reserve and the unspent critical sub-cap; control may use them', () => {
    // The cycle's last day (it starts on the 11th): today's allowance is the whole pool, pacing aside.
    const { budget } = budgetOf({ monthly: 100 * KiB, critical_cap: 10 * KiB, control_reserve: 20 * KiB, cycle_start_day: 11 });
    budget.addWire(69 * KiB);
    budget.charge('normal', 69 * KiB);
    assert.equal(budget.holds('normal', 1 * KiB - 1), undefined);
    assert.match(budget.holds('normal', 2 * KiB) ?? '', /reserved for alarms and control/);
    assert.equal(budget.holds('control', 20 * KiB), undefined, 'control may use its reserve');
    assert.match(budget.holds('control', 32 * KiB) ?? '', /cycle budget spent/);
  });

  it('bulk sends only while more than bulk_reserve of the pool is left', () => {
    const { budget } = budgetOf({ monthly: 100 * KiB, bulk_reserve: 60 * KiB, cycle_start_day: 11 });
    assert.equal(budget.holds('bulk', 30 * KiB), undefined);
    assert.match(budget.holds('bulk', 41 * KiB) ?? '', /bulk waits/);
    assert.equal(budget.holds('normal', 41 * KiB), undefined, 'normal is not bound by the bulk reserve');
  });

  it("normal is paced: today's allowance covers the rest of the cycle", () => {
    // 10 June, cycle from the 1st: 21 days left including today.
    const { budget } = budgetOf({ monthly: 210 * KiB, cycle_start_day: 1 });
    assert.equal(budget.snapshot().dayAllowance, 10 * KiB);
    budget.charge('normal', 10 * KiB);
    assert.match(budget.holds('normal') ?? '', /paced allowance spent/);
  });

  it('the file is written ahead in steps, not per byte', () => {
    const { budget } = budgetOf({ daily: '100MiB', persist_step: '64KiB' });
    const before = budget.writes;
    for (let i = 0; i < 1000; i++) budget.addWire(100); // 100 kB in small pieces
    assert.ok(budget.writes - before <= 2, `${budget.writes - before} writes for 100 kB`);
  });

  it('an unreadable counters file is set aside and the cycle taken as spent down to the reserves: alarms and control go on, and a restart keeps it so', () => {
    const config = { monthly: 100 * KiB, daily: 10 * KiB, critical_cap: 2 * KiB, control_reserve: 1 * KiB };
    const { dir, parsed, source } = budgetOf(config);
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"version": 1, "cycle": ');
    const budget = new Budget(parsed, path, source);
    assert.ok(budget.unreadable && isAgentError(budget.unreadable.error, 'GOVERNOR_STATE_INVALID'), 'the error is kept for the log');
    assert.equal(readFileSync(budget.unreadable.setAsideAs, 'utf8'), '{"version": 1, "cycle": ', 'the unreadable file is kept aside, untouched');
    assert.ok(budget.holds('normal', 1), 'normal waits');
    assert.ok(budget.holds('bulk', 1), 'bulk waits');
    assert.equal(budget.holds('critical', 2 * KiB), undefined, 'alarms have their sub-cap');
    assert.equal(budget.holds('control', 1 * KiB), undefined, 'control has its reserve');
    assert.ok(budget.holds('control', 4 * KiB), 'but no more than the reserves');
    assert.equal(budget.room('normal'), 0);
    const again = new Budget(parsed, path, source);
    assert.equal(again.unreadable, undefined, 'the new file reads back');
    assert.ok(again.holds('normal', 1), 'after a restart normal still waits');
  });

  it('the governor logs an unreadable counters file as an error with its code and where it was set aside', () => {
    const tree = new FixtureTree();
    const dir = mkdtempSync(join(tmpdir(), 'governor-unreadable-'));
    try {
      writeFileSync(join(dir, 'governor-budget.json'), 'not json');
      const lines: Record<string, unknown>[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const config = governorSchema.parse({ proc_root: tree.proc, sys_root: tree.sys, budget: { daily: 10 * KiB, timezone: 'UTC' } })!;
      const g = new Governor(config, { dataDir: dir, telemetry: new Telemetry(), log });
      const logged = lines.find((l) => l.code === 'GOVERNOR_STATE_INVALID');
      assert.ok(logged, `an error line with the code: ${JSON.stringify(lines)}`);
      assert.equal(logged.level, 50);
      assert.equal(logged.setAsideAs, g.budget!.unreadable!.setAsideAs);
      g.stop();
    } finally {
      tree.remove();
    }
  });
});

describe('a dedicated link', () => {
  it("the interface's counters are read at every check and the larger total is enforced", () => {
    const tree = new FixtureTree();
    try {
      tree.interface('wwan0', 1_000, 1_000);
      const dir = mkdtempSync(join(tmpdir(), 'governor-iface-'));
      const config = governorSchema.parse({ proc_root: tree.proc, sys_root: tree.sys, budget: { daily: 10 * KiB, interface: 'wwan0', timezone: 'UTC' } })!;
      const g = new Governor(config, { dataDir: dir, telemetry: new Telemetry(), log: silentLogger });
      g.check(); // the first reading is the baseline
      tree.interface('wwan0', 1_000 + 6 * KiB, 1_000 + 5 * KiB); // someone else's traffic on the link too
      g.check();
      assert.equal(g.budget!.total('day'), 11 * KiB, 'the interface saw more than the sockets');
      assert.equal(g.hold('telemetry')?.reason, 'budget');
      assert.match(g.hold('telemetry')!.detail, /daily budget spent/);
      tree.interface('wwan0', 10, 10); // the interface was re-created: its counters start again
      g.check();
      assert.equal(g.budget!.total('day'), 11 * KiB + 20);
      g.stop();
    } finally {
      tree.remove();
    }
  });
});

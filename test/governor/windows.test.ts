import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../agent/app.ts';
import { isAgentError } from '../../agent/errors.ts';
import type { ConfigIssue } from '../../agent/config/load.ts';
import { Governor } from '../../agent/governor/governor.ts';
import { silentLogger } from '../../agent/log.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';

const BASE = `device:
  id: gw-01
`;

/** A governor whose wall clock is whatever `now.ms` says (nothing else reads time here: no budget). */
function governorAt(yaml: string): { g: Governor; now: { ms: number } } {
  const { config } = parseConfig(BASE + yaml, 'agent.yaml', '/etc/edge-agent');
  const now = { ms: 0 };
  const clock = { wallMs: () => now.ms, uptimeMs: () => 0, bootId: () => 'b' };
  const dataDir = mkdtempSync(join(tmpdir(), 'governor-windows-'));
  const g = new Governor(config.governor!, { dataDir, telemetry: new Telemetry(), log: silentLogger, clock });
  return { g, now };
}

const WINDOWS = `governor:
  classes: { backlog: bulk, special: bulk, alarms: critical }
  windows:
    - cron: "0 22 * * *"
      duration: 6h
      timezone: Europe/Berlin
      classes: [bulk]
    - cron: "0 12 * * *"
      duration: 1h
      timezone: Europe/Berlin
      streams: [special]
`;

describe('send windows', () => {
  it('a window across midnight, and across both DST changes, lasts its real duration; a stream override wins over its class', () => {
    const { g, now } = governorAt(WINDOWS);
    const open = (iso: string, stream = 'backlog') => {
      now.ms = Date.parse(iso);
      return g.hold(stream) === undefined;
    };
    // 28 March 2026, Berlin on CET (UTC+1); the night to the 29th clocks go 02:00 → 03:00 CEST.
    assert.equal(open('2026-03-28T20:59:00Z'), false, '21:59 local: before the window');
    assert.equal(open('2026-03-28T21:00:00Z'), true, '22:00 local');
    assert.equal(open('2026-03-28T23:30:00Z'), true, '00:30 local, past midnight');
    assert.equal(open('2026-03-29T02:59:00Z'), true, '04:59 CEST: six real hours since 22:00 CET end at 05:00 CEST');
    assert.equal(open('2026-03-29T03:01:00Z'), false, '05:01 CEST');
    // 24 October 2026 on CEST (UTC+2); the night to the 25th clocks go 03:00 → 02:00 CET.
    assert.equal(open('2026-10-24T20:00:00Z'), true, '22:00 CEST');
    assert.equal(open('2026-10-25T01:59:00Z'), true, '02:59 CET (the second one)');
    assert.equal(open('2026-10-25T02:01:00Z'), false, '03:01 CET: six real hours are over');
    // The stream `special` is bulk, but a window names it: it follows that window, not bulk's.
    assert.equal(open('2026-03-28T21:30:00Z', 'special'), false, 'bulk window open, special waits for its own');
    assert.equal(open('2026-03-28T11:30:00Z', 'special'), true, '12:30 local: special window');
    assert.equal(open('2026-03-28T11:30:00Z', 'backlog'), false, 'bulk still closed at noon');
    assert.equal(g.hold('backlog')?.reason, 'window');
    // Classes no window names are never held by one.
    assert.equal(open('2026-03-28T11:30:00Z', 'alarms'), true);
    assert.equal(open('2026-03-28T11:30:00Z', 'telemetry'), true);
    assert.ok(g.heldReasons().has('window'));
  });
});

function issuesOf(yaml: string): ConfigIssue[] {
  try {
    parseConfig(BASE + yaml, 'agent.yaml', '/etc/edge-agent');
  } catch (err) {
    assert.ok(isAgentError(err, 'CONFIG_INVALID'), String(err));
    return err.details!.issues as ConfigIssue[];
  }
  assert.fail('config accepted');
}

describe('governor config errors name the path and the line', () => {
  it('a bad cron expression and an unknown time zone', () => {
    const issues = issuesOf(`governor:
  windows:
    - cron: "61 22 * * *"
      duration: 1h
    - cron: "0 1 * * *"
      duration: 1h
      timezone: Mars/Olympus
`);
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [
        ['governor.windows[0].cron', 5],
        ['governor.windows[1].timezone', 9],
      ],
    );
    assert.match(issues[0]!.message, /not a valid cron expression.*minute/);
    assert.match(issues[1]!.message, /Mars\/Olympus/);
  });

  it('contradictory limits: daily above monthly, reserves eating the cap, resume on the wrong side of hold', () => {
    const issues = issuesOf(`governor:
  gates:
    memory:
      hold: 64
      resume: 32
  budget:
    monthly: 10MiB
    daily: 20MiB
    control_reserve: 6MiB
    bulk_reserve: 5MiB
`);
    const byPath = new Map(issues.map((i) => [i.path, i]));
    assert.equal(byPath.get('governor.gates.memory.resume')?.line, 7);
    assert.match(byPath.get('governor.gates.memory.resume')!.message, /must be above hold .* flap/);
    assert.equal(byPath.get('governor.budget.daily')?.line, 10);
    assert.match(byPath.get('governor.budget.daily')!.message, /contradictory limits/);
    assert.equal(byPath.get('governor.budget.control_reserve')?.line, 11);
    assert.equal(issues.length, 3);
  });
});

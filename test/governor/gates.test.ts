import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { governorSchema, type GovernorConfig } from '../../agent/config/governor-schema.ts';
import { Governor } from '../../agent/governor/governor.ts';
import { silentLogger } from '../../agent/log.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { FixtureTree } from './fixture-tree.ts';

let tree: FixtureTree;
let dataDir: string;

beforeEach(() => {
  tree = new FixtureTree(2);
  dataDir = mkdtempSync(join(tmpdir(), 'governor-data-'));
});
afterEach(() => {
  tree.remove();
  rmSync(dataDir, { recursive: true, force: true });
});

function governor(gates: Record<string, unknown>, classes: Record<string, string> = {}): { g: Governor; telemetry: Telemetry } {
  const config = governorSchema.parse({ proc_root: tree.proc, sys_root: tree.sys, gates, classes }) as GovernorConfig;
  const telemetry = new Telemetry();
  return { g: new Governor(config, { dataDir, telemetry, log: silentLogger }), telemetry };
}

function held(telemetry: Telemetry, reason: string): number {
  return (telemetry.get('edge_forwarding_held') as { value(l: Record<string, string>): number }).value({ reason });
}

/** Sets a value, checks, and returns whether the named gate is open. */
function step(g: Governor, set: () => void, gate: string): boolean {
  set();
  g.check();
  const state = g.status().gates.find((s) => s.name === gate);
  assert.ok(state, `gate ${gate} reported`);
  return state.open;
}

describe('governor gates from fixture trees', () => {
  it('cpu load per core closes at hold, stays closed inside the band, opens below resume', () => {
    const { g, telemetry } = governor({ cpu_load: { hold: 2, resume: 1.5 } }, { alarms: 'critical' });
    // 2 CPUs: the one-minute load is divided by 2
    assert.equal(
      step(g, () => tree.load(3.0), 'cpu_load'),
      true,
      '1.5/core is below hold',
    );
    assert.equal(held(telemetry, 'cpu'), 0);
    assert.equal(
      step(g, () => tree.load(4.0), 'cpu_load'),
      false,
      '2.0/core reaches hold',
    );
    assert.equal(held(telemetry, 'cpu'), 1);
    assert.match(g.status().gates[0]!.detail, /cpu_load 2 load\/core: held until below 1\.5/);
    assert.deepEqual(g.hold('telemetry'), { reason: 'cpu', detail: g.status().gates[0]!.detail });
    assert.equal(g.hold('alarms'), undefined, 'critical is not held by the cpu gate');
    // Wandering inside the band does not flap.
    for (const load of [3.9, 3.2, 3.01, 3.5, 3.1])
      assert.equal(
        step(g, () => tree.load(load), 'cpu_load'),
        false,
        `load ${load} inside band`,
      );
    assert.equal(
      step(g, () => tree.load(2.9), 'cpu_load'),
      true,
      '1.45/core is below resume',
    );
    for (const load of [3.1, 3.5, 3.9])
      assert.equal(
        step(g, () => tree.load(load), 'cpu_load'),
        true,
        `load ${load} inside band`,
      );
    assert.equal(held(telemetry, 'cpu'), 0);
  });

  it('cpu pressure (some avg10) holds with its own band', () => {
    const { g } = governor({ cpu_pressure: { hold: 60, resume: 30 } });
    assert.equal(
      step(g, () => tree.pressure(59.9), 'cpu_pressure'),
      true,
    );
    assert.equal(
      step(g, () => tree.pressure(75), 'cpu_pressure'),
      false,
    );
    assert.equal(
      step(g, () => tree.pressure(31), 'cpu_pressure'),
      false,
    );
    assert.equal(
      step(g, () => tree.pressure(29), 'cpu_pressure'),
      true,
    );
  });

  it('memory available closes below hold and opens above resume', () => {
    const { g, telemetry } = governor({ memory: { hold: 32, resume: 48 } });
    assert.equal(
      step(g, () => tree.memory(100), 'memory'),
      true,
    );
    assert.equal(
      step(g, () => tree.memory(31), 'memory'),
      false,
    );
    assert.equal(held(telemetry, 'memory'), 1);
    assert.equal(
      step(g, () => tree.memory(47), 'memory'),
      false,
    );
    assert.equal(
      step(g, () => tree.memory(49), 'memory'),
      true,
    );
    assert.equal(held(telemetry, 'memory'), 0);
  });

  it('battery capacity holds only while discharging, with hysteresis; on_battery holds bulk while there is no mains', () => {
    const { g, telemetry } = governor({ battery: { hold: 20, resume: 30 }, on_battery: {} }, { backlog: 'bulk' });
    assert.equal(
      step(g, () => tree.power(true, 10), 'battery'),
      true,
      'charging from mains: open whatever the capacity',
    );
    assert.equal(
      step(g, () => tree.power(true, 10), 'on_battery'),
      true,
    );
    assert.equal(
      step(g, () => tree.power(false, 50), 'battery'),
      true,
    );
    assert.equal(
      step(g, () => tree.power(false, 50), 'on_battery'),
      false,
      'on battery',
    );
    assert.equal(g.hold('backlog')?.reason, 'power');
    assert.equal(g.hold('telemetry'), undefined, 'on_battery holds only bulk by default');
    assert.equal(
      step(g, () => tree.power(false, 20), 'battery'),
      false,
    );
    assert.equal(g.hold('telemetry')?.reason, 'power');
    assert.equal(
      step(g, () => tree.power(false, 29), 'battery'),
      false,
      'inside band',
    );
    assert.equal(
      step(g, () => tree.power(false, 31), 'battery'),
      true,
    );
    assert.equal(
      step(g, () => tree.power(true, 31), 'on_battery'),
      true,
      'mains back',
    );
    assert.equal(held(telemetry, 'power'), 0);
  });

  it('a gate with nothing to read stays open and says so', () => {
    const { g } = governor({ cpu_pressure: {}, battery: {} });
    rmSync(join(tree.proc, 'pressure'), { recursive: true });
    g.check();
    for (const s of g.status().gates) {
      assert.equal(s.open, true);
      assert.match(s.detail, /nothing to read; open/);
    }
  });
});

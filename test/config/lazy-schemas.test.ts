import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineSinkDriver, defineSourceDriver, isAgentError } from '../../agent/sdk/index.ts';
import { driverCatalog } from '../../agent/config/catalog.ts';
import { parseConfig, type ConfigIssue } from '../../agent/config/load.ts';
import type { Sink } from '../../agent/contracts/sink.ts';

// Driver option schemas are built on first use, and a config is validated with the option schemas of the
// driver types it names only (a start pays for its own drivers, not for every driver the executable has).

function catalogCountingBuilds() {
  const built = new Map<string, number>();
  const counted = (type: string, shape: z.ZodRawShape) => () => {
    built.set(type, (built.get(type) ?? 0) + 1);
    return z.strictObject(shape);
  };
  const source = (type: string) =>
    defineSourceDriver({
      type,
      summary: type,
      mode: 'polled',
      options: counted(type, { depth: z.number().int().default(1) }),
      create: () => ({ gather: async () => {} }),
    });
  const sink = (type: string) =>
    defineSinkDriver({
      type,
      summary: type,
      options: counted(type, { url: z.string() }),
      create: () => ({}) as Sink,
      createConsumer: () => {
        throw new Error('not used');
      },
    });
  const drivers = driverCatalog({ sources: [source('alpha'), source('beta'), source('gamma')], sinks: [sink('north'), sink('south')] });
  return { drivers, built };
}

const CONFIG = `
device: { id: gw }
sources:
  - { type: alpha, name: a }
sink: { type: north, url: x }
`;

function issuesOf(run: () => unknown): ConfigIssue[] {
  try {
    run();
  } catch (err) {
    assert.ok(isAgentError(err, 'CONFIG_INVALID'), String(err));
    return err.details?.issues as ConfigIssue[];
  }
  assert.fail('config was accepted');
}

describe('config: driver option schemas built only for the types a config names', () => {
  it('parsing a config builds the schemas of its own driver types, once', () => {
    const { drivers, built } = catalogCountingBuilds();
    assert.equal(built.size, 0, 'nothing is built before a config is read');
    const loaded = parseConfig(drivers, CONFIG, 'agent.yaml', '/etc');
    assert.equal(loaded.config.sources[0]!.depth, 1, "the driver's defaults apply");
    parseConfig(drivers, CONFIG, 'agent.yaml', '/etc');
    assert.deepEqual(Object.fromEntries(built), { alpha: 1, north: 1 });
  });

  it("an unknown type is reported with every known type, and a named type's options are checked as before", () => {
    const { drivers, built } = catalogCountingBuilds();
    const unknown = issuesOf(() => parseConfig(drivers, CONFIG.replace('type: alpha', 'type: delta'), 'agent.yaml', '/etc'));
    assert.deepEqual(
      unknown.map((i) => [i.path, i.message]),
      [['sources[0].type', 'unknown type; known types: alpha, beta, gamma']],
    );
    const wrong = issuesOf(() => parseConfig(drivers, CONFIG.replace('name: a }', 'name: a, depth: deep, extra: 1 }'), 'agent.yaml', '/etc'));
    assert.deepEqual(wrong.map((i) => i.path).sort(), ['sources[0].depth', 'sources[0].extra']);
    assert.equal(built.has('beta') || built.has('gamma') || built.has('south'), false, 'types no config named are never built');
  });

  it('the full schema (docs, JSON Schema) has every driver', () => {
    const { drivers, built } = catalogCountingBuilds();
    assert.ok(drivers.schemas.configSchema);
    assert.deepEqual([...built.keys()].sort(), ['alpha', 'beta', 'gamma', 'north', 'south']);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseConfig } from '../../agent/app.ts';
import { requireRunnable } from '../../agent/config/load.ts';
import { sinkDrivers, sourceDrivers } from '../../drivers/registry.ts';

const DRIVERS = resolve(import.meta.dirname, '../../drivers');

function folders(kind: 'sources' | 'sinks'): string[] {
  return readdirSync(join(DRIVERS, kind), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

const samples = readdirSync(DRIVERS, { recursive: true, encoding: 'utf8' })
  .filter((p) => p.endsWith('sample.yaml'))
  .map((p) => join(DRIVERS, p))
  .sort();

describe('driver samples', () => {
  it('every driver folder has a README.md and a sample.yaml', () => {
    for (const kind of ['sources', 'sinks'] as const) {
      for (const name of folders(kind)) {
        assert.ok(existsSync(join(DRIVERS, kind, name, 'README.md')), `drivers/${kind}/${name}/README.md`);
        assert.ok(existsSync(join(DRIVERS, kind, name, 'sample.yaml')), `drivers/${kind}/${name}/sample.yaml`);
      }
    }
    assert.ok(samples.length >= folders('sources').length + folders('sinks').length);
  });

  for (const file of samples) {
    const name = relative(DRIVERS, file);
    it(`${name} is a valid, runnable config that uses its own driver`, () => {
      const loaded = parseConfig(readFileSync(file, 'utf8'), file, dirname(file));
      requireRunnable(loaded);
      const [kind, type] = name.split('/') as [string, string];
      if (kind === 'sources')
        assert.ok(
          loaded.config.sources.some((s) => s.type === type),
          `a ${type} source in ${name}`,
        );
      else assert.equal(loaded.config.sink?.type, type, `the sink of ${name} is ${type}`);
    });
  }
});

describe('driver registry', () => {
  it('registers exactly the folders under drivers/sources and drivers/sinks', () => {
    assert.deepEqual(sourceDrivers.map((d) => d.type).sort(), folders('sources'));
    assert.deepEqual(sinkDrivers.map((d) => d.type).sort(), folders('sinks'));
  });

  it('driver types are unique', () => {
    for (const list of [sourceDrivers, sinkDrivers]) assert.equal(new Set(list.map((d) => d.type)).size, list.length);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { parse } from 'yaml';
import { parseConfig } from '../../agent/app.ts';
import { EMBEDDED_DEFAULTS } from '../../agent/config/defaults.ts';
import { DURATION_PATTERN, parseDuration, parseSize, SIZE_PATTERN } from '../../agent/util/units.ts';
import { renderJsonSchema, SCHEMA_PATH } from '../../scripts/gen-config-docs.ts';

const DRIVERS = resolve(import.meta.dirname, '../../drivers');
const samples = readdirSync(DRIVERS, { recursive: true, encoding: 'utf8' })
  .filter((p) => p.endsWith('sample.yaml'))
  .map((p) => join(DRIVERS, p))
  .sort();

const generated = renderJsonSchema();
// Strict: a keyword the validator does not know would be one an editor may ignore too.
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(JSON.parse(generated));

function problems(config: unknown): string[] {
  return validate(config) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

/** The config loader's verdict on the same config (JSON is YAML). */
function loaderRejects(config: unknown): void {
  assert.throws(() => parseConfig(JSON.stringify(config), 'test.yaml', '/'), /invalid configuration/, JSON.stringify(config));
}

const minimal = { device: { id: 'gw-1' }, sources: [{ type: 'system', name: 'host' }], sink: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883' } };

describe('docs/config.schema.json', () => {
  it('is up to date with the config schema', () => {
    let committed: string;
    try {
      committed = readFileSync(SCHEMA_PATH, 'utf8');
    } catch {
      assert.fail(`${SCHEMA_PATH} is missing: run \`npm run docs:config\``);
    }
    if (committed !== generated) assert.fail('docs/config.schema.json is out of date with the config schema: run `npm run docs:config` and commit the result');
  });

  it('names its dialect and itself, and describes the keys', () => {
    const schema = JSON.parse(generated);
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(typeof schema.$id, 'string');
    assert.equal(typeof schema.title, 'string');
    assert.match(schema.properties.queue.properties.max_bytes.description, /queued data/);
  });

  for (const file of samples) {
    it(`accepts ${relative(DRIVERS, file)}`, () => {
      assert.deepEqual(problems(parse(readFileSync(file, 'utf8'))), []);
    });
  }

  it('accepts the embedded defaults and a minimal config', () => {
    assert.deepEqual(problems(parse(EMBEDDED_DEFAULTS)), []);
    assert.deepEqual(problems(minimal), []);
    assert.deepEqual(problems({}), []);
  });

  it('rejects unknown keys at the top, in a section and in a driver entry', () => {
    assert.notDeepEqual(problems({ ...minimal, queu: {} }), []);
    assert.notDeepEqual(problems({ ...minimal, queue: { max_byte: '1GiB' } }), []);
    assert.notDeepEqual(problems({ ...minimal, sink: { ...minimal.sink, keep_alive: '30s' } }), []);
    assert.notDeepEqual(problems({ ...minimal, sources: [{ type: 'system', name: 'host', rate: 1 }] }), []);
  });

  it('rejects what the config loader rejects for types, enums, drivers and units', () => {
    for (const bad of [
      { ...minimal, sources: [{ type: 'no-such-driver', name: 'x' }] },
      { ...minimal, queue: { full_policy: 'drop_all' } },
      { ...minimal, queue: { max_bytes: '1 gigabyte' } },
      { ...minimal, queue: { commit_interval: '10 sec' } },
      { ...minimal, sender: { max_in_flight: 0 } },
      { ...minimal, device: { id: 'has spaces' } },
    ]) {
      assert.notDeepEqual(problems(bad), [], JSON.stringify(bad));
      loaderRejects(bad);
    }
  });

  it('leaves the cross-field rules to the config loader', () => {
    // zod's JSON Schema export cannot carry the schema's refinements, which are code: unique source names, each
    // compression algorithm's level range, exactly one of table or query, a serial port by path or by USB ids,
    // a valid framing pattern, the MQTT topic filter syntax, a duration written as text below its minimum.
    // Editors accept these; `edge-agent check-config` and the agent report them.
    for (const gap of [
      { ...minimal, sources: [minimal.sources[0], minimal.sources[0]] },
      { ...minimal, batch: { compression: 'deflate', level: 20 } },
      { ...minimal, sources: [{ type: 'serial', name: 'port', path: '/dev/ttyUSB0', vendor_id: '0403', product_id: '6001' }] },
      { ...minimal, sources: [{ type: 'system', name: 'host', interval: '1ms' }] },
      { ...minimal, sources: [{ type: 'sqlite', name: 'db', path: 'app.db', table: 'events', query: 'SELECT * FROM events' }] },
      { ...minimal, sources: [{ type: 'serial', name: 'port', path: '/dev/ttyUSB0', framing: { mode: 'regex', pattern: '(' } }] },
      { ...minimal, sources: [{ type: 'mqtt', name: 'site', url: 'mqtt://127.0.0.1', topics: [{ filter: 'a/#/b' }] }] },
    ]) {
      assert.deepEqual(problems(gap), [], JSON.stringify(gap));
      loaderRejects(gap);
    }
  });

  it('its duration and size patterns accept exactly what the parsers accept', () => {
    const duration = new RegExp(DURATION_PATTERN, 'u');
    const size = new RegExp(SIZE_PATTERN, 'u');
    // Text built from the pieces the syntaxes are made of, so most samples are near misses rather than noise.
    const piece = fc.constantFrom('0', '1', '25', '.', '.5', ' ', '\t', '\n', 'ms', 's', 'm', 'h', 'd', 'B', 'KB', 'KiB', 'MiB', 'GB', 'GiB', 'kb', '-', 'x');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), (pieces) => {
        const text = pieces.join('');
        assert.equal(duration.test(text), parseDuration(text) !== undefined, JSON.stringify(text));
        assert.equal(size.test(text), parseSize(text) !== undefined, JSON.stringify(text));
      }),
      { numRuns: 5000 },
    );
  });
});

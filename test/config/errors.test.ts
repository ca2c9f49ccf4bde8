import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isAgentError } from '../../agent/errors.ts';
import { parseConfig } from '../../agent/app.ts';
import { requireRunnable, type ConfigIssue } from '../../agent/config/load.ts';
import { EMBEDDED_DEFAULTS } from '../../agent/config/defaults.ts';
import { sinkDrivers, sourceDrivers } from '../../drivers/registry.ts';

/** Parses `text` expecting a CONFIG_INVALID error; returns its issues. */
function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text, 'agent.yaml', '/etc/edge-agent');
  } catch (err) {
    assert.ok(isAgentError(err, 'CONFIG_INVALID'), `expected CONFIG_INVALID, got ${String(err)}`);
    const issues = err.details?.issues as ConfigIssue[] | undefined;
    assert.ok(Array.isArray(issues) && issues.length > 0, 'error carries details.issues');
    return issues;
  }
  assert.fail('config was accepted');
}

/** The single issue of `text`, checked for path, line and column; the message is returned for further checks. */
function oneIssue(text: string, path: string, line: number, column: number): string {
  const issues = issuesOf(text);
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues)}`);
  const [issue] = issues as [ConfigIssue];
  assert.deepEqual({ path: issue.path, line: issue.line, column: issue.column }, { path, line, column });
  return issue.message;
}

const RUNNABLE = `device:
  id: gw-01
sources:
  - type: system
    name: sys
sink:
  type: mqtt
  url: mqtt://broker.example:1883
`;

describe('config errors name the path, the line and the column', () => {
  it('unknown top-level key', () => {
    const message = oneIssue('device:\n  id: gw\nqeueu:\n  path: x.db\n', 'qeueu', 3, 1);
    assert.match(message, /unknown key/);
  });

  it('unknown nested key points at the key itself, not its parent', () => {
    const text = 'queue:\n  max_bytes: 1MiB\n  colour: red\n';
    assert.match(oneIssue(text, 'queue.colour', 3, 3), /unknown key/);
  });

  it('unknown key inside a source and inside a sink sub-section', () => {
    assert.match(oneIssue('sources:\n  - type: system\n    name: s\n    procroot: /x\n', 'sources[0].procroot', 4, 5), /unknown key/);
    const sink = 'sink:\n  type: mqtt\n  url: mqtt://h\n  tls:\n    ca: ca.pem\n    verify: false\n';
    assert.match(oneIssue(sink, 'sink.tls.verify', 6, 5), /unknown key/);
  });

  it('wrong type', () => {
    const message = oneIssue('queue:\n  commit_every_records: "lots"\n', 'queue.commit_every_records', 2, 25);
    assert.match(message, /expected number, received string/);
  });

  it('bad duration', () => {
    const text = 'sources:\n  - type: system\n    name: sys\n    interval: 10 parsecs\n';
    const message = oneIssue(text, 'sources[0].interval', 4, 15);
    assert.match(message, /duration/);
    assert.match(message, /10 parsecs/, 'the message quotes the bad value');
    assert.match(message, /10s/, 'the message shows a valid example');
  });

  it('bad size', () => {
    const message = oneIssue('queue:\n  max_bytes: 12 furlongs\n', 'queue.max_bytes', 2, 14);
    assert.match(message, /size/);
    assert.match(message, /12 furlongs/);
    assert.match(message, /MiB/);
  });

  it('negative and out-of-range numbers', () => {
    assert.match(oneIssue('sender:\n  max_in_flight: -1\n', 'sender.max_in_flight', 2, 18), />=\s*1/);
    assert.match(oneIssue('broker:\n  port: 70000\n', 'broker.port', 2, 9), /<=\s*65535/);
    assert.match(oneIssue('queue:\n  commit_interval: -5\n', 'queue.commit_interval', 2, 20), /duration/);
    assert.match(oneIssue('batch:\n  level: 23\n', 'batch.level', 2, 10), /zstd takes a level from 1 to 22, got 23/);
  });

  it('unknown source type lists the known types', () => {
    const message = oneIssue('sources:\n  - type: telepathy\n    name: plc\n', 'sources[0].type', 2, 11);
    assert.match(message, /unknown type/);
    for (const d of sourceDrivers) assert.ok(message.includes(d.type), `message lists ${d.type}: ${message}`);
  });

  it('a source without a type says the type is missing', () => {
    const message = oneIssue('sources:\n  - name: plc\n', 'sources[0].type', 2, 5);
    assert.match(message, /missing type/);
    assert.ok(message.includes('system'));
  });

  it('unknown sink type lists the known types', () => {
    const message = oneIssue('sink:\n  type: carrier-pigeon\n  url: x\n', 'sink.type', 2, 9);
    assert.match(message, /unknown type/);
    for (const d of sinkDrivers) assert.ok(message.includes(d.type), `message lists ${d.type}: ${message}`);
  });

  it('bad enum value lists the allowed values', () => {
    const message = oneIssue('queue:\n  full_policy: explode\n', 'queue.full_policy', 2, 16);
    for (const v of ['drop_oldest', 'drop_newest', 'block']) assert.ok(message.includes(v), message);
  });

  it('duplicate source names point at the second one', () => {
    const text = 'sources:\n  - type: system\n    name: a\n  - type: synthetic\n    name: a\n';
    assert.match(oneIssue(text, 'sources[1].name', 5, 11), /duplicate source name "a"/);
  });

  it('invalid names: device id with spaces, bad stream key', () => {
    assert.match(oneIssue('device:\n  id: my gateway\n', 'device.id', 2, 7), /device id must be/);
    // A map key is reported on the key's line with the reason, not zod's bare "Invalid key in record".
    assert.match(oneIssue('streams:\n  "bad stream": {}\n', 'streams.bad stream', 2, 3), /stream name must be/);
  });

  it('YAML syntax error gives a line', () => {
    const issues = issuesOf('device:\n  id: gw\nqueue: [1, 2\nbatch:\n  max_records: 5\n');
    assert.ok(issues.length >= 1);
    for (const issue of issues) {
      assert.equal(issue.path, '(yaml)');
      assert.ok(typeof issue.line === 'number' && issue.line >= 3, `line given: ${JSON.stringify(issue)}`);
      assert.ok(typeof issue.column === 'number');
    }
  });

  it('duplicate YAML keys are an error at the second key', () => {
    const issues = issuesOf('device:\n  id: gw\ndevice:\n  id: other\n');
    assert.deepEqual(
      issues.map((i) => [i.path, i.line, i.column]),
      [['(yaml)', 3, 1]],
    );
    assert.match(issues[0]!.message, /unique/i);
  });

  it('several errors at once are all reported', () => {
    const text = [
      'device:',
      '  id: "a b"',
      'queue:',
      '  full_policy: nope',
      '  max_bytes: huge',
      'extra: 1',
      'sources:',
      '  - type: system',
      '    name: s',
      '    interval: soon',
      '',
    ].join('\n');
    const issues = issuesOf(text);
    const got = issues.map((i) => `${i.line}:${i.column} ${i.path}`).sort();
    assert.deepEqual(got, ['10:15 sources[0].interval', '2:7 device.id', '4:16 queue.full_policy', '5:14 queue.max_bytes', '6:1 extra'].sort());
  });

  it('the error message itself carries file:line:col path for people', () => {
    try {
      parseConfig('queue:\n  full_policy: explode\n', 'agent.yaml', '/etc/edge-agent');
      assert.fail('accepted');
    } catch (err) {
      assert.ok(isAgentError(err, 'CONFIG_INVALID'));
      assert.match(err.message, /agent\.yaml:2:16 queue\.full_policy: /);
    }
  });
});

describe('requireRunnable', () => {
  it('accepts a config with a device, a sink and a source', () => {
    requireRunnable(parseConfig(RUNNABLE, 'agent.yaml', '/etc/edge-agent'));
  });

  it('reports a missing device, sink and sources together', () => {
    const loaded = parseConfig('log:\n  level: debug\n', 'agent.yaml', '/etc/edge-agent');
    assert.throws(
      () => requireRunnable(loaded),
      (err) => {
        assert.ok(isAgentError(err, 'CONFIG_INVALID'));
        const issues = err.details?.issues as ConfigIssue[];
        assert.deepEqual(issues.map((i) => i.path).sort(), ['device.id', 'sink', 'sources']);
        for (const issue of issues) assert.match(issue.message, /required/);
        return true;
      },
    );
  });

  it('reports only what is missing', () => {
    const noSources = RUNNABLE.replace(/sources:\n(.*\n){2}/, '');
    assert.ok(!noSources.includes('system'));
    assert.throws(
      () => requireRunnable(parseConfig(noSources, 'agent.yaml', '/etc/edge-agent')),
      (err) => isAgentError(err, 'CONFIG_INVALID') && (err.details?.issues as ConfigIssue[]).map((i) => i.path).join() === 'sources',
    );
  });
});

describe('defaults', () => {
  it('an almost empty config gets the documented defaults, units parsed', () => {
    const { config } = parseConfig('device:\n  id: gw\nsources:\n  - type: system\n    name: sys\n', 'agent.yaml', '/etc/edge-agent');
    assert.equal(config.data_dir, './data');
    assert.equal(config.log.level, 'info');
    assert.deepEqual(config.keys, { device_private: 'keys/device.key', centre_public: 'keys/centre.pub', generate_if_missing: false });
    assert.deepEqual(config.queue, {
      path: 'queue.db',
      synchronous: 'full',
      commit_every_records: 1000,
      commit_interval: 500,
      max_bytes: 256 * 1024 * 1024,
      max_age: 30 * 86_400_000,
      min_free_disk: 64 * 1024 * 1024,
      sync_interval: 1000,
      full_policy: 'drop_oldest',
      cache_size: 2 * 1024 * 1024,
    });
    assert.deepEqual(config.batch, { max_records: 1000, max_bytes: 256 * 1024, compression: 'zstd' });
    assert.deepEqual(config.sender, {
      max_in_flight: 16,
      max_in_flight_bytes: 8 * 1024 * 1024,
      write_timeout: 30_000,
      retry_initial_delay: 500,
      retry_max_delay: 60_000,
      centre_ack_timeout: 30_000,
      centre_ack_max_timeout: 600_000,
    });
    assert.deepEqual(config.broker, {
      embedded: false,
      host: '127.0.0.1',
      port: 0,
      max_queued_bytes_per_client: 16 * 2 ** 20,
      max_queued_bytes: 64 * 2 ** 20,
      max_unreleased_bytes_per_client: 4 * 2 ** 20,
      max_unreleased_bytes: 16 * 2 ** 20,
      max_connections: 1000,
      max_subscriptions_per_client: 1000,
      max_retained_messages: 10_000,
      max_retained_bytes: 16 * 2 ** 20,
    });
    assert.deepEqual(config.streams, {});
    assert.equal(config.sink, undefined);
    assert.equal(config.receiver, undefined);
    const [source] = config.sources;
    assert.equal(source?.interval, 10_000);
    assert.equal(source?.on_start_error, 'retry');
    assert.equal(source?.proc_root, '/proc', 'driver option defaults apply too');
  });

  it('written units are parsed to milliseconds and bytes', () => {
    const { config } = parseConfig('queue:\n  commit_interval: 1.5s\n  max_bytes: 64KiB\n  max_age: 2h\n  cache_size: 1MB\n', 'agent.yaml', '/');
    assert.equal(config.queue.commit_interval, 1500);
    assert.equal(config.queue.max_bytes, 65_536);
    assert.equal(config.queue.max_age, 7_200_000);
    assert.equal(config.queue.cache_size, 1_000_000);
  });

  it('sink option defaults apply', () => {
    const { config } = parseConfig(RUNNABLE, 'agent.yaml', '/');
    assert.equal(config.sink?.protocol_version, 5);
    assert.equal(config.sink?.topic_prefix, 'edge-agent/v1');
    assert.equal(config.sink?.keepalive, 30_000);
  });

  it('the embedded defaults validate and are runnable', () => {
    const loaded = parseConfig(EMBEDDED_DEFAULTS, '(embedded defaults)', '/tmp');
    requireRunnable(loaded);
    assert.equal(loaded.config.device?.id, 'demo-gateway');
    assert.equal(loaded.config.broker.embedded, true);
    assert.equal(loaded.config.receiver?.enabled, true);
    assert.equal(loaded.config.sources[0]?.interval, 2000);
  });
});

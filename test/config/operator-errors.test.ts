/**
 * Operator errors that used to end as run-time failures (exit 1, no line): alias bombs, unresolved aliases,
 * bad URLs and key-file problems are configuration errors (exit 2) naming the file, the line and the setting;
 * YAML merge keys work, and errors inside merged content point at the line where the value is written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConfig } from '../../agent/app.ts';
import type { ConfigIssue } from '../../agent/config/load.ts';
import { isAgentError } from '../../agent/errors.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(NODE, ['agent/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text, 'agent.yaml', '/etc/edge-agent');
  } catch (err) {
    assert.ok(isAgentError(err, 'CONFIG_INVALID'), `expected CONFIG_INVALID, got ${String(err)}`);
    return err.details?.issues as ConfigIssue[];
  }
  assert.fail('config was accepted');
}

function place(issue: ConfigIssue | undefined) {
  return issue && { path: issue.path, line: issue.line, column: issue.column };
}

/** The classic shape: nine levels, each a list of nine aliases of the one before (9^9 values expanded). */
function billionLaughs(): string {
  let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  const names = 'abcdefghi';
  for (let i = 1; i < names.length; i++)
    text += `${names[i]}: &${names[i]} [${Array(9)
      .fill(`*${names[i - 1]}`)
      .join(', ')}]\n`;
  return text;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-operator-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('aliases', () => {
  it('an alias bomb is refused at the alias that sets it off', () => {
    const issues = issuesOf(billionLaughs());
    assert.equal(issues.length, 1, JSON.stringify(issues));
    // Line 6 (f: [*e, …]) is where the expansion passes the bound; column 8 its first alias.
    assert.deepEqual(place(issues[0]), { path: '(yaml)', line: 6, column: 8 });
    assert.match(issues[0]!.message, /alias \*e .*alias bomb/);
  });

  it('an alias without its anchor names the alias and its line', () => {
    const issues = issuesOf('device:\n  id: gw\nsink: *broker\n');
    assert.deepEqual(place(issues[0]), { path: '(yaml)', line: 3, column: 7 });
    assert.match(issues[0]!.message, /\*broker has no anchor &broker/);
  });

  it('many uses of one anchor are not a bomb (150 sources merging one base)', () => {
    let text = 'sources:\n  - &base\n    type: synthetic\n    name: s0\n    interval: 1s\n';
    for (let i = 1; i < 150; i++) text += `  - <<: *base\n    name: s${i}\n`;
    const { config } = parseConfig(text, 'agent.yaml', '/etc/edge-agent');
    assert.equal(config.sources.length, 150);
    assert.equal(config.sources[149]!.name, 's149');
  });
  // The config schema has no recursive schema (zod's cycle support is off: agent/util/zod.ts), so a value that
  // contains itself is refused where the cycle meets a setting of another type, never followed round.
  for (const [what, text, path] of [
    ['a map that holds itself', 'log: &l\n  level: info\n  format: *l\n', 'log.format'],
    ['a list that holds itself', 'sources: &s\n  - type: synthetic\n    name: a\n  - *s\n', 'sources[1]'],
    ['a source whose option is the source', 'sources:\n  - &s\n    type: synthetic\n    name: a\n    rate: *s\n', 'sources[0].rate'],
  ] as const) {
    it(`an alias cycle (${what}) is an error at the setting it reaches`, () => {
      const issues = issuesOf(`device:\n  id: gw\n${text}`);
      assert.ok(
        issues.some((i) => i.path === path),
        JSON.stringify(issues),
      );
    });
  }
});

describe('merge keys', () => {
  const BASE = `sources:
  - &base
    type: synthetic
    name: first
    interval: 2s
`;

  it('a source inherits type and settings from an anchored one and overrides its name', () => {
    const { config } = parseConfig(`${BASE}  - <<: *base\n    name: second\n`, 'agent.yaml', '/etc/edge-agent');
    assert.deepEqual(
      config.sources.map((s) => [s.name, s.type, s.interval]),
      [
        ['first', 'synthetic', 2000],
        ['second', 'synthetic', 2000],
      ],
    );
  });

  it('a list of merges: the first that has a key wins, the map itself wins over all', () => {
    const text = `${BASE}  - &other\n    type: system\n    name: other\n    interval: 3s\n  - <<: [*other, *base]\n    name: third\n`;
    const third = parseConfig(text, 'agent.yaml', '/etc/edge-agent').config.sources[2]!;
    assert.deepEqual([third.name, third.type, third.interval], ['third', 'system', 3000]);
  });

  it('an error in the map itself points at its own line', () => {
    const issues = issuesOf(`${BASE}  - <<: *base\n    name: second\n    interval: 10 parsecs\n`);
    assert.deepEqual(issues.map(place), [{ path: 'sources[1].interval', line: 8, column: 15 }]);
  });

  it('an error in merged content points at the line where the value is written, once per entry using it', () => {
    const issues = issuesOf(BASE.replace('interval: 2s', 'interval: 10 parsecs') + '  - <<: *base\n    name: second\n');
    assert.deepEqual(issues.map(place), [
      { path: 'sources[0].interval', line: 5, column: 15 },
      { path: 'sources[1].interval', line: 5, column: 15 },
    ]);
  });

  it('an unknown key in merged content is pointed at on its own line', () => {
    const issues = issuesOf(`${BASE.replace('    interval: 2s\n', '    interval: 2s\n    colour: red\n')}  - <<: *base\n    name: second\n`);
    assert.deepEqual(issues.map(place), [
      { path: 'sources[0].colour', line: 6, column: 5 },
      { path: 'sources[1].colour', line: 6, column: 5 },
    ]);
  });
});

describe('URLs are checked when the config is read', () => {
  const sink = (url: string, extra = '') => `sink:\n  type: mqtt\n  url: ${url}\n${extra}`;

  it('good MQTT and Pulsar URLs and `embedded` pass', () => {
    for (const url of ['mqtt://broker:1883', 'mqtts://broker.example:8883', 'ws://h:8080/mqtt', 'tcp://[::1]:1883', 'embedded'])
      parseConfig(sink(url), 'agent.yaml', '/etc/edge-agent');
    parseConfig('sink:\n  type: pulsar\n  url: wss://h:8443\n', 'agent.yaml', '/etc/edge-agent');
    parseConfig('sink:\n  type: pulsar\n  transport: native\n  url: pulsar+ssl://a:6651,b:6651\n', 'agent.yaml', '/etc/edge-agent');
  });

  it('a scheme the driver does not speak, a missing //, no host, a bad port: each at the url line', () => {
    for (const [url, message] of [
      ['http://broker:1883', /expected a URL starting mqtt:\/\/, mqtts:\/\/.*`embedded`; got "http:\/\/broker:1883"/],
      ['mqtt//broker', /expected a URL starting/],
      ['mqtt://', /no host/],
      ['mqtt://broker:99999', /not a parsable URL/],
      ['mqtt://bro ker', /not a parsable URL/],
    ] as const) {
      const issues = issuesOf(sink(url));
      assert.deepEqual(issues.map(place), [{ path: 'sink.url', line: 3, column: 8 }], url);
      assert.match(issues[0]!.message, message);
    }
  });

  it('a password inside a bad URL is not repeated in the message', () => {
    const [issue] = issuesOf(sink('mqtt://user:hunter2@broker:1883x'));
    assert.doesNotMatch(issue!.message, /hunter2/);
    assert.match(issue!.message, /user:\*\*\*@broker/);
  });

  it('the source url and the receiver input url too', () => {
    const source = 'sources:\n  - type: mqtt\n    name: site\n    url: mqtt:/127.0.0.1\n    topics: [{ filter: "a/#" }]\n';
    assert.deepEqual(issuesOf(source).map(place), [{ path: 'sources[0].url', line: 4, column: 10 }]);
    const input = 'receiver:\n  input:\n    type: pulsar\n    url: pulsar:/h\n';
    assert.deepEqual(issuesOf(input).map(place), [{ path: 'receiver.input.url', line: 4, column: 10 }]);
  });

  it('Pulsar: the URL must suit the transport', () => {
    const issues = issuesOf('sink:\n  type: pulsar\n  url: pulsar://h:6650\n');
    assert.deepEqual(issues.map(place), [{ path: 'sink.url', line: 3, column: 8 }]);
    assert.match(issues[0]!.message, /transport websocket needs a ws:\/\/ or wss:\/\/ URL/);
    assert.match(issuesOf('sink:\n  type: pulsar\n  transport: native\n  url: ws://h:8080\n')[0]!.message, /transport native needs a pulsar:\/\//);
  });
});

describe('the CLI: configuration problems exit 2 with file and line', () => {
  const RUNNABLE = `device:
  id: gw-01
sources:
  - type: system
    name: sys
sink:
  type: mqtt
  url: mqtt://127.0.0.1:1
`;

  it('run with an alias bomb', async () => {
    const file = join(dir, 'bomb.yaml');
    writeFileSync(file, billionLaughs());
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:6:8 (yaml): alias *e`), r.stderr);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  it('run with a bad sink URL', async () => {
    const file = join(dir, 'bad-url.yaml');
    writeFileSync(file, RUNNABLE.replace('mqtt://127.0.0.1:1', 'mqtt//127.0.0.1:1'));
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:8:8 sink.url: expected a URL`), r.stderr);
  });

  /** A config dir with keys from `keygen`, the config written in it. */
  async function withKeys(name: string, yaml: string): Promise<{ base: string; file: string }> {
    const base = join(dir, name);
    mkdirSync(base, { recursive: true });
    assert.equal((await cli('keygen', '--dir', join(base, 'keys'))).code, 0);
    const file = join(base, 'agent.yaml');
    writeFileSync(file, yaml);
    return { base, file };
  }

  it('run with a missing device key names the setting and its line', async () => {
    const { base, file } = await withKeys('missing-key', `${RUNNABLE}keys:\n  device_private: keys/gone.key\n`);
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:10:19 keys.device_private: private key file ${join(base, 'keys/gone.key')} does not exist`), r.stderr);
    assert.match(r.stderr, /edge-agent keygen/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  it('run with a public key where the private one belongs, and a short centre key: both at once', async () => {
    const { base, file } = await withKeys('wrong-keys', `${RUNNABLE}keys:\n  device_private: keys/device.pub\n  centre_public: keys/short.pub\n`);
    writeFileSync(join(base, 'keys/short.pub'), 'x25519-public AAAA\n');
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:10:19 keys.device_private: ${join(base, 'keys/device.pub')} is not an x25519-private key file`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:11:18 keys.centre_public: ${join(base, 'keys/short.pub')}: key must be 32 bytes`), r.stderr);
  });

  it('run with a private key readable by others, at its default path: exit 2, chmod 600, says it is the default', async () => {
    const { base, file } = await withKeys('open-key', RUNNABLE);
    chmodSync(join(base, 'keys/device.key'), 0o640);
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file} keys.device_private: private key ${join(base, 'keys/device.key')} is accessible by others`), r.stderr);
    assert.match(r.stderr, /chmod 600/);
    assert.match(r.stderr, /the default/);
  });

  // What check-config calls an error, start-up refuses too: before, a missing source TLS file left the agent
  // running with a failing poll forever, the broker's password file ended in exit 1, and a sink's named no line.
  it('run with a missing source TLS CA, sink password file and broker password file: exit 2, each at its line', async () => {
    const postgres =
      '  - type: postgres\n    name: pg\n    host: 127.0.0.1\n    database: postgres\n    table: t\n    id_column: id\n    tls:\n      ca: tls/none.pem\n';
    const secrets = '  username: edge\n  password_file: secrets/mqtt\nbroker:\n  embedded: true\n  username: edge\n  password_file: secrets/broker\n';
    const yaml = `${RUNNABLE.replace('    name: sys\n', `    name: sys\n${postgres}`)}${secrets}`;
    const { base, file } = await withKeys('startup-files', yaml);
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    for (const line of [
      `${file}:13:11 sources[1].tls.ca: TLS CA file ${join(base, 'tls/none.pem')} does not exist`,
      `${file}:18:18 sink.password_file: password file ${join(base, 'secrets/mqtt')} does not exist`,
      `${file}:22:18 broker.password_file: embedded broker password file ${join(base, 'secrets/broker')} does not exist`,
    ])
      assert.ok(r.stderr.includes(line), `missing: ${line}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  it('run with a secret in an environment variable that is not set: exit 2 at its line', async () => {
    const { file } = await withKeys('startup-env', `${RUNNABLE}  username: edge\n  password_env: EDGE_TEST_UNSET_PASSWORD\n`);
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:10:17 sink.password_env: environment variable EDGE_TEST_UNSET_PASSWORD (the password) is not set`), r.stderr);
  });

  it("receive with a missing TLS CA for its input: exit 2 at its line; the sources' files are not its business", async () => {
    const yaml = `sources:\n  - type: mqtt\n    name: site\n    url: mqtts://127.0.0.1:8883\n    topics: [{ filter: "a/#" }]\n    tls: { ca: tls/gone-too.pem }\nsink:\n  type: mqtt\n  url: mqtts://127.0.0.1:1\n  tls:\n    ca: tls/none.pem\nreceiver:\n  private_key: keys/centre.key\n`;
    const { base, file } = await withKeys('receive-files', yaml);
    const r = await cli('receive', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:11:9 sink.tls.ca: TLS CA file ${join(base, 'tls/none.pem')} does not exist`), r.stderr);
    assert.doesNotMatch(r.stderr, /sources\[0\]/);
  });

  it('url `embedded` without broker.embedded: exit 2 at the url line, at run and at check-config --schema-only', async () => {
    const { file } = await withKeys('embedded-url', RUNNABLE.replace('mqtt://127.0.0.1:1', 'embedded'));
    for (const args of [
      ['run', '--config', file],
      ['check-config', '--schema-only', file],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(`${file}:8:8 sink.url: url \`embedded\` needs broker.embedded: true`), r.stderr);
    }
  });

  it('receive with a centre key readable by others and an unreadable extra key', async () => {
    const yaml = `sink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\nreceiver:\n  private_key: keys/centre.key\n  extra_private_keys: [keys/old]\n`;
    const { base, file } = await withKeys('receive-keys', yaml);
    chmodSync(join(base, 'keys/centre.key'), 0o604);
    mkdirSync(join(base, 'keys/old')); // a directory where a key file belongs: exists, cannot be read as one
    const r = await cli('receive', '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:5:16 receiver.private_key: private key ${join(base, 'keys/centre.key')} is accessible by others`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:6:24 receiver.extra_private_keys[0]: cannot read key file ${join(base, 'keys/old')}`), r.stderr);
  });
});

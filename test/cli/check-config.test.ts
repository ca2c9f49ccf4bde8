/**
 * check-config after the schema: what the config names on this machine (key files and their modes, TLS and
 * password files) is checked, every problem reported at once with file:line:column and the setting (exit 2);
 * risky but legal settings are warnings (exit 0). The real CLI in a child process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(NODE, ['agent/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let keysReady: Promise<void>;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-check-'));
  // One set of keys, copied per case would be as good; the cases only point at these or at broken ones.
  keysReady = cli('keygen', '--dir', join(dir, 'keys')).then((r) => assert.equal(r.code, 0, r.stderr));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const AGENT = `device:
  id: gw-01
keys:
  device_private: keys/device.key
  centre_public: keys/centre.pub
sources:
  - type: system
    name: sys
sink:
  type: mqtt
  url: mqtt://127.0.0.1:1
`;

async function check(name: string, yaml: string, ...flags: string[]) {
  await keysReady;
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return { file, ...(await cli('check-config', ...flags, file)) };
}

describe('check-config: key files', () => {
  it('a low-order (all-zero) centre public key is an error naming the setting, at check-config and at run', async () => {
    await keysReady;
    writeFileSync(join(dir, 'zero.pub'), `x25519-public ${Buffer.alloc(32).toString('base64')}\n`);
    const yaml = AGENT.replace('centre_public: keys/centre.pub', 'centre_public: zero.pub');
    const checked = await check('zero-centre.yaml', yaml);
    assert.equal(checked.code, 2, checked.stderr);
    assert.match(checked.stderr, /zero-centre\.yaml:5:\d+ keys\.centre_public: .*not a usable X25519 public key/);
    const ran = await cli('run', '--config', checked.file);
    assert.equal(ran.code, 2, ran.stderr);
    assert.match(ran.stderr, /keys\.centre_public: .*not a usable X25519 public key/);
  });

  it('good keys: ok', async () => {
    const r = await check('good.yaml', AGENT);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: ok — device gw-01/);
    assert.equal(r.stderr, '');
  });

  it('a missing key, a key readable by others, a public key of the wrong size: all at once, each at its line', async () => {
    await keysReady;
    await cli('keygen', '--dir', join(dir, 'keys'), '--name', 'open-pair');
    chmodSync(join(dir, 'keys/open-pair.key'), 0o644);
    writeFileSync(join(dir, 'keys/short.pub'), 'x25519-public AAAAAAAA\n');
    const yaml = `${AGENT.replace('keys/device.key', 'keys/open-pair.key').replace('keys/centre.pub', 'keys/short.pub')}receiver:
  private_key: keys/absent.key
  devices:
    - id: gw-01
      public_keys: [keys/device.pub, keys/nope.pub]
`;
    const r = await check('keys.yaml', yaml);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    const k = (name: string) => join(dir, 'keys', name);
    for (const line of [
      `${r.file}:4:19 keys.device_private: private key ${k('open-pair.key')} is accessible by others (mode 644); run: chmod 600`,
      `${r.file}:5:18 keys.centre_public: ${k('short.pub')}: key must be 32 bytes`,
      `${r.file}:13:16 receiver.private_key: private key file ${k('absent.key')} does not exist`,
      `${r.file}:16:38 receiver.devices[0].public_keys[1]: public key file ${k('nope.pub')} does not exist`,
    ])
      assert.ok(r.stderr.includes(line), `missing: ${line}\n${r.stderr}`);
  });

  it('generate_if_missing: a missing pair is fine, and says so as a warning', async () => {
    const yaml = AGENT.replace('keys/device.key', 'fresh/device.key')
      .replace('keys/centre.pub', 'fresh/centre.pub')
      .replace('keys:\n', 'keys:\n  generate_if_missing: true\n');
    const r = await check('generate.yaml', yaml);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok \(2 warnings\)/);
    assert.match(r.stderr, /warning: .*:5:19 keys\.device_private: .*fresh\/device\.key does not exist yet; keys\.generate_if_missing creates a new pair/);
  });

  it('no device section (a centre-only config): the device keys are not asked for', async () => {
    const yaml =
      'sink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\nreceiver:\n  private_key: keys/centre.key\n  devices:\n    - id: gw-01\n      public_keys: [keys/device.pub]\n';
    const r = await check('centre.yaml', yaml);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('check-config: files the drivers name', () => {
  it('missing TLS and password files, a directory as CA: each at its line', async () => {
    mkdirSync(join(dir, 'ca-dir'), { recursive: true });
    const yaml = `${AGENT}  password_file: secrets/mqtt\n  tls:\n    ca: ca-dir\n    cert: tls/client.pem\nreceiver:\n  private_key: keys/centre.key\n  input:\n    type: pulsar\n    url: wss://pulsar:8443\n    token_file: secrets/token\n`;
    const r = await check('files.yaml', yaml);
    assert.equal(r.code, 2, r.stderr);
    for (const line of [
      `${r.file}:12:18 sink.password_file: password file ${join(dir, 'secrets/mqtt')} does not exist`,
      `${r.file}:14:9 sink.tls.ca: TLS CA file ${join(dir, 'ca-dir')} is not a regular file`,
      `${r.file}:15:11 sink.tls.cert: TLS certificate file ${join(dir, 'tls/client.pem')} does not exist`,
      `${r.file}:21:17 receiver.input.token_file: token file ${join(dir, 'secrets/token')} does not exist`,
    ])
      assert.ok(r.stderr.includes(line), `missing: ${line}\n${r.stderr}`);
  });

  it('a source TLS key readable by others is a warning, present files pass', async () => {
    mkdirSync(join(dir, 'tls'), { recursive: true });
    writeFileSync(join(dir, 'tls/ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    writeFileSync(join(dir, 'tls/key.pem'), '-----BEGIN PRIVATE KEY-----\n', { mode: 0o644 });
    chmodSync(join(dir, 'tls/key.pem'), 0o644);
    const yaml =
      `${AGENT}  - type: mqtt\n    name: site\n    url: mqtts://127.0.0.1:8883\n    topics: [{ filter: "a/#" }]\n    tls:\n      ca: tls/ca.pem\n      key: tls/key.pem\n`.replace(
        'sink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n',
        '',
      );
    const r = await check('tls-ok.yaml', `${yaml}sink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*:15:12 sources\[1\]\.tls\.key: TLS private key file .*tls\/key\.pem is readable by others \(mode 644\)/);
  });

  it("the embedded broker's password file is checked like the drivers' (an error at its line)", async () => {
    const r = await check('broker-pw.yaml', `${AGENT}broker:\n  embedded: true\n  username: edge\n  password_file: secrets/broker\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${r.file}:15:18 broker.password_file: embedded broker password file ${join(dir, 'secrets/broker')} does not exist`), r.stderr);
  });

  it("fleet.broker's password file and TLS files are checked like the drivers', and `run` refuses them (exit 2 at their lines)", async () => {
    const fleet = `fleet:\n  enabled: true\n  broker:\n    url: mqtts://127.0.0.1:8883\n    username: gw-01\n    password_file: secrets/fleet\n    tls:\n      ca: tls/fleet-ca.pem\n  trust: { root_keys: [${'A'.repeat(43)}] }\n`;
    const r = await check('fleet-files.yaml', `${AGENT}${fleet}`);
    assert.equal(r.code, 2, r.stderr);
    const lines = [
      `${r.file}:17:20 fleet.broker.password_file: fleet broker password file ${join(dir, 'secrets/fleet')} does not exist`,
      `${r.file}:19:11 fleet.broker.tls.ca: TLS CA file ${join(dir, 'tls/fleet-ca.pem')} does not exist`,
    ];
    for (const line of lines) assert.ok(r.stderr.includes(line), `missing: ${line}\n${r.stderr}`);
    const ran = await cli('run', '--config', r.file);
    assert.equal(ran.code, 2, ran.stderr);
    for (const line of lines) assert.ok(ran.stderr.includes(line.replace(`${r.file}:`, '')), `run, missing: ${line}\n${ran.stderr}`);
    // Remote control off: check-config still reports what the file names.
    const off = await check('fleet-off.yaml', `${AGENT}${fleet.replace('enabled: true', 'enabled: false')}`);
    assert.equal(off.code, 2, off.stderr);
    assert.ok(off.stderr.includes('fleet.broker.password_file'), off.stderr);
  });

  it('fleet.broker.password_env not set: a warning at check-config, an error at run', async () => {
    const fleet = `fleet:\n  enabled: true\n  broker: { url: mqtt://127.0.0.1:1, username: gw-01, password_env: EDGE_TEST_UNSET_FLEET }\n  trust: { root_keys: [${'A'.repeat(43)}] }\n`;
    const r = await check('fleet-env.yaml', `${AGENT}${fleet}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /fleet\.broker\.password_env: environment variable EDGE_TEST_UNSET_FLEET \(the fleet broker password\) is not set here/);
    const ran = await cli('run', '--config', r.file);
    assert.equal(ran.code, 2, ran.stderr);
    assert.match(ran.stderr, /fleet\.broker\.password_env: environment variable EDGE_TEST_UNSET_FLEET \(the fleet broker password\) is not set/);
  });

  it('an environment variable named for a secret and not set is a warning here (the service may have it)', async () => {
    const r = await check(
      'env.yaml',
      `${AGENT}  username: edge\n  password_env: EDGE_TEST_UNSET_PASSWORD\nbroker:\n  embedded: true\n  username: edge\n  password_env: EDGE_TEST_UNSET_BROKER\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok \(2 warnings\)/);
    for (const line of [
      `warning: ${r.file}:13:17 sink.password_env: environment variable EDGE_TEST_UNSET_PASSWORD (the password) is not set here`,
      `warning: ${r.file}:17:17 broker.password_env: environment variable EDGE_TEST_UNSET_BROKER (the embedded broker password) is not set here`,
    ])
      assert.ok(r.stderr.includes(line), `missing: ${line}\n${r.stderr}`);
  });

  it('--schema-only skips what the config names on this machine', async () => {
    const r = await check('schema-only.yaml', `${AGENT}  password_file: secrets/mqtt\n`.replace('keys/device.key', 'keys/none.key'), '--schema-only');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok/);
  });
});

describe('check-config: URLs and warnings', () => {
  it('an unparsable URL is an error at its line', async () => {
    const r = await check('url.yaml', AGENT.replace('mqtt://127.0.0.1:1', 'mqtt://127.0.0.1:port'));
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${r.file}:11:8 sink.url: not a parsable URL`), r.stderr);
  });

  it('the embedded broker on a non-loopback address is a warning, exit 0', async () => {
    const r = await check('broker.yaml', `${AGENT}broker:\n  embedded: true\n  host: 0.0.0.0\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok \(1 warning\)/);
    assert.ok(r.stderr.includes(`edge-agent: warning: ${r.file}:14:9 broker.host: the embedded broker listens on 0.0.0.0`), r.stderr);
  });

  it('warnings are printed beside errors', async () => {
    const r = await check('both.yaml', `${AGENT.replace('keys/centre.pub', 'keys/gone.pub')}broker:\n  embedded: true\n  host: 0.0.0.0\n`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /warning: .*broker\.host/);
    assert.match(r.stderr, /keys\.centre_public: public key file .*gone\.pub does not exist/);
  });
});

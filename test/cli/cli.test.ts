import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// The real CLI in a child process: exit codes and the split between stdout and stderr are part of its contract.
const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(NODE, ['agent/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** A stack trace line as node prints them; users should see a message, not these. */
const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = `device:
  id: gw-01
sources:
  - type: system
    name: sys
  - type: synthetic
    name: load
sink:
  type: mqtt
  url: mqtt://127.0.0.1:1
`;

describe('edge-agent CLI', () => {
  it('--version prints the package version', async () => {
    const r = await cli('--version');
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), PACKAGE_VERSION);
  });

  it('--help exits 0 and lists the commands', async () => {
    const r = await cli('--help');
    assert.equal(r.code, 0);
    for (const command of ['run', 'receive', 'check-config', 'keygen']) assert.match(r.stdout, new RegExp(`edge-agent ${command}`));
  });

  it('an unknown command exits 2 with a message', async () => {
    const r = await cli('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  it('check-config on a good file exits 0 with a summary on stdout', async () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, GOOD);
    // check-config also checks the key files the config names (keys/device.key and keys/centre.pub by default).
    assert.equal((await cli('keygen', '--dir', join(dir, 'keys'))).code, 0);
    const r = await cli('check-config', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok/);
    assert.match(r.stdout, /device gw-01/);
    assert.match(r.stdout, /sys \(system\), load \(synthetic\)/);
    assert.match(r.stdout, /sink: mqtt/);
  });

  it('check-config on a bad file exits 2 with file:line:col path: message on stderr', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `${GOOD.replace('    name: sys\n', '    name: sys\n    interval: 10 parsecs\n')}queue:\n  full_policy: explode\n`);
    const r = await cli('check-config', file);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(`${file}:6:15 sources[0].interval: expected a duration`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:13:16 queue.full_policy: `), r.stderr);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  it('check-config on a missing file exits 2 naming it', async () => {
    const file = join(dir, 'nowhere.yaml');
    const r = await cli('check-config', file);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(file), r.stderr);
  });

  it('keygen writes 0600 private keys and public keys, and refuses to overwrite', async () => {
    const keys = join(dir, 'keygen');
    const r = await cli('keygen', '--dir', keys);
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['device', 'centre']) {
      assert.equal(statSync(join(keys, `${name}.key`)).mode & 0o777, 0o600);
      assert.match(readFileSync(join(keys, `${name}.key`), 'utf8'), /^x25519-private \S{44}\n$/);
      assert.match(readFileSync(join(keys, `${name}.pub`), 'utf8'), /^x25519-public \S{44}\n$/);
    }
    const before = readFileSync(join(keys, 'device.key'), 'utf8');

    const again = await cli('keygen', '--dir', keys);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /refusing to overwrite/);
    assert.equal(readFileSync(join(keys, 'device.key'), 'utf8'), before, 'the existing key is untouched');
  });

  it('keygen writes nothing when any one of the keys exists already', async () => {
    const keys = join(dir, 'keygen-partial');
    assert.equal((await cli('keygen', '--dir', keys, '--name', 'centre')).code, 0);
    const r = await cli('keygen', '--dir', keys);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(join(keys, 'centre.key')), r.stderr);
    assert.throws(() => statSync(join(keys, 'device.key')), /ENOENT/, 'no half-written pair of new keys');
  });

  it('run with an invalid config exits 2 without a stack trace', async () => {
    const file = join(dir, 'run-bad.yaml');
    writeFileSync(file, `${GOOD}sender:\n  max_in_flight: 0\n`);
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(`${file}:12:18 sender.max_in_flight:`), r.stderr);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  it('run with a config that cannot run (no sink) exits 2 naming what is missing', async () => {
    const file = join(dir, 'run-nosink.yaml');
    writeFileSync(file, 'device:\n  id: gw\nsources:\n  - type: system\n    name: s\n');
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /sink: required/);
  });

  // Exit 2 since issue 10 (a key file is configuration, reported with the setting that names it); it was 1.
  it('run refuses a private key readable by others: exit 2, names the file and chmod 600', async () => {
    const base = join(dir, 'perm');
    assert.equal((await cli('keygen', '--dir', join(base, 'keys'))).code, 0);
    const key = join(base, 'keys', 'device.key');
    chmodSync(key, 0o644);
    const file = join(base, 'agent.yaml');
    writeFileSync(file, GOOD);
    const r = await cli('run', '--config', file);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(key), r.stderr);
    assert.match(r.stderr, /chmod 600/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });
});

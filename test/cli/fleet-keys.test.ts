/**
 * The operator's key commands as a user runs them (`node agent/cli/main.ts fleet …` in a child process), and
 * what they write checked by the device's side: a TrustChain anchored on the printed fleet.trust snippet.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../../agent/app.ts';
import { main } from '../../agent/cli/main.ts';
import { isAgentError } from '../../agent/errors.ts';
import { isRefusal, keyIdOf, loadPublicKeyFile, MemoryTrustStore, TrustChain } from '../../agent/trust/index.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function fleet(...args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(NODE, [join(ROOT, 'agent/cli/main.ts'), 'fleet', ...args], { cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<Result> {
  const result = await fleet(...args);
  assert.equal(result.code, 0, `fleet ${args.join(' ')}: ${result.stderr}`);
  return result;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-fleet-keys-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const json = (path: string) => JSON.parse(readFileSync(join(dir, path), 'utf8'));

describe('edge-agent fleet (keys and signing)', () => {
  let anchor: { keys: string[]; threshold: number };

  it('root init writes 3 keys (0600), root version 1, and prints the fleet.trust config', async () => {
    const r = await ok('root', 'init', '--dir', 'roots', '--keys', '3', '--threshold', '2');
    const trust = (parse(r.stdout) as { fleet: { trust: { root_keys: string[]; threshold: number } } }).fleet.trust;
    anchor = { keys: trust.root_keys, threshold: trust.threshold };
    assert.equal(anchor.threshold, 2);
    assert.equal(anchor.keys.length, 3);
    // What it prints is a config section the agent takes as it is.
    const loaded = parseConfig(
      `device:\n  id: gw-01\nsink:\n  type: mqtt\n  url: mqtt://127.0.0.1:1\n${r.stdout.replace('fleet:', 'fleet:\n  enabled: true')}`,
      'printed.yaml',
      dir,
    );
    assert.deepEqual(loaded.config.fleet.trust, { root_keys: anchor.keys, threshold: 2 });
    assert.equal(statSync(join(dir, 'roots')).mode & 0o777, 0o700);
    for (const i of [1, 2, 3]) {
      assert.equal(statSync(join(dir, `roots/root-${i}.key`)).mode & 0o777, 0o600);
      assert.equal(loadPublicKeyFile(join(dir, `roots/root-${i}.pub`), 'root').public, anchor.keys[i - 1]);
    }
    assert.match(r.stderr, /root-1\.key: root key id [0-9a-f]{16}/);
    const again = await fleet('root', 'init', '--dir', 'roots', '--keys', '3', '--threshold', '2');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /root\.json.*exist already/);
  });

  it('operator create, certify with 2 root keys, sign a config: a device verifies it', async () => {
    await ok('operator', 'create', '--name', 'alice', '--out', 'ops/alice.key');
    assert.equal(statSync(join(dir, 'ops/alice.key')).mode & 0o777, 0o600);
    await ok(
      'operator',
      'certify',
      '--root-key',
      'roots/root-1.key',
      '--root-key',
      'roots/root-3.key',
      '--operator',
      'ops/alice.pub',
      '--expires',
      '90d',
      '--out',
      'ops/alice.cert',
    );
    writeFileSync(join(dir, 'site.yaml'), 'log:\n  level: debug\nsources:\n  - name: load\n    type: synthetic\n');
    const r = await ok(
      'sign',
      '--key',
      'ops/alice.key',
      '--cert',
      'ops/alice.cert',
      '--kind',
      'config',
      '--target',
      'group:site-a',
      '--version',
      '3',
      'site.yaml',
    );
    const chain = new TrustChain(anchor, new MemoryTrustStore());
    const verified = chain.verify(r.stdout, 'config', new Date());
    assert.deepEqual(verified.document.target, { group: 'site-a' });
    assert.equal(verified.document.version, 3);
    assert.deepEqual(verified.document.config, { log: { level: 'debug' }, sources: [{ name: 'load', type: 'synthetic' }] });
    assert.deepEqual(verified.signer, { keyId: keyIdOf(loadPublicKeyFile(join(dir, 'ops/alice.pub')).public), name: 'alice' });
    const expiresIn = Date.parse(verified.document.expires) - Date.now();
    assert.ok(expiresIn > 6.9 * 86_400_000 && expiresIn <= 7 * 86_400_000, `a config expires in 7 days by default, not ${expiresIn} ms`);
  });

  it('sign a command to --out: a device verifies it, with a fresh nonce each time', async () => {
    const args = ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice.cert', '--kind', 'command', '--target', 'device:gw-01', '--action', 'log.level'];
    await ok(...args, '--args', '{"level":"debug"}', '--out', 'cmd1.json');
    await ok(...args, '--args', '{"level":"debug"}', '--out', 'cmd2.json');
    const chain = new TrustChain(anchor, new MemoryTrustStore());
    const one = chain.verify(json('cmd1.json'), 'command', new Date()).document;
    const two = chain.verify(json('cmd2.json'), 'command', new Date()).document;
    assert.equal(one.action, 'log.level');
    assert.deepEqual(one.args, { level: 'debug' });
    assert.deepEqual(one.target, { device: 'gw-01' });
    assert.notEqual(one.nonce, two.nonce);
    const tooLong = await fleet(...args, '--expires', '2h');
    assert.equal(tooLong.code, 2);
    assert.match(tooLong.stderr, /at most 1h/);
  });

  it('root rotate 1 → 2 → 3: the chain file takes a device from version 1 to 3, and certificates follow', async () => {
    await ok('root', 'rotate', '--dir', 'roots', '--new-keys', '2', '--keep', 'roots/root-1.key', '--threshold', '2');
    await ok('root', 'rotate', '--dir', 'roots', '--new-keys', '1', '--threshold', '1');
    const chain = new TrustChain(anchor, new MemoryTrustStore());
    // Version 3 alone is refused: the device must see version 2 first.
    assert.throws(
      () => chain.acceptRoot(json('roots/root.json'), new Date()),
      (err) => isRefusal(err, 'unknown_key'),
    );
    assert.deepEqual(chain.acceptRoot(readFileSync(join(dir, 'roots/root-chain.json')), new Date()), { version: 3, changed: true });
    assert.equal(chain.root.threshold, 1);
    // The old certificate no longer chains; one by version 3's key does.
    const oldSigned = await ok(
      'sign',
      '--key',
      'ops/alice.key',
      '--cert',
      'ops/alice.cert',
      '--kind',
      'config',
      '--target',
      'device:gw-01',
      '--version',
      '1',
      'site.yaml',
    );
    assert.throws(
      () => chain.verify(oldSigned.stdout, 'config', new Date()),
      (err) => isRefusal(err, 'unknown_key'),
    );
    await ok('operator', 'certify', '--root-key', 'roots/root-v3-1.key', '--operator', 'ops/alice.pub', '--expires', '30d', '--out', 'ops/alice3.cert');
    const signed = await ok(
      'sign',
      '--key',
      'ops/alice.key',
      '--cert',
      'ops/alice3.cert',
      '--kind',
      'config',
      '--target',
      'device:gw-01',
      '--version',
      '1',
      'site.yaml',
    );
    assert.equal(chain.verify(signed.stdout, 'config', new Date()).certificate.root_version, 3);
    // Root keys of an older version cannot certify for the current one.
    const stale = await fleet(
      'operator',
      'certify',
      '--root-key',
      'roots/root-2.key',
      '--root',
      'roots/root.json',
      '--operator',
      'ops/alice.pub',
      '--expires',
      '1d',
      '--out',
      'x.cert',
    );
    assert.equal(stale.code, 2);
    assert.match(stale.stderr, /root-2\.key.*is not a key of root version 3/);
  });

  it('revoke: the device refuses the operator from then on; --previous carries keys over', async () => {
    const signed = await ok(
      'sign',
      '--key',
      'ops/alice.key',
      '--cert',
      'ops/alice3.cert',
      '--kind',
      'config',
      '--target',
      'device:gw-01',
      '--version',
      '2',
      'site.yaml',
    );
    await ok('operator', 'create', '--name', 'bob', '--out', 'ops/bob.key');
    await ok('revoke', '--root-key', 'roots/root-v3-1.key', '--key', 'ops/alice.pub', '--version', '1', '--out', 'rev1.json');
    await ok(
      'revoke',
      '--root-key',
      'roots/root-v3-1.key',
      '--previous',
      'rev1.json',
      '--key',
      keyIdOf(loadPublicKeyFile(join(dir, 'ops/bob.pub')).public),
      '--out',
      'rev2.json',
    );
    const chain = new TrustChain(anchor, new MemoryTrustStore());
    chain.acceptRoot(readFileSync(join(dir, 'roots/root-chain.json')), new Date());
    assert.ok(chain.verify(signed.stdout, 'config', new Date()));
    assert.deepEqual(chain.acceptRevocations(json('rev2.json'), new Date()), { version: 2, changed: true });
    assert.equal(chain.revocations?.keys.size, 2);
    assert.throws(
      () => chain.verify(signed.stdout, 'config', new Date()),
      (err) => isRefusal(err, 'revoked_key'),
    );
    assert.throws(
      () => chain.acceptRevocations(json('rev1.json'), new Date()),
      (err) => isRefusal(err, 'older_version'),
    );
  });

  it('usage errors exit 2 and name what is wrong; a readable private key exits 1 naming the file', async () => {
    const r = await fleet('root', 'init', '--dir', 'r2', '--keys', '2', '--threshold', '3');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^edge-agent: --threshold "3": expected a whole number from 1 to 2\n$/);
    chmodSync(join(dir, 'ops/alice.key'), 0o644);
    const readable = await fleet(
      'sign',
      '--key',
      'ops/alice.key',
      '--cert',
      'ops/alice3.cert',
      '--kind',
      'command',
      '--target',
      'device:a',
      '--action',
      'flush',
    );
    chmodSync(join(dir, 'ops/alice.key'), 0o600);
    assert.equal(readable.code, 1);
    assert.match(readable.stderr, /ops\/alice\.key is accessible by others.*chmod 600/);
    assert.equal(readable.stdout, '');
  });

  it('more usage errors (parsed and run in this process, as the CLI does): each names the option or the file', async () => {
    // Child processes cost seconds each on a loaded machine; the exit code of a USAGE error is checked above.
    process.chdir(dir);
    writeFileSync(join(dir, 'forbidden.yaml'), 'device:\n  id: other\n');
    writeFileSync(join(dir, 'trust.yaml'), 'fleet:\n  trust:\n    threshold: 1\n');
    const cases: [string[], RegExp][] = [
      [['root', 'init', '--dir', 'r2', '--keys', '2', '--threshold', '1', '--expires', 'soon'], /--expires "soon"/],
      [['root', 'init', '--dir', 'r2', '--keys', '0', '--threshold', '1'], /--keys "0"/],
      [['root', 'rotate', '--dir', 'roots', '--threshold', '1'], /the new root needs keys/],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'config', '--target', 'site-a', '--version', '1', 'site.yaml'],
        /--target "site-a"/,
      ],
      [
        ['sign', '--key', 'ops/bob.key', '--cert', 'ops/alice3.cert', '--kind', 'config', '--target', 'device:a', '--version', '1', 'site.yaml'],
        /alice3\.cert certifies key id/,
      ],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'config', '--target', 'device:a', '--version', '1', 'nope.yaml'],
        /cannot read nope\.yaml/,
      ],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'site.yaml', '--kind', 'config', '--target', 'device:a', '--version', '1', 'site.yaml'],
        /site\.yaml is not a signed operator-cert/,
      ],
      [['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'config', '--target', 'device:a', 'site.yaml'], /--version N is needed/],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'config', '--target', 'device:a', '--version', '1', 'forbidden.yaml'],
        /forbidden\.yaml: device\.id cannot be set from afar/,
      ],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'config', '--target', 'device:a', '--version', '1', 'trust.yaml'],
        /trust\.yaml: fleet\.trust cannot/,
      ],
      [['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'policy', '--target', 'device:a'], /--kind "policy"/],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'command', '--target', 'group:a', '--action', 'flush'],
        /a command goes to one device/,
      ],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'command', '--target', 'device:a', '--action', 'x', '--args', '[1]'],
        /--args must be a JSON object/,
      ],
      [
        ['sign', '--key', 'ops/alice.key', '--cert', 'ops/alice3.cert', '--kind', 'command', '--target', 'device:a', '--action', 'x', '--expires', '2h'],
        /at most 1h/,
      ],
      [['revoke', '--root-key', 'roots/root-v3-1.key', '--previous', 'rev2.json', '--version', '2', '--out', 'x.json'], /not above version 2/],
      [['revoke', '--root-key', 'roots/root-v3-1.key', '--key', 'abc', '--version', '9', '--out', 'x.json'], /cannot read key file abc/],
      [['revoke', '--root-key', 'roots/root-v3-1.key', '--key', '0123456789abcdef', '--out', 'x.json'], /give --version N/],
      [
        ['operator', 'certify', '--root-key', 'roots/root-v3-1.key', '--operator', 'ops/alice.pub', '--out', 'x.cert'],
        /required option "--expires <TIME>" not specified/,
      ],
      [
        ['operator', 'certify', '--root-key', 'ops/alice.key', '--operator', 'ops/alice.pub', '--expires', '1d', '--out', 'x.cert'],
        /no .*ops\/root\.json beside the root key/,
      ],
      [
        ['operator', 'certify', '--root-key', 'roots/root-v3-1.key', '--operator', 'roots/root-1.pub', '--expires', '1d', '--out', 'x.cert'],
        /root-1\.pub is a root key, not an operator key/,
      ],
    ];
    for (const [args, message] of cases) {
      await assert.rejects(main(['fleet', ...args]), (err: unknown) => {
        assert.ok(isAgentError(err), `${args.join(' ')}: ${String(err)}`);
        assert.ok(err.code === 'USAGE' || err.code === 'KEY_INVALID' || err.code === 'KEY_UNREADABLE', `${args.join(' ')}: ${err.code}`);
        assert.match(err.message, message);
        return true;
      });
    }
    assert.equal(existsSync(join(dir, 'x.json')), false);
    assert.equal(existsSync(join(dir, 'r2')), false, 'a refused root init wrote nothing');
  });
});

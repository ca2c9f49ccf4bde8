/** What the device keeps (FileTrustStore) and the key files: modes, atomic writes, refusals naming the file. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ErrorCode, isAgentError } from '../../agent/errors.ts';
import {
  FileTrustStore,
  generatePair,
  keyIdOf,
  loadPrivateKeyFile,
  loadPublicKeyFile,
  pairFromSeed,
  signEnvelope,
  TrustChain,
  writeKeyFiles,
} from '../../agent/trust/index.ts';
import { NOW, pairs, revocationsDoc, rootDoc } from './fixtures.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-trust-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function agentError(code: ErrorCode, inMessage?: RegExp) {
  return (err: unknown) => {
    assert.ok(isAgentError(err), `not an AgentError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (inMessage) assert.match(err.message, inMessage);
    return true;
  };
}

describe('FileTrustStore', () => {
  it('keeps the accepted root and revocations across a restart, 0600 files in a 0700 directory, no temp file left', () => {
    const stateDir = join(dir, 'state', 'remote');
    const roots = pairs(2);
    const anchor = { keys: roots.map((k) => k.public), threshold: 2 };
    const chain = new TrustChain(anchor, new FileTrustStore(stateDir));
    const next = pairs(2);
    chain.acceptRoot(signEnvelope('root', rootDoc(2, next, 1), [...roots, ...next]), NOW);
    chain.acceptRevocations(signEnvelope('revocations', revocationsDoc(5, ['0123456789abcdef']), next.slice(0, 1)), NOW);
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(stateDir).sort(), ['revocations.json', 'root.json']);
    for (const name of ['root.json', 'revocations.json']) assert.equal(statSync(join(stateDir, name)).mode & 0o777, 0o600);
    const again = new TrustChain(anchor, new FileTrustStore(stateDir));
    assert.equal(again.root.version, 2);
    assert.equal(again.root.threshold, 1);
    assert.equal(again.revocations?.version, 5);
    assert.ok(again.revocations?.keys.has('0123456789abcdef'));
  });

  it('a device given other root keys in its config starts again from them', () => {
    const stateDir = join(dir, 'reanchored');
    const roots = pairs(1);
    const chain = new TrustChain({ keys: [roots[0]!.public], threshold: 1 }, new FileTrustStore(stateDir));
    const next = pairs(1);
    chain.acceptRoot(signEnvelope('root', rootDoc(2, next, 1), [...roots, ...next]), NOW);
    const other = new TrustChain({ keys: [generatePair().public], threshold: 1 }, new FileTrustStore(stateDir));
    assert.equal(other.root.version, 1);
  });

  it('refuses to start on a damaged stored root rather than fall back to retired keys', () => {
    const stateDir = join(dir, 'damaged');
    const roots = pairs(1);
    const anchor = { keys: [roots[0]!.public], threshold: 1 };
    const next = pairs(1);
    new TrustChain(anchor, new FileTrustStore(stateDir)).acceptRoot(signEnvelope('root', rootDoc(2, next, 1), [...roots, ...next]), NOW);
    const path = join(stateDir, 'root.json');
    const stored = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...stored, document: { ...stored.document, threshold: 'one' } }));
    assert.throws(() => new TrustChain(anchor, new FileTrustStore(stateDir)), agentError('TRUST_STORE_FAILED', /stored root/));
    writeFileSync(path, '{"anchor":');
    assert.throws(() => new TrustChain(anchor, new FileTrustStore(stateDir)), agentError('TRUST_STORE_FAILED', /not JSON/));
  });

  it('refuses names that would leave its directory', () => {
    const store = new FileTrustStore(join(dir, 'names'));
    assert.throws(() => store.save('../x', '{}'), agentError('TRUST_STORE_FAILED'));
    assert.equal(store.load('absent'), undefined);
  });
});

describe('Ed25519 key files', () => {
  it('writes the private key 0600 and the public key 0644, and both load back', () => {
    const oldUmask = process.umask(0o000);
    try {
      const pair = generatePair();
      writeKeyFiles(join(dir, 'k', 'root-1.key'), join(dir, 'k', 'root-1.pub'), 'root', 'root-1', pair);
      assert.equal(statSync(join(dir, 'k', 'root-1.key')).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'k', 'root-1.pub')).mode & 0o777, 0o644);
      assert.deepEqual(loadPrivateKeyFile(join(dir, 'k', 'root-1.key'), 'root').private, pair.private);
      assert.deepEqual(loadPublicKeyFile(join(dir, 'k', 'root-1.pub'), 'root').public, pair.public);
      assert.throws(
        () => writeKeyFiles(join(dir, 'k', 'root-1.key'), join(dir, 'k', 'x.pub'), 'root', 'x', generatePair()),
        agentError('USAGE', /exists already/),
      );
    } finally {
      process.umask(oldUmask);
    }
  });

  it('refuses a private key others can read, a public key given as private, the wrong role, and halves that differ', () => {
    const pair = generatePair();
    const key = join(dir, 'op.key');
    const pub = join(dir, 'op.pub');
    writeKeyFiles(key, pub, 'operator', 'op', pair);
    chmodSync(key, 0o640);
    assert.throws(() => loadPrivateKeyFile(key), agentError('KEY_PERMISSIONS', new RegExp(`${key}.*chmod 600`)));
    chmodSync(key, 0o600);
    assert.throws(() => loadPrivateKeyFile(pub), agentError('KEY_INVALID', new RegExp(`${pub} is not an Ed25519 private key file`)));
    assert.throws(() => loadPrivateKeyFile(key, 'root'), agentError('KEY_INVALID', /is an operator key, not a root key/));
    const mixed = join(dir, 'mixed.key');
    writeFileSync(mixed, JSON.stringify({ ...JSON.parse(readFileSync(key, 'utf8')), public: generatePair().public }), { mode: 0o600 });
    assert.throws(() => loadPrivateKeyFile(mixed), agentError('KEY_INVALID', /not the private key's/));
    assert.throws(() => loadPublicKeyFile(join(dir, 'absent.pub')), agentError('KEY_UNREADABLE', /absent\.pub/));
  });

  it('key id: the first 16 hex characters of SHA-256 of the raw public key (RFC 8032 test 1)', () => {
    const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    const pair = pairFromSeed(seed);
    assert.equal(Buffer.from(pair.public, 'base64url').toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    assert.equal(keyIdOf(pair.public), '21fe31dfa154a261');
  });
});

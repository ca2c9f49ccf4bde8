import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sodium as loadSodium } from '../../agent/envelope/sodium.ts';
import { isAgentError, type ErrorCode } from '../../agent/errors.ts';
import { centreReceiveKey, deviceSendKey, keyId, loadPrivateKey, loadPublicKey, writeKeyPair } from '../../agent/keys/keys.ts';

const na = await loadSodium();
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-agent-keys-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function agentError(code: ErrorCode, ...inMessage: string[]) {
  return (err: unknown) => {
    assert.ok(isAgentError(err), `not an AgentError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const text of inMessage) assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(text)}`);
    return true;
  };
}

test('keygen writes the private key 0600, the public key beside it, and the pair loads back', () => {
  // A permissive umask must not widen the private key's mode.
  const oldUmask = process.umask(0o000);
  try {
    const { privatePath, publicPath } = writeKeyPair(na, join(dir, 'gen', 'device'));
    assert.equal(privatePath, join(dir, 'gen', 'device.key'));
    assert.equal(publicPath, join(dir, 'gen', 'device.pub'));
    assert.equal(statSync(privatePath).mode & 0o777, 0o600);
    assert.match(readFileSync(privatePath, 'utf8'), /^x25519-private [A-Za-z0-9+/]{43}=\n$/);
    assert.match(readFileSync(publicPath, 'utf8'), /^x25519-public [A-Za-z0-9+/]{43}=\n$/);
    const pair = loadPrivateKey(na, privatePath);
    assert.deepEqual(loadPublicKey(publicPath), pair.publicKey);
    assert.deepEqual(na.crypto_scalarmult_base(pair.privateKey), pair.publicKey);
  } finally {
    process.umask(oldUmask);
  }
});

test('keygen refuses to overwrite an existing private key and leaves it as it was', () => {
  const base = join(dir, 'keep', 'centre');
  const { privatePath, publicPath } = writeKeyPair(na, base);
  const privateBefore = readFileSync(privatePath, 'utf8');
  const publicBefore = readFileSync(publicPath, 'utf8');
  assert.throws(() => writeKeyPair(na, base), agentError('USAGE', privatePath, 'refusing to overwrite'));
  assert.equal(readFileSync(privatePath, 'utf8'), privateBefore);
  assert.equal(readFileSync(publicPath, 'utf8'), publicBefore);
});

for (const mode of [0o644, 0o640, 0o604, 0o660]) {
  test(`loadPrivateKey refuses a private key of mode ${mode.toString(8)}, naming the path and the chmod fix`, () => {
    const { privatePath } = writeKeyPair(na, join(dir, `mode-${mode.toString(8)}`, 'device'));
    chmodSync(privatePath, mode);
    assert.throws(() => loadPrivateKey(na, privatePath), agentError('KEY_PERMISSIONS', privatePath, `chmod 600 ${privatePath}`, mode.toString(8)));
    chmodSync(privatePath, 0o600);
    assert.equal(loadPrivateKey(na, privatePath).privateKey.length, 32);
  });
}

test('loadPrivateKey accepts owner-only modes other than 0600 (0400, 0700): nobody else can read them', () => {
  for (const mode of [0o400, 0o700]) {
    const { privatePath } = writeKeyPair(na, join(dir, `owner-${mode.toString(8)}`, 'device'));
    chmodSync(privatePath, mode);
    assert.equal(loadPrivateKey(na, privatePath).privateKey.length, 32);
  }
});

test('a public key file given where a private key is expected fails with KEY_INVALID, whatever its mode', () => {
  const { publicPath } = writeKeyPair(na, join(dir, 'swap', 'device'));
  // As keygen wrote it (0644): the error names the real problem, not the mode.
  assert.throws(() => loadPrivateKey(na, publicPath), agentError('KEY_INVALID', publicPath, 'x25519-private'));
  chmodSync(publicPath, 0o600);
  assert.throws(() => loadPrivateKey(na, publicPath), agentError('KEY_INVALID', publicPath));
});

test('a private key file given where a public key is expected fails with KEY_INVALID', () => {
  const { privatePath } = writeKeyPair(na, join(dir, 'swap2', 'centre'));
  assert.throws(() => loadPublicKey(privatePath), agentError('KEY_INVALID', privatePath, 'x25519-public'));
});

test('malformed and missing key files are refused with their own codes', () => {
  const bad = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const short = Buffer.alloc(31, 7).toString('base64');
  const good = Buffer.alloc(32, 7).toString('base64');
  assert.throws(() => loadPrivateKey(na, bad('short.key', `x25519-private ${short}\n`)), agentError('KEY_INVALID', '32 bytes'));
  assert.throws(() => loadPrivateKey(na, bad('junk.key', `x25519-private ${good.slice(0, -2)}!=\n`)), agentError('KEY_INVALID'));
  assert.throws(() => loadPrivateKey(na, bad('extra.key', `x25519-private ${good} more\n`)), agentError('KEY_INVALID'));
  assert.throws(() => loadPrivateKey(na, bad('empty.key', '')), agentError('KEY_INVALID'));
  assert.equal(loadPrivateKey(na, bad('ok.key', `x25519-private ${good}\n`)).privateKey[0], 7);
  assert.throws(() => loadPrivateKey(na, join(dir, 'absent.key')), agentError('KEY_UNREADABLE', join(dir, 'absent.key')));
  assert.throws(() => loadPublicKey(join(dir, 'absent.pub')), agentError('KEY_UNREADABLE', join(dir, 'absent.pub')));
});

test('crypto_kx session keys agree between device and centre, and differ for any other pair', () => {
  const device = na.crypto_kx_keypair();
  const centre = na.crypto_kx_keypair();
  const other = na.crypto_kx_keypair();
  const tx = deviceSendKey(na, device, centre.publicKey);
  assert.equal(tx.length, 32);
  assert.deepEqual(centreReceiveKey(na, centre, device.publicKey), tx);
  assert.notDeepEqual(centreReceiveKey(na, centre, other.publicKey), tx);
  assert.notDeepEqual(centreReceiveKey(na, other, device.publicKey), tx);
  assert.notDeepEqual(deviceSendKey(na, device, other.publicKey), tx);
  // The centre's sending direction is a different key: nothing sealed by the centre opens as a device batch.
  assert.notDeepEqual(na.crypto_kx_server_session_keys(centre.publicKey, centre.privateKey, device.publicKey).sharedTx, tx);
});

test('the same keys written to files and loaded back give the same session key', () => {
  const device = writeKeyPair(na, join(dir, 'pair', 'device'));
  const centre = writeKeyPair(na, join(dir, 'pair', 'centre'));
  const tx = deviceSendKey(na, loadPrivateKey(na, device.privatePath), loadPublicKey(centre.publicPath));
  const rx = centreReceiveKey(na, loadPrivateKey(na, centre.privatePath), loadPublicKey(device.publicPath));
  assert.deepEqual(rx, tx);
});

test('keyId is the first 8 bytes of SHA-256 of the public key', () => {
  for (let i = 0; i < 5; i++) {
    const { publicKey } = na.crypto_kx_keypair();
    assert.deepEqual(Buffer.from(keyId(publicKey)), createHash('sha256').update(publicKey).digest().subarray(0, 8));
  }
  // A known answer (checked with a separate SHA-256 tool): the device key of the test vectors.
  const vectorDevice = Buffer.from('0e0216223f147143d32615a91189c288c1728cba3cc5f9f621b1026e03d83129', 'hex');
  assert.equal(Buffer.from(keyId(vectorDevice)).toString('hex'), '4bc447d530c40447');
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x25519 } from '../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';
import { isAgentError, type ErrorCode } from '../../agent/errors.ts';
import { centreReceiveKey, deviceSendKey, keyId, loadPrivateKey, loadPublicKey, loadUsablePublicKey, writeKeyPair } from '../../agent/keys/keys.ts';

const reference = await libsodiumReference();
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
    const { privatePath, publicPath } = writeKeyPair(x25519, join(dir, 'gen', 'device'));
    assert.equal(privatePath, join(dir, 'gen', 'device.key'));
    assert.equal(publicPath, join(dir, 'gen', 'device.pub'));
    assert.equal(statSync(privatePath).mode & 0o777, 0o600);
    assert.match(readFileSync(privatePath, 'utf8'), /^x25519-private [A-Za-z0-9+/]{43}=\n$/);
    assert.match(readFileSync(publicPath, 'utf8'), /^x25519-public [A-Za-z0-9+/]{43}=\n$/);
    const pair = loadPrivateKey(x25519, privatePath);
    assert.deepEqual(loadPublicKey(publicPath), pair.publicKey);
    assert.deepEqual(reference.crypto_scalarmult_base(pair.privateKey), pair.publicKey);
  } finally {
    process.umask(oldUmask);
  }
});

test('keygen refuses to overwrite an existing private key and leaves it as it was', () => {
  const base = join(dir, 'keep', 'centre');
  const { privatePath, publicPath } = writeKeyPair(x25519, base);
  const privateBefore = readFileSync(privatePath, 'utf8');
  const publicBefore = readFileSync(publicPath, 'utf8');
  assert.throws(() => writeKeyPair(x25519, base), agentError('USAGE', privatePath, 'refusing to overwrite'));
  assert.equal(readFileSync(privatePath, 'utf8'), privateBefore);
  assert.equal(readFileSync(publicPath, 'utf8'), publicBefore);
});

for (const mode of [0o644, 0o640, 0o604, 0o660]) {
  test(`loadPrivateKey refuses a private key of mode ${mode.toString(8)}, naming the path and the chmod fix`, () => {
    const { privatePath } = writeKeyPair(x25519, join(dir, `mode-${mode.toString(8)}`, 'device'));
    chmodSync(privatePath, mode);
    assert.throws(() => loadPrivateKey(x25519, privatePath), agentError('KEY_PERMISSIONS', privatePath, `chmod 600 ${privatePath}`, mode.toString(8)));
    chmodSync(privatePath, 0o600);
    assert.equal(loadPrivateKey(x25519, privatePath).privateKey.length, 32);
  });
}

test('loadPrivateKey accepts owner-only modes other than 0600 (0400, 0700): nobody else can read them', () => {
  for (const mode of [0o400, 0o700]) {
    const { privatePath } = writeKeyPair(x25519, join(dir, `owner-${mode.toString(8)}`, 'device'));
    chmodSync(privatePath, mode);
    assert.equal(loadPrivateKey(x25519, privatePath).privateKey.length, 32);
  }
});

test('a public key file given where a private key is expected fails with KEY_INVALID, whatever its mode', () => {
  const { publicPath } = writeKeyPair(x25519, join(dir, 'swap', 'device'));
  // As keygen wrote it (0644): the error names the real problem, not the mode.
  assert.throws(() => loadPrivateKey(x25519, publicPath), agentError('KEY_INVALID', publicPath, 'x25519-private'));
  chmodSync(publicPath, 0o600);
  assert.throws(() => loadPrivateKey(x25519, publicPath), agentError('KEY_INVALID', publicPath));
});

test('a private key file given where a public key is expected fails with KEY_INVALID', () => {
  const { privatePath } = writeKeyPair(x25519, join(dir, 'swap2', 'centre'));
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
  assert.throws(() => loadPrivateKey(x25519, bad('short.key', `x25519-private ${short}\n`)), agentError('KEY_INVALID', '32 bytes'));
  assert.throws(() => loadPrivateKey(x25519, bad('junk.key', `x25519-private ${good.slice(0, -2)}!=\n`)), agentError('KEY_INVALID'));
  assert.throws(() => loadPrivateKey(x25519, bad('extra.key', `x25519-private ${good} more\n`)), agentError('KEY_INVALID'));
  assert.throws(() => loadPrivateKey(x25519, bad('empty.key', '')), agentError('KEY_INVALID'));
  assert.equal(loadPrivateKey(x25519, bad('ok.key', `x25519-private ${good}\n`)).privateKey[0], 7);
  assert.throws(() => loadPrivateKey(x25519, join(dir, 'absent.key')), agentError('KEY_UNREADABLE', join(dir, 'absent.key')));
  assert.throws(() => loadPublicKey(join(dir, 'absent.pub')), agentError('KEY_UNREADABLE', join(dir, 'absent.pub')));
});

test('a public key file holding a point of small order is refused with KEY_INVALID naming the file; a real key loads', () => {
  const file = (name: string, key: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, `x25519-public ${Buffer.from(key).toString('base64')}\n`);
    return path;
  };
  for (const [name, h] of [
    ['zero.pub', '00'.repeat(32)],
    ['one.pub', `01${'00'.repeat(31)}`],
    ['order8.pub', '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157'],
    ['p-minus-1-top-bit.pub', `ec${'ff'.repeat(31)}`],
  ] as const) {
    const path = file(name, new Uint8Array(Buffer.from(h, 'hex')));
    assert.throws(() => loadUsablePublicKey(x25519, path), agentError('KEY_INVALID', path, 'not a usable X25519 public key'));
  }
  const { publicKey } = x25519.keyPair();
  assert.deepEqual(loadUsablePublicKey(x25519, file('good.pub', publicKey)), publicKey);
});

test('crypto_kx session keys agree between device and centre, and differ for any other pair', () => {
  const device = x25519.keyPair();
  const centre = x25519.keyPair();
  const other = x25519.keyPair();
  const tx = deviceSendKey(x25519, device, centre.publicKey);
  assert.equal(tx.length, 32);
  assert.deepEqual(centreReceiveKey(x25519, centre, device.publicKey), tx);
  assert.notDeepEqual(centreReceiveKey(x25519, centre, other.publicKey), tx);
  assert.notDeepEqual(centreReceiveKey(x25519, other, device.publicKey), tx);
  assert.notDeepEqual(deviceSendKey(x25519, device, other.publicKey), tx);
  // The centre's sending direction is a different key: nothing sealed by the centre opens as a device batch.
  assert.notDeepEqual(x25519.serverSessionKeys(centre, device.publicKey).tx, tx);
});

test('the same keys written to files and loaded back give the same session key', () => {
  const device = writeKeyPair(x25519, join(dir, 'pair', 'device'));
  const centre = writeKeyPair(x25519, join(dir, 'pair', 'centre'));
  const tx = deviceSendKey(x25519, loadPrivateKey(x25519, device.privatePath), loadPublicKey(centre.publicPath));
  const rx = centreReceiveKey(x25519, loadPrivateKey(x25519, centre.privatePath), loadPublicKey(device.publicPath));
  assert.deepEqual(rx, tx);
});

test('keyId is the first 8 bytes of SHA-256 of the public key', () => {
  for (let i = 0; i < 5; i++) {
    const { publicKey } = x25519.keyPair();
    assert.deepEqual(Buffer.from(keyId(publicKey)), createHash('sha256').update(publicKey).digest().subarray(0, 8));
  }
  // A known answer (checked with a separate SHA-256 tool): the device key of the test vectors.
  const vectorDevice = Buffer.from('0e0216223f147143d32615a91189c288c1728cba3cc5f9f621b1026e03d83129', 'hex');
  assert.equal(Buffer.from(keyId(vectorDevice)).toString('hex'), '4bc447d530c40447');
});

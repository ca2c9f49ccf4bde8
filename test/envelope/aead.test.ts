/**
 * The envelope's AEAD on node:crypto is byte for byte libsodium's crypto_aead_xchacha20poly1305_ietf_*:
 * HChaCha20 against the published test vector, and seal/open against libsodium both ways on many sizes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { hchacha20, xchachaOpen, xchachaSeal } from '../../agent/envelope/aead.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';

const reference = await libsodiumReference();
const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

test('HChaCha20 gives the test vector of draft-irtf-cfrg-xchacha section 2.2.1', () => {
  const key = unhex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const nonce = unhex('000000090000004a0000000031415927');
  assert.equal(Buffer.from(hchacha20(key, nonce)).toString('hex'), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
});

test('seal and open agree with libsodium both ways, for bodies of 0 bytes to 300 KiB', () => {
  for (const size of [0, 1, 15, 16, 63, 64, 65, 1000, 65_536, 300 * 1024 + 7]) {
    const key = new Uint8Array(randomBytes(32));
    const nonce = new Uint8Array(randomBytes(24));
    const aad = randomBytes(size % 97);
    const body = new Uint8Array(randomBytes(size));
    const ours = xchachaSeal(body, aad, nonce, key);
    const theirs = reference.crypto_aead_xchacha20poly1305_ietf_encrypt(body, aad, null, nonce, key);
    assert.deepEqual(ours, theirs, `seal of ${size} bytes`);
    assert.deepEqual(xchachaOpen(theirs, aad, nonce, key), body, `open of ${size} bytes`);
    const tampered = theirs.slice();
    tampered[tampered.length - 1]! ^= 1;
    assert.equal(xchachaOpen(tampered, aad, nonce, key), undefined, `tampered ${size} bytes`);
    assert.equal(xchachaOpen(theirs, new Uint8Array([...aad, 0]), nonce, key), undefined, `other associated data, ${size} bytes`);
  }
});

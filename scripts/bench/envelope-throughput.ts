/**
 * Seal and open throughput (MB/s of body) of the envelope code, against libsodium's WebAssembly AEAD on the
 * same bodies for comparison.  node scripts/bench/envelope-throughput.ts
 */
import { randomBytes } from 'node:crypto';
import type { EnvelopeHeader } from '../../agent/envelope/header.ts';
import { open, seal } from '../../agent/envelope/seal.ts';
import { libsodiumReference } from '../lib/libsodium-reference.ts';

const reference = await libsodiumReference();
const key = new Uint8Array(randomBytes(32));
const header: EnvelopeHeader = {
  device: 'gw-1',
  stream: 'telemetry',
  epoch: new Uint8Array(8),
  seq: 1,
  count: 1,
  created: 0,
  compression: 'none',
  deviceKeyId: new Uint8Array(8),
  centreKeyId: new Uint8Array(8),
  nonce: new Uint8Array(randomBytes(24)),
};
const aad = new Uint8Array(40);

/** MB/s of `fn` over `bytes`-byte bodies, run for at least 1.5 s after a warm-up. */
function rate(bytes: number, fn: () => void): number {
  for (let i = 0; i < 20; i++) fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 1500) {
    fn();
    n++;
  }
  return Math.round((n * bytes) / 1e6 / ((performance.now() - start) / 1000));
}

const rows = [];
for (const size of [64 * 1024, 256 * 1024]) {
  const body = new Uint8Array(randomBytes(size));
  const sealed = seal(header, body, key);
  const cipher = reference.crypto_aead_xchacha20poly1305_ietf_encrypt(body, aad, null, header.nonce, key);
  rows.push({
    body: `${size / 1024} KiB`,
    seal_mb_s: rate(size, () => seal(header, body, key)),
    open_mb_s: rate(size, () => open(sealed, () => key)),
    libsodium_wasm_seal_mb_s: rate(size, () => reference.crypto_aead_xchacha20poly1305_ietf_encrypt(body, aad, null, header.nonce, key)),
    libsodium_wasm_open_mb_s: rate(size, () => reference.crypto_aead_xchacha20poly1305_ietf_decrypt(null, cipher, aad, header.nonce, key)),
  });
}
console.table(rows);

/**
 * Writes test/vectors/ack-v1.json: the centre's end-to-end acknowledgement (docs/wire-format.md,
 * "Acknowledgement") for the same fixed device and centre keys as envelope-v1.json, with the derived
 * acknowledgement key, so another implementation can check its key derivation, encoding and tag byte for byte.
 * Everything here is deterministic (no compression, no nonce).
 *
 *   node scripts/vectors/ack-vectors.ts     (also written by npm run vectors)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BatchAck, encodeAck } from '../../agent/envelope/ack.ts';
import type { KeyExchange } from '../../agent/keys/x25519.ts';
import { type LibsodiumReference, libsodiumReference, referenceKeyExchange } from '../lib/libsodium-reference.ts';
import { centreAckKey, deviceAckKey, hex, keyId } from '../../agent/keys/keys.ts';

export const ACK_OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/vectors/ack-v1.json');

const seedOf = (first: number) => Uint8Array.from({ length: 32 }, (_, i) => (first + i) & 0xff);
const EPOCH_A = Uint8Array.from([0x3f, 0x9a, 0x0c, 0x7e, 0x51, 0xd2, 0xb8, 0x64]);

/**
 * Key pairs from their seeds with the reference (libsodium's crypto_kx_seed_keypair); the keys derived through
 * `kx`: the reference's own when writing the file, the agent's (x25519.ts) when a test checks it makes the same.
 */
export function makeAckVectors(reference: LibsodiumReference, kx: KeyExchange = referenceKeyExchange(reference)) {
  const device = reference.crypto_kx_seed_keypair(seedOf(0x00));
  const centre = reference.crypto_kx_seed_keypair(seedOf(0x80));
  const ackKey = centreAckKey(kx, centre, device.publicKey);
  if (hex(ackKey) !== hex(deviceAckKey(kx, device, centre.publicKey))) throw new Error('device and centre derive different acknowledgement keys');
  const sessionKey = kx.serverSessionKeys(centre, device.publicKey).tx;
  const ack: BatchAck = {
    device: 'gw-0001',
    stream: 'temps',
    epoch: EPOCH_A,
    deviceKeyId: keyId(device.publicKey),
    centreKeyId: keyId(centre.publicKey),
    ranges: [
      [1, 3],
      [7, 7],
      [10, 12],
    ],
  };
  const bytes = encodeAck(ack, ackKey);
  const flipped = Uint8Array.from(bytes);
  flipped[flipped.length - 1]! ^= 0x01;
  const otherRanges = Uint8Array.from(bytes);
  otherRanges[otherRanges.length - 16 - 1]! ^= 0x01; // the last range's last seq: 12 → 13, tag unchanged
  const version2 = Uint8Array.from(bytes);
  version2[2] = 2;
  return {
    format: 'edge-agent acknowledgement',
    version: 1,
    spec: 'docs/wire-format.md#acknowledgement',
    generatedBy: 'npm run vectors (scripts/vectors/ack-vectors.ts)',
    notes: [
      'Byte strings are lowercase hex. The device and centre keys are those of envelope-v1.json (seeds 00 01 … 1f and 80 81 … 9f).',
      'sessionKey is the centre → device crypto_kx key (the centre\'s sharedTx, the device\'s sharedRx). ackKey = HMAC-SHA256(key = sessionKey, message = the ASCII bytes "edge-agent ack key v1").',
      'tag = the first 16 bytes of HMAC-SHA256(key = ackKey, message = every byte of the acknowledgement before the tag).',
    ],
    keys: {
      deviceSeed: hex(seedOf(0x00)),
      devicePublic: hex(device.publicKey),
      centreSeed: hex(seedOf(0x80)),
      centrePublic: hex(centre.publicKey),
      sessionKey: hex(sessionKey),
      ackKey: hex(ackKey),
    },
    vectors: [
      {
        name: 'three-ranges',
        device: ack.device,
        stream: ack.stream,
        epoch: hex(ack.epoch),
        deviceKeyId: hex(ack.deviceKeyId),
        centreKeyId: hex(ack.centreKeyId),
        ranges: ack.ranges,
        ack: hex(bytes),
      },
    ],
    rejections: [
      { name: 'tag-flipped', ack: hex(flipped), error: 'ACK_AUTH_FAILED' },
      { name: 'range-altered', ack: hex(otherRanges), error: 'ACK_AUTH_FAILED' },
      { name: 'truncated', ack: hex(bytes.subarray(0, bytes.length - 1)), error: 'ACK_MALFORMED' },
      { name: 'version-2', ack: hex(version2), error: 'ACK_MALFORMED' },
    ],
  };
}

if (import.meta.main) {
  const vectors = makeAckVectors(await libsodiumReference());
  mkdirSync(dirname(ACK_OUT), { recursive: true });
  writeFileSync(ACK_OUT, `${JSON.stringify(vectors, null, 2)}\n`);
  console.log(`wrote ${ACK_OUT}`);
}

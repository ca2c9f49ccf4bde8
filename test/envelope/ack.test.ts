import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { x25519 } from '../../agent/keys/x25519.ts';
import { ackMacKey, decodeAck, encodeAck, toRanges, verifyAck } from '../../agent/envelope/ack.ts';
import { centreAckKey, centreReceiveKey, deviceAckKey, deviceSendKey, hex } from '../../agent/keys/keys.ts';
import { isAgentError } from '../../agent/errors.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';
import { makeAckVectors } from '../../scripts/vectors/ack-vectors.ts';

const file = JSON.parse(readFileSync(new URL('../vectors/ack-v1.json', import.meta.url), 'utf8')) as ReturnType<typeof makeAckVectors>;
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

test('the acknowledgement vectors are what this build makes, and verify', async () => {
  const reference = await libsodiumReference();
  assert.deepEqual(makeAckVectors(reference), file, 'test/vectors/ack-v1.json is stale: node scripts/vectors/ack-vectors.ts');
  assert.deepEqual(makeAckVectors(reference, x25519), file, "the agent's key exchange derives other keys than the reference's");
  const key = unhex(file.keys.ackKey);
  assert.equal(hex(ackMacKey(unhex(file.keys.sessionKey))), file.keys.ackKey);
  for (const v of file.vectors) {
    const ack = verifyAck(unhex(v.ack), () => key);
    assert.equal(ack.device, v.device);
    assert.equal(ack.stream, v.stream);
    assert.equal(hex(ack.epoch), v.epoch);
    assert.deepEqual(ack.ranges, v.ranges);
  }
  for (const r of file.rejections) {
    assert.throws(
      () => verifyAck(unhex(r.ack), () => key),
      (err: unknown) => isAgentError(err) && err.code === r.error,
      r.name,
    );
  }
});

test('device and centre derive the same acknowledgement key, distinct from both envelope keys', () => {
  const device = x25519.keyPair();
  const centre = x25519.keyPair();
  const ackKey = deviceAckKey(x25519, device, centre.publicKey);
  assert.equal(hex(ackKey), hex(centreAckKey(x25519, centre, device.publicKey)));
  assert.notEqual(hex(ackKey), hex(deviceSendKey(x25519, device, centre.publicKey)));
  assert.notEqual(hex(ackKey), hex(centreReceiveKey(x25519, centre, device.publicKey)));
  const other = x25519.keyPair();
  assert.notEqual(hex(ackKey), hex(deviceAckKey(x25519, other, centre.publicKey)), 'another device, another key');
});

test('malformed acknowledgements are refused with ACK_MALFORMED, never a crash', () => {
  const key = new Uint8Array(32).fill(1);
  const good = encodeAck(
    { device: 'd', stream: 's', epoch: new Uint8Array(8), deviceKeyId: new Uint8Array(8), centreKeyId: new Uint8Array(8), ranges: [[5, 9]] },
    key,
  );
  for (let cut = 0; cut < good.length; cut++) {
    assert.throws(
      () => decodeAck(good.subarray(0, cut)),
      (err: unknown) => isAgentError(err, 'ACK_MALFORMED'),
      `cut at ${cut}`,
    );
  }
  const longer = new Uint8Array(good.length + 1);
  longer.set(good);
  assert.throws(
    () => decodeAck(longer),
    (err: unknown) => isAgentError(err, 'ACK_MALFORMED'),
    'trailing byte',
  );
  const backwards = Uint8Array.from(good);
  const view = new DataView(backwards.buffer);
  view.setBigUint64(backwards.length - 16 - 16, 10n); // first 10 > last 9
  assert.throws(
    () => decodeAck(backwards),
    (err: unknown) => isAgentError(err, 'ACK_MALFORMED'),
    'range backwards',
  );
  assert.throws(
    () => verifyAck(good, () => undefined),
    (err: unknown) => isAgentError(err, 'ACK_UNKNOWN_KEY'),
  );
});

test('sequences become sorted, merged ranges', () => {
  assert.deepEqual(toRanges([9, 1, 2, 3, 7, 3, 8, 12]), [
    [1, 3],
    [7, 9],
    [12, 12],
  ]);
  assert.deepEqual(toRanges([]), []);
});

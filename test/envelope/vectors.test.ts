/**
 * Re-derives every value in test/vectors/envelope-v1.json from its inputs with this implementation, and
 * checks the layout against an independent writer that follows docs/wire-format.md, so the vectors, the
 * code and the spec cannot drift apart unnoticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compress, decodeRecords, decompress, encodeRecords, type Compression } from '../../agent/envelope/codec.ts';
import { decodeHeader, encodeHeader, type EnvelopeHeader } from '../../agent/envelope/header.ts';
import { open, seal, TAG_BYTES } from '../../agent/envelope/seal.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../scripts/lib/libsodium-reference.ts';
import { centreReceiveKey, deviceSendKey, keyId } from '../../agent/keys/keys.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';
import { makeVectors } from '../../scripts/make-vectors.ts';

interface VectorKeys {
  seed: string;
  privateKey: string;
  publicKey: string;
  keyId: string;
}

interface Vector {
  name: string;
  inputs: {
    devicePrivateKey: string;
    devicePublicKey: string;
    centrePrivateKey: string;
    centrePublicKey: string;
    device: string;
    stream: string;
    epoch: string;
    seq: number;
    count: number;
    created: number;
    compression: Compression;
    level: number | null;
    nonce: string;
    records: unknown[];
  };
  intermediate: {
    deviceKeyId: string;
    centreKeyId: string;
    sessionKey: string;
    cbor: string;
    body: string;
    bodyReproducible: boolean;
    header: string;
    ciphertext: string;
    tag: string;
  };
  lengths: { header: number; cbor: number; body: number; envelope: number };
  envelope: string;
}

interface VectorFile {
  version: number;
  keys: { device: VectorKeys; centre: VectorKeys; x25519Shared: string; sessionKey: string };
  vectors: Vector[];
}

const file = JSON.parse(readFileSync(new URL('../vectors/envelope-v1.json', import.meta.url), 'utf8')) as VectorFile;
const reference = await libsodiumReference();
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The vectors' JSON convention → record values: {"$base64": …} is a byte string. */
function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === '$base64') return new Uint8Array(Buffer.from(entries[0]![1] as string, 'base64'));
    return Object.fromEntries(entries.map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

/** Decoded records → the same JSON convention, so decoded values compare without caring Buffer vs Uint8Array. */
function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  return value;
}

/** The header written from the table in docs/wire-format.md, independently of agent/envelope/header.ts. */
function specHeader(v: Vector): Uint8Array {
  const utf8 = (s: string) => Buffer.from(s, 'utf8');
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const ids: Record<Compression, number> = { none: 0, deflate: 1, brotli: 2, zstd: 3 };
  const device = utf8(v.inputs.device);
  const stream = utf8(v.inputs.stream);
  return new Uint8Array(
    Buffer.concat([
      Buffer.from('EA', 'ascii'),
      Buffer.from([1, ids[v.inputs.compression], device.length]),
      device,
      Buffer.from([stream.length]),
      stream,
      Buffer.from(v.inputs.epoch, 'hex'),
      u64(v.inputs.seq),
      u32(v.inputs.count),
      u64(v.inputs.created),
      Buffer.from(v.intermediate.deviceKeyId, 'hex'),
      Buffer.from(v.intermediate.centreKeyId, 'hex'),
      Buffer.from(v.inputs.nonce, 'hex'),
    ]),
  );
}

function headerOf(v: Vector): EnvelopeHeader {
  return {
    device: v.inputs.device,
    stream: v.inputs.stream,
    epoch: unhex(v.inputs.epoch),
    seq: v.inputs.seq,
    count: v.inputs.count,
    created: v.inputs.created,
    compression: v.inputs.compression,
    deviceKeyId: unhex(v.intermediate.deviceKeyId),
    centreKeyId: unhex(v.intermediate.centreKeyId),
    nonce: unhex(v.inputs.nonce),
  };
}

test('the file covers every compression method, with the default levels of the codec', () => {
  assert.equal(file.version, 1);
  const byMethod = new Map(file.vectors.map((v) => [v.inputs.compression, v.inputs.level]));
  assert.deepEqual(Object.fromEntries(byMethod), { none: null, deflate: 1, brotli: 4, zstd: 3 });
});

test('the file covers 8-byte epochs (more than one), a sequence above 2^32 and integer timestamps', () => {
  const epochs = new Set(file.vectors.map((v) => v.inputs.epoch));
  for (const epoch of epochs) assert.match(epoch, /^[0-9a-f]{16}$/);
  assert.ok(epochs.size >= 2, 'vectors from more than one queue epoch');
  assert.ok(file.vectors.some((v) => v.inputs.seq > 2 ** 32));
  // Every sensor vector's records carry a "ts" above 2^32, and its CBOR has it as a 64-bit integer: "ts" 1b ….
  const sensors = file.vectors.filter((v) => v.name.startsWith('sensor-'));
  assert.ok(sensors.length >= 4);
  for (const v of sensors) {
    const first = v.inputs.records[0] as { ts: number };
    assert.ok(Number.isSafeInteger(first.ts) && first.ts > 2 ** 32);
    const u64 = Buffer.alloc(8);
    u64.writeBigUInt64BE(BigInt(first.ts));
    assert.ok(v.intermediate.cbor.includes(`6274731b${u64.toString('hex')}`), `${v.name}: "ts" as a CBOR integer`);
    assert.ok(!v.intermediate.cbor.includes('627473fb'), `${v.name}: no "ts" as float64`);
  }
});

test('a millisecond timestamp is a CBOR integer (1b + u64), not a float64, and decodes to a number', () => {
  const ts = 1795257050086; // 2026-11-21T10:30:50.086Z: above 2^32, below 2^53
  const cbor = encodeRecords([{ ts }]);
  // array of 1, map of 1 (16-bit length), "ts", then the value.
  assert.equal(hex(cbor), '81' + 'b90001' + '627473' + '1b000001a1fda8a3e6');
  assert.equal(hex(cbor).slice(-18), `1b${ts.toString(16).padStart(16, '0')}`);
  assert.ok(!hex(cbor).includes('fb'), 'no float64 anywhere');
  const [decoded] = decodeRecords(cbor) as [{ ts: unknown }];
  assert.equal(typeof decoded.ts, 'number');
  assert.equal(decoded.ts, ts);
  // And a float64 timestamp from another encoder decodes to the same number.
  const asFloat = Buffer.alloc(8);
  asFloat.writeDoubleBE(ts);
  assert.deepEqual(decodeRecords(unhex(`81b90001627473fb${asFloat.toString('hex')}`)), [{ ts }]);
});

test('key pairs derive from the seeds: private = BLAKE2b-256(seed), public = X25519 base-point multiple', () => {
  for (const party of [file.keys.device, file.keys.centre]) {
    const pair = reference.crypto_kx_seed_keypair(unhex(party.seed));
    assert.equal(hex(pair.privateKey), party.privateKey);
    assert.equal(hex(pair.publicKey), party.publicKey);
    // The formula the spec gives, computed without crypto_kx.
    assert.equal(hex(reference.crypto_generichash(32, unhex(party.seed), null)), party.privateKey);
    assert.equal(hex(reference.crypto_scalarmult_base(unhex(party.privateKey))), party.publicKey);
    assert.equal(hex(x25519.publicKey(unhex(party.privateKey))), party.publicKey, "the agent's key exchange");
  }
});

test('key ids are the first 8 bytes of SHA-256 of the public key', () => {
  for (const party of [file.keys.device, file.keys.centre]) {
    const digest = createHash('sha256').update(unhex(party.publicKey)).digest('hex');
    assert.equal(party.keyId, digest.slice(0, 16));
    assert.equal(hex(keyId(unhex(party.publicKey))), party.keyId);
  }
});

test('the session key is crypto_kx device tx = centre rx = BLAKE2b-512(X25519(d, C) || D || C)[32..64]', () => {
  const device = { privateKey: unhex(file.keys.device.privateKey), publicKey: unhex(file.keys.device.publicKey) };
  const centre = { privateKey: unhex(file.keys.centre.privateKey), publicKey: unhex(file.keys.centre.publicKey) };
  const shared = reference.crypto_scalarmult(device.privateKey, centre.publicKey);
  assert.equal(hex(shared), file.keys.x25519Shared);
  assert.equal(hex(reference.crypto_scalarmult(centre.privateKey, device.publicKey)), file.keys.x25519Shared);
  assert.equal(hex(x25519.sharedSecret(device.privateKey, centre.publicKey)), file.keys.x25519Shared, "the agent's key exchange");
  assert.equal(hex(x25519.sharedSecret(centre.privateKey, device.publicKey)), file.keys.x25519Shared, "the agent's key exchange");
  const h = reference.crypto_generichash(64, new Uint8Array(Buffer.concat([shared, device.publicKey, centre.publicKey])), null);
  assert.equal(hex(h.subarray(32, 64)), file.keys.sessionKey);
  assert.equal(hex(deviceSendKey(x25519, device, centre.publicKey)), file.keys.sessionKey);
  assert.equal(hex(centreReceiveKey(x25519, centre, device.publicKey)), file.keys.sessionKey);
});

for (const v of file.vectors) {
  test(`vector ${v.name}`, async (t) => {
    const records = fromJson(v.inputs.records) as AgentRecord[];
    const key = unhex(v.intermediate.sessionKey);
    const headerBytes = unhex(v.intermediate.header);
    const envelope = unhex(v.envelope);

    await t.test("inputs agree with the file's keys", () => {
      assert.equal(v.inputs.devicePrivateKey, file.keys.device.privateKey);
      assert.equal(v.inputs.centrePublicKey, file.keys.centre.publicKey);
      assert.equal(v.intermediate.deviceKeyId, hex(keyId(unhex(v.inputs.devicePublicKey))));
      assert.equal(v.intermediate.centreKeyId, hex(keyId(unhex(v.inputs.centrePublicKey))));
      const device = { privateKey: unhex(v.inputs.devicePrivateKey), publicKey: unhex(v.inputs.devicePublicKey) };
      assert.equal(hex(deviceSendKey(x25519, device, unhex(v.inputs.centrePublicKey))), v.intermediate.sessionKey);
      assert.equal(v.inputs.count, records.length);
    });

    await t.test('CBOR bytes', () => {
      const cbor = encodeRecords(records);
      assert.equal(hex(cbor), v.intermediate.cbor);
      assert.equal(cbor.length, v.lengths.cbor);
      assert.deepEqual(toJson(decodeRecords(cbor)), v.inputs.records);
    });

    await t.test("header bytes: ours, the spec table's, and the parse back", () => {
      assert.equal(hex(encodeHeader(headerOf(v))), v.intermediate.header);
      assert.equal(hex(specHeader(v)), v.intermediate.header);
      assert.equal(headerBytes.length, v.lengths.header);
      const parsed = decodeHeader(envelope);
      assert.equal(parsed.length, v.lengths.header);
      const { header } = parsed;
      assert.deepEqual(
        { ...header, epoch: hex(header.epoch), deviceKeyId: hex(header.deviceKeyId), centreKeyId: hex(header.centreKeyId), nonce: hex(header.nonce) },
        {
          ...headerOf(v),
          epoch: v.inputs.epoch,
          deviceKeyId: v.intermediate.deviceKeyId,
          centreKeyId: v.intermediate.centreKeyId,
          nonce: v.inputs.nonce,
        },
      );
    });

    await t.test('envelope = header || ciphertext, tag last', () => {
      assert.equal(v.envelope, v.intermediate.header + v.intermediate.ciphertext);
      assert.equal(v.intermediate.ciphertext.length / 2, v.lengths.body + TAG_BYTES);
      assert.equal(v.envelope.slice(-2 * TAG_BYTES), v.intermediate.tag);
      assert.equal(envelope.length, v.lengths.envelope);
    });

    await t.test('sealing the stored body with the stored nonce gives the stored envelope', () => {
      assert.equal(hex(seal(headerOf(v), unhex(v.intermediate.body), key)), v.envelope);
      // And straight libsodium, with the header as associated data, as another implementation would do it.
      assert.equal(
        hex(reference.crypto_aead_xchacha20poly1305_ietf_encrypt(unhex(v.intermediate.body), headerBytes, null, unhex(v.inputs.nonce), key)),
        v.intermediate.ciphertext,
      );
    });

    if (v.inputs.compression === 'none') {
      await t.test('uncompressed: body is the CBOR and the whole envelope is reproduced from the records', () => {
        assert.equal(v.intermediate.bodyReproducible, true);
        const body = compress(encodeRecords(records), { compression: 'none', level: undefined });
        assert.equal(hex(body), v.intermediate.body);
        assert.equal(hex(seal(headerOf(v), body, key)), v.envelope);
      });
    } else {
      await t.test('compressed: the body is really compressed with the method the header names', () => {
        assert.equal(v.intermediate.bodyReproducible, false);
        assert.ok(v.lengths.body < v.lengths.cbor, `${v.inputs.compression} body should be smaller than its CBOR`);
        assert.equal(hex(decompress(unhex(v.intermediate.body), v.inputs.compression, 1 << 20)), v.intermediate.cbor);
      });
    }

    await t.test('open + decompress + decode of the stored envelope gives the records', () => {
      const opened = open(envelope, (h) => {
        assert.equal(hex(h.deviceKeyId), v.intermediate.deviceKeyId);
        assert.equal(hex(h.centreKeyId), v.intermediate.centreKeyId);
        return key;
      });
      assert.equal(hex(opened.body), v.intermediate.body);
      const cbor = decompress(opened.body, opened.header.compression, 1 << 20);
      assert.equal(hex(cbor), v.intermediate.cbor);
      assert.deepEqual(toJson(decodeRecords(cbor)), v.inputs.records);
    });
  });
}

test('the file is what scripts/make-vectors.ts writes (compressed bytes aside, which follow the compressor build)', async () => {
  const fresh = JSON.parse(JSON.stringify(await makeVectors())) as VectorFile;
  const strip = (f: VectorFile) =>
    f.vectors.map((v) =>
      v.intermediate.bodyReproducible
        ? v
        : {
            ...v,
            envelope: undefined,
            intermediate: { ...v.intermediate, body: undefined, ciphertext: undefined, tag: undefined },
            lengths: { ...v.lengths, body: undefined, envelope: undefined },
          },
    );
  assert.deepEqual(fresh.keys, file.keys);
  assert.deepEqual(strip(fresh), strip(file));
  // The same file with every key derived by the agent's own key exchange (node:crypto) instead of libsodium's.
  const ours = JSON.parse(JSON.stringify(await makeVectors(x25519))) as VectorFile;
  assert.deepEqual(ours.keys, file.keys);
  assert.deepEqual(strip(ours), strip(file));
});

/**
 * Writes test/vectors/envelope-v1.json: fixed keys, nonces, header fields and records, with every
 * intermediate value (CBOR, compressed body, session key, header) and the final envelope, so that a receiver
 * or sender written in another language can be checked against this implementation byte for byte.
 *
 * Everything is deterministic: keys come from fixed seeds, epochs, nonces and times are fixed. Running it twice gives
 * the same file, except that compressed bodies may change with the zlib / brotli / zstd build (see NOTES).
 *
 *   npm run vectors
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compress, encodeRecords, type Compression } from '../agent/envelope/codec.ts';
import { encodeHeader, type EnvelopeHeader } from '../agent/envelope/header.ts';
import { seal, TAG_BYTES } from '../agent/envelope/seal.ts';
import type { KeyExchange } from '../agent/keys/x25519.ts';
import { type LibsodiumReference, libsodiumReference, referenceKeyExchange } from './lib/libsodium-reference.ts';
import { centreReceiveKey, deviceSendKey, hex, keyId, type KeyPair } from '../agent/keys/keys.ts';
import type { AgentRecord } from '../agent/sdk/index.ts';
import { ACK_OUT, makeAckVectors } from './vectors/ack-vectors.ts';
import { FLEET_OUT, makeFleetVectors } from './vectors/fleet-vectors.ts';
import { DECODING_CASES, DECODING_NOTES, REJECTION_CASES, REJECTION_NOTES } from './vectors/edge-cases.ts';

const OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../test/vectors/envelope-v1.json');

/** The levels codec.ts picks when the config gives none; written into each vector so a reader knows. */
const DEFAULT_LEVEL: Record<Compression, number | null> = { none: null, deflate: 1, brotli: 4, zstd: 3 };

const NOTES = [
  'All byte strings are lowercase hex unless stated otherwise. Integers in header fields are plain JSON numbers (all below 2^53).',
  'In records, a CBOR byte string is written as {"$base64": "<standard base64>"}, the same convention as the receiver\'s JSON-lines output. Every other JSON value maps to the CBOR value of the same kind: a JSON integer is a CBOR integer (major type 0 or 1, 64-bit arguments included, so a millisecond "ts" is 1b followed by 8 bytes), a JSON number with a fraction or exponent is a float64 (see docs/wire-format.md, "Body").',
  'The CBOR encoding of records is not canonical (maps carry a 16-bit length even when shorter would do; integers are in shortest form). A decoder must accept any valid RFC 8949 encoding, and a number field in float or integer form alike; compare decoded values, not re-encoded bytes, when checking another encoder.',
  'Compressed bodies (deflate, brotli, zstd) depend on the compressor build and level: another implementation, or another build of the same library, may compress the same CBOR to different bytes. Check a receiver by opening the envelope, decompressing the body and comparing the result with "cbor" (and its decoding with "records"); never by compressing "cbor" again and comparing with "body". For compression "none" the body is the CBOR itself and every byte is reproducible.',
  'Given the same body, header fields, nonce and key, the envelope is reproducible everywhere: envelope = header || XChaCha20-Poly1305-IETF-encrypt(key = sessionKey, nonce, plaintext = body, associated data = header).',
  'Nonces here are fixed and distinct per vector only so that the file is reproducible. A real sender draws 24 fresh random bytes every time it seals, a re-send of the same batch included, and must never reuse a nonce under one session key.',
  'Epochs here are fixed so that the file is reproducible. A real queue draws its 8-byte epoch at random when it is created and keeps it for its lifetime; the centre deduplicates by (device, stream, epoch, seq).',
];

interface Party {
  seed: Uint8Array;
  pair: KeyPair;
}

function seedOf(first: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (first + i) & 0xff);
}

/** Two queue epochs: the first for most vectors, the second as if the device's queue had been replaced. */
const EPOCH_A = Uint8Array.from([0x3f, 0x9a, 0x0c, 0x7e, 0x51, 0xd2, 0xb8, 0x64]);
const EPOCH_B = Uint8Array.from([0xc4, 0x17, 0xe2, 0x5b, 0x08, 0x9d, 0x6f, 0xa3]);

function nonceFor(index: number): Uint8Array {
  // 24 bytes: a fixed prefix "edge-agent-v1-vec" plus the vector's index, distinct for every vector.
  const out = new Uint8Array(24);
  out.set(new TextEncoder().encode('edge-agent-v1-vec'), 0);
  out[23] = index;
  return out;
}

/** Record values → JSON, bytes as {"$base64": …}. Throws on anything JSON cannot carry exactly. */
function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map(toJson);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    // -0 has no exact JSON form, and CBOR writes it as the integer 0 anyway.
    if (!Number.isFinite(value) || Object.is(value, -0)) throw new Error(`${value} has no exact JSON form`);
    // A float64 beyond 2^53 that JSON would write without a fraction or exponent (1e20 → "100000000000000000000")
    // reads as an integer elsewhere, while CBOR carries a float: keep such values out of the vectors.
    if (!Number.isSafeInteger(value) && /^-?\d+$/.test(JSON.stringify(value))) throw new Error(`${value} would read as an integer in JSON`);
    return value;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  throw new Error(`record value ${String(value)} has no JSON form in the vectors`);
}

const CREATED = Date.UTC(2026, 0, 1, 0, 0, 0); // 1767225600000

function sensorRecords(n: number, firstTs: number): AgentRecord[] {
  // Shaped like the synthetic source's records: what a gateway typically sends.
  return Array.from({ length: n }, (_, i) => {
    const k = i + 1;
    return { n: k, ts: firstTs + i * 1000, sensor: `sensor-${k % 4}`, value: Math.round((20 + Math.sin(k / 5) * 5) * 100) / 100, unit: 'C' };
  });
}

const EDGE_RECORD: AgentRecord = {
  bytes: Uint8Array.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]),
  empty_bytes: new Uint8Array(0),
  ints: [0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295],
  negative_ints: [-1, -24, -25, -256, -257, -65536, -65537, -2147483648, -4294967296],
  big_ints: [4294967296, 1767225600000, 9007199254740991, -4294967297, -9007199254740991],
  // biome-ignore lint/suspicious/noApproximativeNumericConstant: a fixed test-vector value, not meant as π
  floats: [21.5, -0.5, 3.141592653589793, 1e-300, 1.7976931348623157e308],
  nested: { a: { b: { c: [1, { d: null }] } }, empty_map: {}, empty_array: [] },
  nothing: null,
  yes: true,
  no: false,
  text: 'Grüße, 温度 ✓ 🌡',
  empty_text: '',
};

interface Case {
  name: string;
  description: string;
  stream: string;
  epoch: Uint8Array;
  seq: number;
  created: number;
  compression: Compression;
  records: AgentRecord[];
}

const CASES: Case[] = [
  {
    name: 'sensor-3-none',
    description:
      'Three typical sensor records, no compression: every byte is reproducible. Each "ts" (ms since 1970, above 2^32) is a CBOR integer, 1b and 8 bytes.',
    stream: 'telemetry',
    epoch: EPOCH_A,
    seq: 1,
    created: CREATED,
    compression: 'none',
    records: sensorRecords(3, CREATED - 3000),
  },
  {
    name: 'edge-values-none',
    description:
      'One record with byte strings, negative and 64-bit integers at the 2^32 and 2^53 boundaries, floats, nested maps, null, booleans and non-ASCII text; a sequence number above 2^32 (checks the u64 field); another queue epoch than the other vectors.',
    stream: 'diagnostics',
    epoch: EPOCH_B,
    seq: 2 ** 32 + 5,
    created: CREATED + 1,
    compression: 'none',
    records: [EDGE_RECORD],
  },
  {
    name: 'sensor-20-deflate',
    description: '20 sensor records, raw deflate (RFC 1951) at the default level.',
    stream: 'telemetry',
    epoch: EPOCH_A,
    seq: 2,
    created: CREATED + 20_000,
    compression: 'deflate',
    records: sensorRecords(20, CREATED),
  },
  {
    name: 'sensor-20-brotli',
    description: '20 sensor records, brotli at the default quality.',
    stream: 'telemetry',
    epoch: EPOCH_A,
    seq: 3,
    created: CREATED + 40_000,
    compression: 'brotli',
    records: sensorRecords(20, CREATED + 20_000),
  },
  {
    name: 'sensor-20-zstd',
    description: '20 sensor records, zstd (one frame) at the default level.',
    stream: 'telemetry',
    epoch: EPOCH_A,
    seq: 4,
    created: CREATED + 60_000,
    compression: 'zstd',
    records: sensorRecords(20, CREATED + 40_000),
  },
];

const DEVICE_ID = 'gw-0001';

const unhexBytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/**
 * Key pairs come from their seeds with the reference (libsodium); the keys are derived through `kx`: the
 * reference's own when writing the file, the agent's (x25519.ts) when a test checks it makes the same file.
 */
export async function makeVectors(kx?: KeyExchange): Promise<unknown> {
  const reference: LibsodiumReference = await libsodiumReference();
  const exchange = kx ?? referenceKeyExchange(reference);
  const party = (seed: Uint8Array): Party => ({ seed, pair: reference.crypto_kx_seed_keypair(seed) });
  const device = party(seedOf(0x00));
  const centre = party(seedOf(0x80));
  const sessionKey = deviceSendKey(exchange, device.pair, centre.pair.publicKey);
  if (hex(sessionKey) !== hex(centreReceiveKey(exchange, centre.pair, device.pair.publicKey))) throw new Error('crypto_kx keys disagree');
  const shared = exchange.sharedSecret(device.pair.privateKey, centre.pair.publicKey);

  const keys = {
    device: {
      seed: hex(device.seed),
      privateKey: hex(device.pair.privateKey),
      publicKey: hex(device.pair.publicKey),
      keyId: hex(keyId(device.pair.publicKey)),
    },
    centre: {
      seed: hex(centre.seed),
      privateKey: hex(centre.pair.privateKey),
      publicKey: hex(centre.pair.publicKey),
      keyId: hex(keyId(centre.pair.publicKey)),
    },
    x25519Shared: hex(shared),
    sessionKey: hex(sessionKey),
  };

  const vectors = CASES.map((c, index) => {
    const nonce = nonceFor(index + 1);
    const level = DEFAULT_LEVEL[c.compression];
    // encodeRecords works in place (integers beyond 2^32 become BigInt): give it a copy, keep the inputs as numbers.
    const records = toJson(c.records);
    const cbor = encodeRecords(structuredClone(c.records));
    const body = compress(cbor, { compression: c.compression, level: level ?? undefined });
    const header: EnvelopeHeader = {
      device: DEVICE_ID,
      stream: c.stream,
      epoch: c.epoch,
      seq: c.seq,
      count: c.records.length,
      created: c.created,
      compression: c.compression,
      deviceKeyId: keyId(device.pair.publicKey),
      centreKeyId: keyId(centre.pair.publicKey),
      nonce,
    };
    const headerBytes = encodeHeader(header);
    const envelope = seal(header, body, sessionKey);
    return {
      name: c.name,
      description: c.description,
      inputs: {
        devicePrivateKey: keys.device.privateKey,
        devicePublicKey: keys.device.publicKey,
        centrePrivateKey: keys.centre.privateKey,
        centrePublicKey: keys.centre.publicKey,
        device: DEVICE_ID,
        stream: c.stream,
        epoch: hex(c.epoch),
        seq: c.seq,
        count: c.records.length,
        created: c.created,
        compression: c.compression,
        level,
        nonce: hex(nonce),
        records,
      },
      intermediate: {
        deviceKeyId: keys.device.keyId,
        centreKeyId: keys.centre.keyId,
        sessionKey: hex(sessionKey),
        cbor: hex(cbor),
        body: hex(body),
        bodyReproducible: c.compression === 'none',
        header: hex(headerBytes),
        ciphertext: hex(envelope.subarray(headerBytes.length)),
        tag: hex(envelope.subarray(envelope.length - TAG_BYTES)),
      },
      lengths: { header: headerBytes.length, cbor: cbor.length, body: body.length, envelope: envelope.length },
      envelope: hex(envelope),
    };
  });

  const sealed = (o: { seq: number; count: number; body: Uint8Array; compression?: Compression; nonceIndex: number; created?: number }) => {
    const header: EnvelopeHeader = {
      device: DEVICE_ID,
      stream: 'edge-cases',
      epoch: EPOCH_A,
      seq: o.seq,
      count: o.count,
      created: o.created ?? CREATED,
      compression: o.compression ?? 'none',
      deviceKeyId: keyId(device.pair.publicKey),
      centreKeyId: keyId(centre.pair.publicKey),
      nonce: nonceFor(o.nonceIndex),
    };
    return seal(header, o.body, sessionKey);
  };

  const decoding = DECODING_CASES.map((c, index) => {
    const cbor = c.cbor ?? encodeRecords(structuredClone(c.records ?? []));
    const count = c.count;
    const envelope = sealed({ seq: c.seq ?? 100 + index, count, body: cbor, nonceIndex: 100 + index });
    return {
      name: c.name,
      description: c.description,
      ...(c.records ? { inputRecords: c.records } : {}),
      seq: c.seq ?? 100 + index,
      count,
      cbor: hex(cbor),
      envelope: hex(envelope),
      output: c.output,
    };
  });

  const good = hex(sealed({ seq: 200, count: 1, body: encodeRecords([{ n: 1 }]), nonceIndex: 200 }));
  const rejections = REJECTION_CASES.map((c, index) => {
    const envelope =
      'raw' in c
        ? c.raw(unhexBytes(good))
        : sealed({ seq: c.seq ?? 300 + index, count: c.count ?? 1, body: c.body(), compression: c.compression, nonceIndex: 150 + index });
    return {
      name: c.name,
      description: c.description,
      envelope: hex(envelope),
      ...(c.maxBatchBytes === undefined ? {} : { maxBatchBytes: c.maxBatchBytes }),
      ...(c.maxRecords === undefined ? {} : { maxRecords: c.maxRecords }),
      ...(c.maxEnvelopeBytes === undefined ? {} : { maxEnvelopeBytes: c.maxEnvelopeBytes }),
      error: c.error,
      reason: c.reason,
    };
  });

  return {
    format: 'edge-agent envelope',
    version: 1,
    spec: 'docs/wire-format.md',
    generatedBy: 'npm run vectors (scripts/make-vectors.ts)',
    compressorVersions: { zlib: process.versions.zlib, brotli: process.versions.brotli, zstd: process.versions.zstd },
    notes: NOTES,
    keys,
    vectors,
    decodingNotes: DECODING_NOTES,
    decoding,
    rejectionNotes: REJECTION_NOTES,
    rejections,
  };
}

if (import.meta.main) {
  const vectors = await makeVectors();
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(vectors, null, 2)}\n`);
  console.log(`wrote ${OUT}`);
  writeFileSync(ACK_OUT, `${JSON.stringify(makeAckVectors(await libsodiumReference()), null, 2)}\n`);
  console.log(`wrote ${ACK_OUT}`);
  writeFileSync(FLEET_OUT, `${JSON.stringify(makeFleetVectors(), null, 2)}\n`);
  console.log(`wrote ${FLEET_OUT}`);
}

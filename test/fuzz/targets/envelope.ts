/**
 * The receive path a hostile publisher reaches: header parse, authentication and decryption, decompression
 * under a limit, CBOR decoding, the count check, and writing the accepted records as JSON lines. Inputs are
 * whole envelopes sealed with the test-vector key pair, so a crafted body gets past authentication and the
 * decompressor and the decoder see it: mutated sealed envelopes, headers mutated and sealed again, mutated
 * compressed bodies, mutated or generated hostile CBOR compressed and sealed, and compression bombs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { compress, COMPRESSIONS, decodeRecords, decompress } from '../../../agent/envelope/codec.ts';
import { decodeHeader, type EnvelopeHeader } from '../../../agent/envelope/header.ts';
import { open, TAG_BYTES } from '../../../agent/envelope/seal.ts';
import { x25519 } from '../../../agent/keys/x25519.ts';
import { libsodiumReference } from '../../../scripts/lib/libsodium-reference.ts';
import { AgentError, type ErrorCode, isAgentError } from '../../../agent/errors.ts';
import { centreReceiveKey, deviceSendKey, keyId, type KeyPair } from '../../../agent/keys/keys.ts';
import { toJsonLines } from '../../../agent/receiver/output.ts';
import type { CorpusEntry } from '../lib/corpus.ts';
import { applyByteMutations, byteMutation, mutatedBytes } from '../lib/mutate.ts';
import type { Findings, FuzzTarget } from '../lib/run.ts';

/** The decompression limit of this harness (the receiver's is configurable); bombs in the corpus inflate far past it. */
export const MAX_BODY_BYTES = 1 << 20;
const REJECTIONS: ReadonlySet<ErrorCode> = new Set(['ENVELOPE_MALFORMED', 'ENVELOPE_UNKNOWN_KEY', 'ENVELOPE_AUTH_FAILED', 'ENVELOPE_UNSUPPORTED']);

const reference = await libsodiumReference();
const vectors = JSON.parse(readFileSync(new URL('../../vectors/envelope-v1.json', import.meta.url), 'utf8')) as {
  keys: Record<'device' | 'centre', { privateKey: string; publicKey: string }>;
};
const pair = (k: { privateKey: string; publicKey: string }): KeyPair => ({
  privateKey: Buffer.from(k.privateKey, 'hex'),
  publicKey: Buffer.from(k.publicKey, 'hex'),
});
const device = pair(vectors.keys.device);
const centre = pair(vectors.keys.centre);
const sendKey = deviceSendKey(x25519, device, centre.publicKey);
const receiveKey = centreReceiveKey(x25519, centre, device.publicKey);
const deviceKeyId = keyId(device.publicKey);
const centreKeyId = keyId(centre.publicKey);
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(b);

/** Any device name is accepted (which name a key belongs to is the receiver's table, not the envelope's). */
function keyFor(h: EnvelopeHeader): Uint8Array {
  if (sameBytes(h.deviceKeyId, deviceKeyId) && sameBytes(h.centreKeyId, centreKeyId)) return receiveKey;
  throw new AgentError('ENVELOPE_UNKNOWN_KEY', 'no key for these key ids');
}

/** The one call into the opener, so a change of its signature is a one-line change here. */
function openEnvelope(bytes: Uint8Array) {
  return open(bytes, keyFor);
}

/** header ‖ XChaCha20-Poly1305(body, ad = header), as docs/wire-format.md says, for any header bytes at all. */
export function sealRaw(head: Uint8Array, nonce: Uint8Array, body: Uint8Array): Uint8Array {
  const cipher = reference.crypto_aead_xchacha20poly1305_ietf_encrypt(body, head, null, nonce, sendKey);
  return Buffer.concat([head, cipher]);
}

/** A seed that opens: its header bytes, its header and its (compressed) body. */
interface OpenSeed {
  head: Uint8Array;
  header: EnvelopeHeader;
  body: Uint8Array;
  cbor: Uint8Array;
}

function openSeeds(envelopes: readonly Uint8Array[]): OpenSeed[] {
  const out: OpenSeed[] = [];
  for (const bytes of envelopes) {
    try {
      const { header, body } = openEnvelope(bytes);
      const { length } = decodeHeader(bytes);
      const cbor = decompress(body, header.compression, MAX_BODY_BYTES);
      out.push({ head: bytes.slice(0, length), header, body, cbor });
    } catch {
      // Not every corpus entry opens (bombs, inputs that found a bug): they are seeds for raw mutation only.
    }
  }
  return out;
}

/** The header of `seed` with another compression id and count, still authentic once sealed. */
function headWith(seed: OpenSeed, compressionId: number, count: number): Uint8Array {
  const head = Buffer.from(seed.head);
  head[3] = compressionId;
  const countAt = head.length - (8 + 16 + 24) - 4;
  head.writeUInt32BE(count >>> 0, countAt);
  return head;
}

/** Counting the records the body really holds gives a sealed body that passes the count check. */
function countOf(cbor: Uint8Array): number {
  try {
    return decodeRecords(cbor).length;
  } catch {
    return 0;
  }
}

// ---- Generated hostile CBOR -------------------------------------------------------------------------------

/** An initial byte and argument: `width` 0 packs small values into the initial byte, 1/2/4/8 use 24..27. */
function cborHead(major: number, value: bigint, width: 0 | 1 | 2 | 4 | 8): Buffer {
  const m = major << 5;
  if (width === 0) return Buffer.from([m | Number(value & 0x17n)]);
  const arg = Buffer.alloc(8);
  arg.writeBigUInt64BE(value & 0xffffffffffffffffn);
  const info = { 1: 24, 2: 25, 4: 26, 8: 27 }[width];
  return Buffer.concat([Buffer.from([m | info]), arg.subarray(8 - width)]);
}

const TAGS = [
  0n,
  1n,
  2n,
  3n,
  4n,
  5n,
  21n,
  24n,
  25n,
  27n,
  28n,
  29n,
  32n,
  35n,
  40n,
  51n,
  52n,
  64n,
  65n,
  69n,
  72n,
  77n,
  81n,
  82n,
  85n,
  86n,
  105n,
  256n,
  258n,
  259n,
  55799n,
  57344n,
  57599n,
];
const EDGES = [0n, 1n, 23n, 24n, 255n, 256n, 65535n, 0xfffffffen, 0xffffffffn, 0x100000000n, 0x1fffffffffffffn, 0xffffffffffffffffn];
const utf8 = (s: string) => Buffer.from(s, 'utf8');

const fragment: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 7 }), fc.constantFrom(...EDGES), fc.constantFrom(0 as const, 1 as const, 2 as const, 4 as const, 8 as const))
    .map(([major, v, w]) => cborHead(major, v, w)),
  fc.integer({ min: 0, max: 0xff }).map((b) => Buffer.from([b])),
  fc.constantFrom(0x5f, 0x7f, 0x9f, 0xbf, 0xff).map((b) => Buffer.from([b])),
  fc.constantFrom(...TAGS).map((t) => cborHead(6, t, t < 24n ? 0 : t < 256n ? 1 : t < 65536n ? 2 : 4)),
  fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.concat([cborHead(3, BigInt(b.length), 0), b])),
  fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.concat([cborHead(2, BigInt(b.length), 0), b])),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'ts', '').map((k) => Buffer.concat([cborHead(3, BigInt(k.length), 1), utf8(k)])),
  fc
    .tuple(fc.constantFrom(0xf9, 0xfa, 0xfb), fc.uint8Array({ minLength: 8, maxLength: 8 }))
    .map(([b, bits]) => Buffer.concat([Buffer.from([b]), bits.subarray(0, { 249: 2, 250: 4, 251: 8 }[b])])),
  fc.tuple(fc.constantFrom(0x81, 0xa1, 0x9f, 0xc6), fc.integer({ min: 1, max: 100_000 })).map(([b, n]) => Buffer.alloc(n, b)),
);

/** A top-level array (definite or not) of random fragments: mostly invalid, often deeply nested. */
export const hostileCbor: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 0, max: 24 }), fc.boolean(), fc.array(fragment, { maxLength: 24 }), fc.boolean())
  .map(([n, indefinite, parts, close]) => {
    const head = indefinite ? Buffer.from([0x9f]) : cborHead(4, BigInt(n), n < 24 ? 0 : 1);
    return new Uint8Array(Buffer.concat([head, ...parts, close ? Buffer.from([0xff]) : Buffer.alloc(0)]));
  });

// ---- The target ------------------------------------------------------------------------------------------

function arbitrary(entries: readonly CorpusEntry[]): fc.Arbitrary<Uint8Array> {
  const envelopes = entries.map((e) => new Uint8Array(e.bytes));
  const seeds = openSeeds(envelopes);
  assert.ok(seeds.length > 0, 'the envelope corpus has no envelope that opens (test/fuzz/corpus/envelope/seed-*.bin)');
  const seedIndex = fc.integer({ min: 0, max: seeds.length - 1 });
  const mutations = fc.array(byteMutation(seeds.length), { minLength: 1, maxLength: 6 });
  const compressionId = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: COMPRESSIONS.length - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  );

  // 1. A sealed envelope with bytes changed anywhere: authentication must catch all of it.
  const sealedMutated = mutatedBytes(envelopes, 6);
  // 2. The header mutated, then sealed over again: hostile header fields that authenticate.
  const headerResealed = fc.tuple(seedIndex, mutations).map(([i, muts]) => {
    const seed = seeds[i]!;
    const head = applyByteMutations(seed.head, muts);
    let nonce = seed.header.nonce;
    try {
      nonce = decodeHeader(Buffer.concat([head, Buffer.alloc(TAG_BYTES)])).header.nonce;
    } catch {
      // A header that does not parse: sealed with the seed's nonce, rejected before decryption anyway.
    }
    return sealRaw(head, nonce, seed.body);
  });
  // 3. The compressed body mutated before sealing: the decompressors see hostile streams.
  const bodyMutated = fc.tuple(seedIndex, mutations, compressionId).map(([i, muts, c]) => {
    const seed = seeds[i]!;
    return sealRaw(
      headWith(seed, c, seed.header.count),
      seed.header.nonce,
      applyByteMutations(
        seed.body,
        muts,
        seeds.map((s) => s.body),
      ),
    );
  });
  // 4. The CBOR mutated or generated, then compressed and sealed: the decoder sees hostile CBOR.
  const cbor = fc.oneof(
    fc.tuple(seedIndex, mutations).map(([i, muts]) =>
      applyByteMutations(
        seeds[i]!.cbor,
        muts,
        seeds.map((s) => s.cbor),
      ),
    ),
    hostileCbor,
  );
  const cborSealed = fc.tuple(seedIndex, cbor, fc.integer({ min: 0, max: COMPRESSIONS.length - 1 }), fc.option(fc.nat(30))).map(([i, body, c, count]) => {
    const seed = seeds[i]!;
    const compressed = compress(body, { compression: COMPRESSIONS[c]!, level: 1 });
    return sealRaw(headWith(seed, c, count ?? countOf(body)), seed.header.nonce, compressed);
  });
  return fc.oneof(sealedMutated, headerResealed, bodyMutated, { arbitrary: cborSealed, weight: 2 });
}

function isPlainRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** What the receiver does with one message, asserting on the way that only its documented rejections happen. */
function check(bytes: Uint8Array, _findings: Findings): void {
  let header: EnvelopeHeader;
  let records: unknown[];
  try {
    const opened = openEnvelope(bytes);
    header = opened.header;
    const body = decompress(opened.body, header.compression, MAX_BODY_BYTES);
    assert.ok(body.length <= MAX_BODY_BYTES, `decompressed ${body.length} bytes past the ${MAX_BODY_BYTES}-byte limit`);
    // The strict decoder answers every malformed body with an AgentError (no stack overflow on deep nesting,
    // no decoder-internal error types): anything else fails the run below.
    records = decodeRecords(body);
    if (records.length !== header.count) return; // the receiver rejects it as ENVELOPE_MALFORMED
  } catch (err) {
    if (isAgentError(err) && REJECTIONS.has(err.code)) return;
    throw new Error(`not a documented rejection: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
  }
  // Accepted: what the receiver goes on to rely on.
  assert.ok(header.device.length > 0 && header.stream.length > 0, 'empty device or stream name accepted');
  assert.ok(Number.isSafeInteger(header.seq) && Number.isSafeInteger(header.created), 'sequence or time is not a safe integer');
  assert.equal(header.epoch.length, 8);
  for (const record of records) assert.ok(isPlainRecord(record), `record ${JSON.stringify(String(record)).slice(0, 40)} accepted: records must be maps`);
  // The output must be able to write what was accepted, or the message is never acknowledged.
  toJsonLines(header, records as never);
}

export const envelopeTarget: FuzzTarget<Uint8Array> = {
  name: 'envelope',
  // Decompression is limited to 1 MiB; an input that grows memory by 64 MiB escaped the limit.
  limits: { msPerInput: 5000, bytesPerInput: 64 * 2 ** 20 },
  fromCorpus: (entries) => entries.map((e) => new Uint8Array(e.bytes)),
  arbitrary,
  check,
  toFile: (bytes) => ({ ext: 'bin', bytes }),
  describe: (bytes) => `${bytes.length} bytes: ${Buffer.from(bytes.subarray(0, 96)).toString('hex')}${bytes.length > 96 ? '…' : ''}`,
};

/**
 * The edge-case vectors of test/vectors/envelope-v1.json (written by scripts/make-vectors.ts): bodies that a
 * receiver must decode in a given way (`decoding`), and envelopes it must reject with a given error
 * (`rejections`). docs/wire-format.md, "Decisions", is the rule each one checks.
 *
 * Bodies are written here byte by byte from RFC 8949, not by an encoder, except where the point is what this
 * agent's encoder writes (the lone-surrogate repair).
 */
import zlib from 'node:zlib';
import { encodeRecords, type Compression } from '../../agent/envelope/codec.ts';
import type { ErrorCode } from '../../agent/errors.ts';
import type { AgentRecord } from '../../agent/sdk/index.ts';

/** A CBOR head (major type and argument) in shortest form, as hex. */
function head(major: number, n: number | bigint): string {
  const arg = BigInt(n);
  const m = major << 5;
  const hx = (v: number, bytes: number) => v.toString(16).padStart(bytes * 2, '0');
  if (arg < 24n) return hx(m | Number(arg), 1);
  if (arg < 0x100n) return hx(m | 24, 1) + hx(Number(arg), 1);
  if (arg < 0x10000n) return hx(m | 25, 1) + hx(Number(arg), 2);
  if (arg < 0x100000000n) return hx(m | 26, 1) + hx(Number(arg), 4);
  return hx(m | 27, 1) + arg.toString(16).padStart(16, '0');
}
const text = (s: string): string => {
  const b = Buffer.from(s, 'utf8');
  return head(3, b.length) + b.toString('hex');
};
const uint = (n: number | bigint): string => head(0, n);
const array = (...items: string[]): string => head(4, items.length) + items.join('');
const map = (...entries: [string, string][]): string => head(5, entries.length) + entries.map(([k, v]) => text(k) + v).join('');
const float64 = (n: number): string => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return `fb${b.toString('hex')}`;
};
const bytes = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));

export interface DecodingCase {
  name: string;
  description: string;
  /** Records; the body is this agent's encoding of them (only for what the encoder itself does). */
  records?: AgentRecord[];
  /** Otherwise the body, hand-written. */
  cbor?: Uint8Array;
  count: number;
  seq?: number;
  /** The records as the receiver's JSON-lines output writes them (the "record" of each line). */
  output: unknown[];
}

export const DECODING_NOTES = [
  'Each "decoding" vector is an envelope with compression none whose body is "cbor", sealed like the vectors above (stream "edge-cases"). A receiver must accept it and, if it writes JSON the way this one does, give "output" as the records (docs/wire-format.md, "Receiver output").',
  '"inputRecords", where present, are records given to this agent\'s encoder; the body is what it wrote (the lone-surrogate repair). In JSON, "\\ud800" is a lone UTF-16 surrogate.',
];

export const DECODING_CASES: DecodingCase[] = [
  {
    name: 'dates',
    description:
      'Tag 1 over integer seconds, over float seconds (this encoder writes a JavaScript Date so) and over a fraction; tag 0 over RFC 3339 text. Output: tag 1 as ISO 8601 UTC with milliseconds, tag 0 as its text.',
    cbor: bytes(
      array(
        map(['t', `c1${uint(1767225600)}`]),
        map(['t', `c1${float64(1767225600.123)}`]),
        map(['t', `c1${float64(1767225600.5)}`]),
        map(['t', `c0${text('2026-01-01T01:00:00+01:00')}`]),
      ),
    ),
    count: 4,
    output: [{ t: '2026-01-01T00:00:00.000Z' }, { t: '2026-01-01T00:00:00.123Z' }, { t: '2026-01-01T00:00:00.500Z' }, { t: '2026-01-01T01:00:00+01:00' }],
  },
  {
    name: 'big-integers',
    description:
      'Integers beyond 2^53 − 1 in 64-bit form (1b / 3b) and as bignums (tags 2 and 3), written as decimal strings; a bignum and a non-preferred 64-bit argument that a number holds, written as numbers.',
    cbor: bytes(
      array(
        map(
          ['two53', uint(2n ** 53n)],
          ['u64max', uint(2n ** 64n - 1n)],
          ['n64min', head(1, 2n ** 64n - 1n)],
          ['bignum', `c2${head(2, 13)}10${'00'.repeat(12)}`],
          ['negbignum', `c3${head(2, 13)}10${'00'.repeat(12)}`],
          ['smallbignum', `c2${head(2, 1)}2a`],
          ['wide5', '1b0000000000000005'],
          ['negsafe', head(1, 2n ** 53n - 2n)],
        ),
      ),
    ),
    count: 1,
    output: [
      {
        two53: '9007199254740992',
        u64max: '18446744073709551615',
        n64min: '-18446744073709551616',
        bignum: '1267650600228229401496703205376',
        negbignum: '-1267650600228229401496703205377',
        smallbignum: 42,
        wide5: 5,
        negsafe: -9007199254740991,
      },
    ],
  },
  {
    name: 'floats',
    description:
      'NaN and ±Infinity (half and double precision) written as {"$float": …}; half and single precision finite values; −0.0 written as 0 (JSON has no negative zero).',
    cbor: bytes(
      array(
        map(
          ['nan', 'f97e00'],
          ['inf', 'f97c00'],
          ['ninf', 'f9fc00'],
          ['nan64', 'fb7ff8000000000000'],
          ['half', 'f93e00'],
          ['single', 'fa47c35000'],
          ['negzero', 'f98000'],
          ['big', float64(1e300)],
        ),
      ),
    ),
    count: 1,
    output: [
      {
        nan: { $float: 'NaN' },
        inf: { $float: 'Infinity' },
        ninf: { $float: '-Infinity' },
        nan64: { $float: 'NaN' },
        half: 1.5,
        single: 100000,
        negzero: 0,
        big: 1e300,
      },
    ],
  },
  {
    name: 'lone-surrogate-repair',
    description:
      "Records holding lone UTF-16 surrogates in a value, a key and a nested array, as this agent's encoder writes them: each lone surrogate is U+FFFD (ef bf bd), so the body is valid UTF-8.",
    records: [{ s: 'a\ud800b', 'k\udc00': 1, nested: { list: ['\ud83d', 'ok \ud83c\udf21'] } }],
    count: 1,
    output: [{ s: 'a\ufffdb', 'k\ufffd': 1, nested: { list: ['\ufffd', 'ok \ud83c\udf21'] } }],
  },
  {
    name: 'general-cbor',
    description:
      'Valid CBOR a receiver must read though this encoder never writes it: a "__proto__" key (an ordinary key), indefinite-length text, bytes, array and map, undefined (written null) and other simple values ({"$simple": n}), a leading U+FEFF kept, tag 64 over bytes, a map length not in preferred form.',
    cbor: bytes(
      array(
        `b90007${text('__proto__')}${map(['polluted', 'f5'])}` +
          `${text('itext')}7f${text('ab')}${text('c')}ff` +
          `${text('ibytes')}5f${head(2, 1)}01${head(2, 1)}02ff` +
          `${text('iarray')}9f0102ff` +
          `${text('imap')}bf${text('a')}01ff` +
          `${text('simple')}${array('f7', 'e0', 'f3', 'f8ff')}` +
          `${text('bom')}${text('\ufeffx')}`,
        map(['typed', `d840${head(2, 2)}0102`]),
      ),
    ),
    count: 2,
    // Parsed from text: in an object literal `__proto__` would set the prototype instead of making a key.
    output: JSON.parse(
      '[{"__proto__":{"polluted":true},"itext":"abc","ibytes":{"$base64":"AQI="},"iarray":[1,2],"imap":{"a":1},' +
        '"simple":[null,{"$simple":0},{"$simple":19},{"$simple":255}],"bom":"\\ufeffx"},{"typed":{"$base64":"AQI="}}]',
    ) as unknown[],
  },
  {
    name: 'self-described',
    description: 'Tag 55799 (self-described CBOR, d9 d9 f7) in front of the batch array; an empty record.',
    cbor: bytes(`d9d9f7${array(map())}`),
    count: 1,
    output: [{}],
  },
  {
    name: 'empty-batch-seq-0',
    description: 'Count 0 with an empty array, and seq 0: both valid; the batch is taken (and deduplicated) and writes no lines.',
    cbor: bytes(array()),
    count: 0,
    seq: 0,
    output: [],
  },
];

type Rejection = {
  name: string;
  description: string;
  error: ErrorCode;
  /** The reason this receiver gives (docs/wire-format.md, "Rejections"); null where the code says it all. */
  reason: string | null;
  maxBatchBytes?: number;
  /** The receiver runs with this receiver.max_records. */
  maxRecords?: number;
  /** The receiver runs with this receiver.max_envelope_bytes. */
  maxEnvelopeBytes?: number;
} & ({ raw: (good: Uint8Array) => Uint8Array } | { body: () => Uint8Array; compression?: Compression; count?: number; seq?: number });

export const REJECTION_NOTES = [
  'Each "rejections" vector is an envelope a receiver must reject with "error" (the code of docs/wire-format.md, "Receiving"). "reason" names the rule it breaks, as this receiver reports it; another receiver need not use these names. Unless stated, the receiver has the vectors\' keys and a maxBatchBytes of at least 1 MiB and the default maxRecords (100,000) and maxEnvelopeBytes (1 MiB); where "maxBatchBytes", "maxRecords" or "maxEnvelopeBytes" is given, it runs with that limit.',
  'Envelopes whose header is damaged are a good envelope (stream "edge-cases", seq 200, one record) with bytes changed; the others are sealed with the vectors\' keys, so they pass authentication and fail later.',
];

const set = (good: Uint8Array, at: number, value: number): Uint8Array => {
  const out = good.slice();
  out[at] = value;
  return out;
};
const HEADER = 74 + 7 + 10; // device "gw-0001", stream "edge-cases"
const zeros = encodeRecords([{ zeros: new Uint8Array(4096) }]);
const oneRecord = (value: string): Uint8Array => bytes(array(map(['v', value])));

export const REJECTION_CASES: Rejection[] = [
  {
    name: 'truncated-magic',
    description: 'One byte, the first of the magic.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'truncated-header',
    raw: () => bytes('45'),
  },
  { name: 'bad-magic', description: 'Second magic byte changed.', error: 'ENVELOPE_MALFORMED', reason: 'bad-magic', raw: (g) => set(g, 1, 0x42) },
  {
    name: 'unsupported-version-short',
    description: 'Magic and version 2, nothing else: the version is checked as soon as it is there, so this is unsupported, not truncated.',
    error: 'ENVELOPE_UNSUPPORTED',
    reason: 'version',
    raw: () => bytes('454102'),
  },
  {
    name: 'unsupported-version',
    description: 'Version 2 in an otherwise good envelope.',
    error: 'ENVELOPE_UNSUPPORTED',
    reason: 'version',
    raw: (g) => set(g, 2, 2),
  },
  { name: 'version-0', description: 'Version 0.', error: 'ENVELOPE_UNSUPPORTED', reason: 'version', raw: (g) => set(g, 2, 0) },
  {
    name: 'truncated-header',
    description: 'The first 40 bytes of a good envelope.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'truncated-header',
    raw: (g) => g.slice(0, 40),
  },
  {
    name: 'truncated-after-version',
    description: 'Magic and version 1 only.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'truncated-header',
    raw: () => bytes('454101'),
  },
  { name: 'bad-compression', description: 'Compression id 4 (unassigned).', error: 'ENVELOPE_MALFORMED', reason: 'bad-compression', raw: (g) => set(g, 3, 4) },
  { name: 'empty-device', description: 'Device length 0.', error: 'ENVELOPE_MALFORMED', reason: 'empty-name', raw: (g) => set(g, 4, 0) },
  {
    name: 'device-length-past-end',
    description: 'Device length 255 in an envelope whose header then runs past the end.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'truncated-header',
    raw: (g) => set(g, 4, 255).slice(0, 200),
  },
  { name: 'device-not-utf8', description: 'A device id byte 0xff.', error: 'ENVELOPE_MALFORMED', reason: 'invalid-utf8', raw: (g) => set(g, 5, 0xff) },
  {
    name: 'seq-2^53',
    description: "seq = 2^53, above the format's limit 2^53 − 1 (a format rule of v1, checked before the key lookup).",
    error: 'ENVELOPE_MALFORMED',
    reason: 'out-of-range',
    body: () => oneRecord('01'),
    seq: 2 ** 53,
  },
  {
    name: 'truncated-tag',
    description: 'The header and 15 bytes: no room for the 16-byte tag.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'truncated-tag',
    raw: (g) => g.slice(0, HEADER + 15),
  },
  {
    name: 'unknown-centre-key',
    description: 'A centre key id the receiver does not hold.',
    error: 'ENVELOPE_UNKNOWN_KEY',
    reason: null,
    raw: (g) => set(g, HEADER - 24 - 8, g[HEADER - 24 - 8]! ^ 1),
  },
  {
    name: 'tag-flipped',
    description: 'Last tag bit flipped.',
    error: 'ENVELOPE_AUTH_FAILED',
    reason: null,
    raw: (g) => set(g, g.length - 1, g[g.length - 1]! ^ 0x80),
  },
  {
    name: 'epoch-flipped',
    description: 'An epoch bit flipped (only the tag can tell).',
    error: 'ENVELOPE_AUTH_FAILED',
    reason: null,
    raw: (g) => set(g, 23, g[23]! ^ 1),
  },
  {
    name: 'not-deflate',
    description: 'Compression deflate over bytes that are not a raw DEFLATE stream.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'decompress-failed',
    body: () => bytes('ffffffff'),
    compression: 'deflate',
  },
  {
    name: 'decompression-limit',
    description: 'A deflate body that inflates to 4 KiB and more, with the receiver limited to 1024 bytes of output.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'too-large',
    maxBatchBytes: 1024,
    body: () => zlib.deflateRawSync(zeros),
    compression: 'deflate',
  },
  {
    name: 'trailing-after-deflate',
    description: 'A good deflate stream and one byte after its end.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'trailing-compressed',
    body: () => new Uint8Array(Buffer.concat([zlib.deflateRawSync(oneRecord('01')), Buffer.from([0])])),
    compression: 'deflate',
  },
  {
    name: 'second-zstd-frame',
    description: 'Two zstd frames: the body must be one.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'trailing-compressed',
    body: () => new Uint8Array(Buffer.concat([zlib.zstdCompressSync(oneRecord('01')), zlib.zstdCompressSync(oneRecord('01'))])),
    compression: 'zstd',
  },
  {
    name: 'truncated-cbor',
    description: 'An array of 2 holding one record.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'cbor-invalid',
    body: () => bytes(`82${map(['n', '01'])}`),
  },
  {
    name: 'reserved-info',
    description: 'Additional information 28 (reserved).',
    error: 'ENVELOPE_MALFORMED',
    reason: 'cbor-invalid',
    body: () => oneRecord('1c'),
  },
  {
    name: 'stray-break',
    description: 'A break (ff) outside an indefinite-length item.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'cbor-invalid',
    body: () => bytes('81ff'),
  },
  {
    name: 'mixed-chunks',
    description: 'A byte-string chunk inside an indefinite-length text string.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'cbor-invalid',
    body: () => oneRecord(`7f${head(2, 1)}61ff`),
  },
  {
    name: 'two-byte-simple',
    description: 'Simple value 16 in two bytes (f8 10).',
    error: 'ENVELOPE_MALFORMED',
    reason: 'cbor-invalid',
    body: () => oneRecord('f810'),
  },
  {
    name: 'trailing-cbor',
    description: 'A byte after the batch array.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'trailing-cbor',
    body: () => bytes(`${array(map(['n', '01']))}00`),
  },
  {
    name: 'invalid-utf8-value',
    description: 'Text c3 28 (a lead byte without its continuation).',
    error: 'ENVELOPE_MALFORMED',
    reason: 'invalid-utf8',
    body: () => oneRecord('62c328'),
  },
  {
    name: 'encoded-surrogate',
    description: 'Text "a" then ed a0 80, the 3-byte form of the lone surrogate U+D800, as an encoder without the repair writes it.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'invalid-utf8',
    body: () => oneRecord('6461eda080'),
  },
  {
    name: 'invalid-utf8-key',
    description: 'A key c3 28.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'invalid-utf8',
    body: () => bytes(`${array(`${head(5, 1)}62c32801`)}`),
  },
  {
    name: 'utf8-split-across-chunks',
    description: 'An indefinite-length text whose chunks are c3 and a9 ("é" split): each chunk must be valid UTF-8 on its own.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'invalid-utf8',
    body: () => oneRecord('7f61c361a9ff'),
  },
  { name: 'overlong-utf8', description: 'Text c0 af (an overlong "/").', error: 'ENVELOPE_MALFORMED', reason: 'invalid-utf8', body: () => oneRecord('62c0af') },
  { name: 'map-body', description: 'A map, not an array.', error: 'ENVELOPE_MALFORMED', reason: 'not-an-array', body: () => bytes(map(['n', '01'])) },
  {
    name: 'integer-record',
    description: 'An array holding an integer.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'record-not-map',
    body: () => bytes(array('01')),
  },
  { name: 'array-record', description: 'An array holding an array.', error: 'ENVELOPE_MALFORMED', reason: 'record-not-map', body: () => bytes(array(array())) },
  { name: 'integer-key', description: 'A map key 1.', error: 'ENVELOPE_MALFORMED', reason: 'bad-key', body: () => bytes(array(`${head(5, 1)}0101`)) },
  {
    name: 'duplicate-key',
    description: 'The key "n" twice in one map.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'duplicate-key',
    body: () => bytes(array(`${head(5, 2)}${text('n')}01${text('n')}02`)),
  },
  { name: 'unsupported-tag', description: 'Tag 32 (URI).', error: 'ENVELOPE_MALFORMED', reason: 'unsupported-tag', body: () => oneRecord(`d820${text('x')}`) },
  { name: 'date-over-text', description: 'Tag 1 over text.', error: 'ENVELOPE_MALFORMED', reason: 'bad-tag-content', body: () => oneRecord(`c1${text('x')}`) },
  { name: 'date-over-nan', description: 'Tag 1 over NaN.', error: 'ENVELOPE_MALFORMED', reason: 'bad-tag-content', body: () => oneRecord('c1f97e00') },
  { name: 'bignum-over-integer', description: 'Tag 2 over an integer.', error: 'ENVELOPE_MALFORMED', reason: 'bad-tag-content', body: () => oneRecord('c201') },
  {
    name: 'too-deep',
    description: '257 nested arrays (the limit is 256 levels of arrays and maps, the batch array included).',
    error: 'ENVELOPE_MALFORMED',
    reason: 'too-deep',
    body: () => bytes(`${'81'.repeat(257)}01`),
  },
  {
    name: 'count-mismatch',
    description: 'Header count 2, one record.',
    error: 'ENVELOPE_MALFORMED',
    reason: 'count-mismatch',
    body: () => bytes(array(map(['n', '01']))),
    count: 2,
  },
  {
    name: 'too-many-records',
    description: 'Three empty records, with the receiver limited to 2 records a batch (refused by the walk before any record is decoded).',
    error: 'ENVELOPE_MALFORMED',
    reason: 'too-many-records',
    maxRecords: 2,
    body: () => bytes(array(map(), map(), map())),
    count: 3,
  },
  {
    name: 'envelope-too-large',
    description: 'An envelope of more than 256 bytes, with the receiver limited to 256: refused by its size alone, before any key is looked up.',
    error: 'ENVELOPE_TOO_LARGE',
    reason: null,
    maxEnvelopeBytes: 256,
    body: () => oneRecord(text('x'.repeat(300))),
  },
];

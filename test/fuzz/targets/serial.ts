/**
 * The serial source's framers and decoders (drivers/sources/serial/framer.ts, decode.ts, nmea.ts) on byte
 * streams cut into arbitrary chunks. Properties: nothing throws; what a framer keeps between pushes stays
 * within its frame limit; no frame is longer than allowed; every decoder answers with fields or a reason; and
 * the frames do not depend on how the stream was chunked (the same bytes framed in one push give the same).
 * The NMEA parser is also fed sentences whose checksum is recomputed after mutation, so the field parsers
 * (not only the checksum test) see hostile text.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createDecoder } from '../../../drivers/sources/serial/decode.ts';
import { createFramer } from '../../../drivers/sources/serial/framer.ts';
import { checksum, parseNmea } from '../../../drivers/sources/serial/nmea.ts';
import type { Framing } from '../../../drivers/sources/serial/options.ts';
import type { CorpusEntry } from '../lib/corpus.ts';
import { applyByteMutations, byteMutation } from '../lib/mutate.ts';
import type { FuzzTarget } from '../lib/run.ts';

export interface SerialCase {
  framing: Framing;
  maxFrameBytes: number;
  stream: Uint8Array;
  /** Chunk lengths the stream is pushed in (the rest goes in one last push); `reopen` marks a port reopen after that chunk. */
  chunks: { length: number; reopen: boolean }[];
  /** A sentence handed straight to the NMEA parser (mode nmea only). */
  sentence?: string;
}

const framings: fc.Arbitrary<Framing> = fc.oneof(
  fc.constantFrom('\n', '\r\n', '|', 'END').map((delimiter): Framing => ({ mode: 'lines', delimiter })),
  fc.constantFrom('\n', '\r\n').map((delimiter): Framing => ({ mode: 'json_lines', delimiter })),
  fc.boolean().map((numbers): Framing => ({ mode: 'regex', delimiter: '\n', pattern: 'temp=(?<temp>[-0-9.]+)(?: hum=(?<hum>\\d+))?', numbers })),
  fc.boolean().map((require_checksum): Framing => ({ mode: 'nmea', require_checksum })),
  fc
    .record({ length: fc.integer({ min: 1, max: 24 }), sync: fc.option(fc.constantFrom('aa55', '24', 'aa'), { nil: undefined }), hex: fc.boolean() })
    .map(({ length, sync, hex }): Framing => ({ mode: 'fixed', length, sync, encoding: hex ? 'hex' : 'bytes' })),
  fc
    .record({
      prefix_bytes: fc.constantFrom(1 as const, 2 as const, 4 as const),
      endian: fc.constantFrom('big' as const, 'little' as const),
      length_includes_prefix: fc.boolean(),
      max_length: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
      sync: fc.option(fc.constantFrom('aa55', 'aa'), { nil: undefined }),
    })
    .map((f): Framing => ({ mode: 'length_prefixed', ...f, encoding: 'hex' })),
);

/** Recomputes `*hh` after a mutation, so a mutated sentence reaches the field parsers. */
function withChecksum(sentence: string): string {
  const star = sentence.lastIndexOf('*');
  const body = star > 0 ? sentence.slice(1, star) : sentence.slice(1);
  return `${sentence[0] ?? '$'}${body}*${checksum(body).toString(16).toUpperCase().padStart(2, '0')}`;
}

function frameLimit(c: SerialCase): number {
  const f = c.framing;
  if (f.mode === 'fixed') return f.length;
  if (f.mode === 'length_prefixed') return Math.min(f.max_length ?? c.maxFrameBytes, c.maxFrameBytes);
  return c.maxFrameBytes;
}

/** Bytes a framer may hold between pushes: a frame in progress plus its framing (sync, prefix, delimiter). */
function retainLimit(c: SerialCase): number {
  const f = c.framing;
  const extra = f.mode === 'fixed' || f.mode === 'length_prefixed' ? 2 + 4 : f.mode === 'nmea' ? 2 : Buffer.byteLength(f.delimiter);
  return Math.max(frameLimit(c), c.maxFrameBytes) + extra;
}

/** Frames the stream in the given chunks; returns the frames, checking the per-push properties on the way. */
function frame(c: SerialCase, chunks: SerialCase['chunks']): string[] {
  const frames: string[] = [];
  const decode = createDecoder(c.framing);
  const limit = frameLimit(c);
  const framer = createFramer(c.framing, c.maxFrameBytes, {
    frame: (bytes) => {
      assert.ok(bytes.length <= limit, `a frame of ${bytes.length} bytes passed the ${limit}-byte limit`);
      frames.push(bytes.toString('hex'));
      const decoded = decode(bytes);
      assert.ok(decoded.ok ? typeof decoded.fields === 'object' : typeof decoded.reason === 'string', 'a decoder answered neither fields nor a reason');
    },
    discard: (_reason, sample) => assert.ok(sample.length > 0, 'an empty discard was reported'),
  });
  const stream = Buffer.from(c.stream);
  let pushed = 0;
  const push = (bytes: Buffer) => {
    framer.push(bytes);
    pushed += bytes.length;
    const held = pushed - framer.consumed;
    assert.ok(held >= 0 && held <= retainLimit(c), `the framer holds ${held} bytes (limit ${retainLimit(c)}) after ${pushed} bytes`);
  };
  let at = 0;
  for (const chunk of chunks) {
    if (at >= stream.length) break;
    push(stream.subarray(at, at + chunk.length));
    at += chunk.length;
    if (chunk.reopen) {
      framer.reopened();
      frames.push('reopen');
      pushed = framer.consumed; // what was held is cut off
    }
  }
  if (at < stream.length) push(stream.subarray(at));
  return frames;
}

function check(c: SerialCase): void {
  if (c.sentence !== undefined) {
    for (const requireChecksum of [true, false]) {
      const r = parseNmea(c.sentence, requireChecksum);
      assert.ok(
        r.ok ? typeof r.fields === 'object' : r.reason === 'bad_checksum' || r.reason === 'bad_sentence',
        'parseNmea answered neither fields nor a reason',
      );
      if (r.ok) for (const v of Object.values(r.fields)) if (typeof v === 'number') assert.ok(Number.isFinite(v), `a field is ${v}`);
    }
  }
  const chunked = frame(c, c.chunks);
  if (c.chunks.some((k) => k.reopen)) return; // a reopen cuts the stream: no single-push twin to compare with
  const whole = frame(c, []);
  assert.deepEqual(chunked, whole, 'the frames depend on how the stream was chunked');
}

function arbitrary(entries: readonly CorpusEntry[]): fc.Arbitrary<SerialCase> {
  const streams = entries.filter((e) => !e.name.endsWith('.case')).map((e) => new Uint8Array(e.bytes));
  const sentences = streams.flatMap((s) => Buffer.from(s).toString('latin1').split(/\r?\n/)).filter((l) => l.startsWith('$') || l.startsWith('!'));
  const stream = fc.oneof(
    fc
      .tuple(fc.integer({ min: 0, max: streams.length - 1 }), fc.array(byteMutation(streams.length), { maxLength: 8 }), fc.integer({ min: 1, max: 4 }))
      .map(([i, muts, times]) => applyByteMutations(Buffer.concat(Array<Buffer>(times).fill(Buffer.from(streams[i]!))), muts, streams)),
    fc.uint8Array({ maxLength: 300 }),
    fc
      .array(fc.constantFrom('$', '!', '*', ',', '\r', '\n', '\r\n', 'GPGGA', '{', '}', '"', '\xaa\x55', '\x00', 'a'), { maxLength: 60 })
      .map((parts) => new Uint8Array(Buffer.from(parts.join(''), 'latin1'))),
  );
  const sentence = fc
    .tuple(fc.integer({ min: 0, max: Math.max(0, sentences.length - 1) }), fc.array(byteMutation(1), { maxLength: 4 }), fc.boolean())
    .map(([i, muts, fix]) => {
      const mutated = Buffer.from(applyByteMutations(Buffer.from(sentences[i] ?? '$GPGGA', 'latin1'), muts)).toString('latin1');
      return fix ? withChecksum(mutated) : mutated;
    });
  // Frames of about the limit's length (one under, at, one over), each ended as the framing ends frames:
  // the edge where a split delimiter or line end must not turn a frame of exactly the limit into an overlong one.
  const nearLimit = fc.array(fc.integer({ min: -2, max: 2 }), { minLength: 1, maxLength: 6 });
  return fc
    .record({
      framing: framings,
      maxFrameBytes: fc.integer({ min: 8, max: 96 }),
      stream,
      nearLimit: fc.option(nearLimit, { nil: undefined }),
      chunks: fc.array(fc.record({ length: fc.integer({ min: 1, max: 40 }), reopen: fc.boolean() }), { maxLength: 40 }),
      sentence: fc.option(sentence, { nil: undefined }),
    })
    .map(({ nearLimit, ...c }): SerialCase => {
      const chunks = c.chunks.map((k, i) => ({ ...k, reopen: k.reopen && i % 7 === 3 }));
      if (nearLimit === undefined) return { ...c, chunks };
      const f = c.framing;
      const [start, end] = f.mode === 'nmea' ? ['$', '\r\n'] : 'delimiter' in f ? ['', f.delimiter] : ['', ''];
      const lines = nearLimit.map((d, i) => `${start}${String.fromCharCode(65 + (i % 26)).repeat(Math.max(0, c.maxFrameBytes + d - start.length))}${end}`);
      return { ...c, chunks, stream: new Uint8Array(Buffer.from(`${start}x${end}${lines.join('')}`, 'latin1')) };
    });
}

/** A `.case` file: the case as JSON, the stream in hex. Plain stream files (.txt, .bin) are seeds. */
function toFile(c: SerialCase): { ext: string; bytes: Uint8Array } {
  return { ext: 'case', bytes: Buffer.from(`${JSON.stringify({ ...c, stream: Buffer.from(c.stream).toString('hex') }, null, 2)}\n`) };
}

function fromCorpus(entries: readonly CorpusEntry[]): SerialCase[] {
  return entries.flatMap((e): SerialCase[] => {
    if (e.name.endsWith('.case')) {
      const c = JSON.parse(e.bytes.toString('utf8')) as SerialCase & { stream: string };
      return [{ ...c, stream: new Uint8Array(Buffer.from(c.stream, 'hex')) }];
    }
    const stream = new Uint8Array(e.bytes);
    const byteAtATime = Array.from({ length: stream.length }, () => ({ length: 1, reopen: false }));
    return [
      { framing: { mode: 'nmea', require_checksum: true }, maxFrameBytes: 82, stream, chunks: byteAtATime },
      { framing: { mode: 'lines', delimiter: '\r\n' }, maxFrameBytes: 16, stream, chunks: byteAtATime },
      {
        framing: { mode: 'length_prefixed', prefix_bytes: 2, endian: 'big', length_includes_prefix: false, sync: 'aa55', encoding: 'hex' },
        maxFrameBytes: 8,
        stream,
        chunks: byteAtATime,
      },
    ];
  });
}

export const serialTarget: FuzzTarget<SerialCase> = {
  name: 'serial',
  limits: { msPerInput: 5000, bytesPerInput: 64 * 2 ** 20 },
  fromCorpus,
  arbitrary,
  check,
  toFile,
  describe: (c) => Buffer.from(toFile(c).bytes).toString('utf8').replace(/\s+/g, ' ').slice(0, 600),
};

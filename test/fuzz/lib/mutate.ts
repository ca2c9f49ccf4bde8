/**
 * Mutators over seed inputs. A mutation is plain data (an operation and where), so fast-check can shrink a
 * failing input towards its seed: fewer mutations, smaller positions, the first seed.
 */
import fc from 'fast-check';

/** Values that sit on the edges of length fields and counters, written at some offset in some width. */
const INTERESTING = [
  0n,
  1n,
  0x7fn,
  0x80n,
  0xffn,
  0x100n,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x1fffffffffffffn,
  0xffffffffffffffffn,
];

export type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'repeat'; at: number; length: number; times: number }
  | { op: 'truncate'; at: number }
  | { op: 'edge'; at: number; width: 1 | 2 | 4 | 8; little: boolean; value: number }
  | { op: 'splice'; at: number; from: number; start: number; length: number };

export function byteMutation(seedCount: number): fc.Arbitrary<ByteMutation> {
  const at = fc.nat();
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), at, value: fc.integer({ min: 0, max: 255 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 32 }) }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('repeat' as const), at, length: fc.integer({ min: 1, max: 16 }), times: fc.integer({ min: 1, max: 64 }) }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('edge' as const),
        at,
        width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
        little: fc.boolean(),
        value: fc.integer({ min: 0, max: INTERESTING.length - 1 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('splice' as const),
        at,
        from: fc.integer({ min: 0, max: Math.max(0, seedCount - 1) }),
        start: fc.nat(),
        length: fc.integer({ min: 1, max: 64 }),
      }),
    },
  );
}

export function applyByteMutations(seed: Uint8Array, mutations: readonly ByteMutation[], seeds: readonly Uint8Array[] = []): Uint8Array {
  let b = Buffer.from(seed);
  for (const m of mutations) {
    const at = m.at % (b.length + 1);
    switch (m.op) {
      case 'flip':
        if (at < b.length) b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        if (at < b.length) b[at] = m.value;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'repeat': {
        const part = b.subarray(at, at + m.length);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(m.times + 1).fill(part), b.subarray(at + m.length)]);
        break;
      }
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'edge': {
        const edge = Buffer.alloc(8);
        edge.writeBigUInt64BE(INTERESTING[m.value]! & 0xffffffffffffffffn);
        const bytes = edge.subarray(8 - m.width);
        if (m.little) bytes.reverse();
        b = Buffer.concat([b.subarray(0, at), bytes, b.subarray(Math.min(b.length, at + m.width))]);
        break;
      }
      case 'splice': {
        const other = seeds[m.from];
        if (!other || other.length === 0) break;
        const start = m.start % other.length;
        b = Buffer.concat([b.subarray(0, at), other.subarray(start, start + m.length), b.subarray(at)]);
        break;
      }
    }
  }
  return new Uint8Array(b);
}

/** A seed picked from `seeds` (shrinking towards the first) with up to `max` mutations applied. */
export function mutatedBytes(seeds: readonly Uint8Array[], max = 8): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('mutatedBytes needs at least one seed');
  return fc
    .tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(byteMutation(seeds.length), { minLength: 1, maxLength: max }))
    .map(([i, muts]) => applyByteMutations(seeds[i]!, muts, seeds));
}

/** Fragments that mean something to a YAML parser or to the config schema. */
const YAML_TOKENS = [
  ':',
  ': ',
  '- ',
  '\n',
  '\n  ',
  '  ',
  '\t',
  '#',
  '&a ',
  '*a',
  '<<: ',
  '!!binary ',
  '!!str ',
  '!!int ',
  '!!map ',
  '!!set ',
  '!!omap ',
  '!custom ',
  '? ',
  '|',
  '>-',
  '{',
  '}',
  '[',
  ']',
  ',',
  '"',
  "'",
  '\\',
  '%YAML 1.1\n---\n',
  '---\n',
  '...\n',
  '~',
  'null',
  'true',
  '0x1F',
  '1e400',
  '-.inf',
  '.nan',
  '99999999999999999999',
  '-1',
  '0',
  '1ms',
  '1h',
  '5 GB',
  '__proto__',
  'constructor',
  'prototype',
  'type: ',
  'sources:',
  'sink:',
  '\u0000',
  '\ufeff',
  '\ud800',
  '\u2028',
  'é',
  '😀',
];

export type TextMutation =
  | { op: 'deleteLine'; at: number }
  | { op: 'duplicateLine'; at: number }
  | { op: 'swapLines'; at: number; with: number }
  | { op: 'indent'; at: number; by: number }
  | { op: 'token'; at: number; token: number }
  | { op: 'text'; at: number; text: string }
  | { op: 'deleteChars'; at: number; length: number }
  | { op: 'spliceLine'; at: number; from: number; line: number };

export function textMutation(seedCount: number): fc.Arbitrary<TextMutation> {
  const at = fc.nat();
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({ op: fc.constant('deleteLine' as const), at }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicateLine' as const), at }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('swapLines' as const), at, with: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('indent' as const), at, by: fc.integer({ min: -4, max: 4 }) }) },
    { weight: 5, arbitrary: fc.record({ op: fc.constant('token' as const), at, token: fc.integer({ min: 0, max: YAML_TOKENS.length - 1 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('text' as const), at, text: fc.string({ maxLength: 12, unit: 'binary' }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('deleteChars' as const), at, length: fc.integer({ min: 1, max: 12 }) }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('spliceLine' as const), at, from: fc.integer({ min: 0, max: Math.max(0, seedCount - 1) }), line: fc.nat() }),
    },
  );
}

export function applyTextMutations(seed: string, mutations: readonly TextMutation[], seeds: readonly string[] = []): string {
  let t = seed;
  for (const m of mutations) {
    const lines = t.split('\n');
    const line = m.at % lines.length;
    const pos = m.at % (t.length + 1);
    switch (m.op) {
      case 'deleteLine':
        lines.splice(line, 1);
        t = lines.join('\n');
        break;
      case 'duplicateLine':
        lines.splice(line, 0, lines[line]!);
        t = lines.join('\n');
        break;
      case 'swapLines': {
        const other = m.with % lines.length;
        [lines[line], lines[other]] = [lines[other]!, lines[line]!];
        t = lines.join('\n');
        break;
      }
      case 'indent':
        lines[line] = m.by >= 0 ? ' '.repeat(m.by) + lines[line] : lines[line]!.replace(new RegExp(`^ {0,${-m.by}}`), '');
        t = lines.join('\n');
        break;
      case 'token':
        t = t.slice(0, pos) + YAML_TOKENS[m.token] + t.slice(pos);
        break;
      case 'text':
        t = t.slice(0, pos) + m.text + t.slice(pos);
        break;
      case 'deleteChars':
        t = t.slice(0, pos) + t.slice(pos + m.length);
        break;
      case 'spliceLine': {
        const other = (seeds[m.from] ?? '').split('\n');
        lines.splice(line, 0, other[m.line % other.length]!);
        t = lines.join('\n');
        break;
      }
    }
  }
  return t;
}

export function mutatedText(seeds: readonly string[], max = 6): fc.Arbitrary<string> {
  if (seeds.length === 0) throw new Error('mutatedText needs at least one seed');
  return fc
    .tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(textMutation(seeds.length), { minLength: 1, maxLength: max }))
    .map(([i, muts]) => applyTextMutations(seeds[i]!, muts, seeds));
}

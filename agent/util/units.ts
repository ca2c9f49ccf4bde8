import { z } from './zod.ts';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/;
const SIZE_BYTES: Record<string, number> = { B: 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1024 ** 2, GB: 1e9, GiB: 1024 ** 3 };

/**
 * The same syntaxes as JSON Schema patterns (the parsers trim first, so the patterns allow the spaces around).
 * They go into the input side's metadata, so the config file's JSON Schema says how a duration or size is
 * written instead of "any number or string", and the docs generator tells the two apart by them.
 */
export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)\\s*$';
export const SIZE_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(B|KB|KiB|MB|MiB|GB|GiB)?\\s*$';

export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = DURATION.exec(value.trim());
  return m ? Math.round(Number(m[1]) * DURATION_MS[m[2]!]!) : undefined;
}

export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE.exec(value.trim());
  return m ? Math.round(Number(m[1]) * SIZE_BYTES[m[2] ?? 'B']!) : undefined;
}

/** A duration written as milliseconds (number) or as "500ms", "10s", "5m", "1h", "7d"; parsed to milliseconds. */
export function duration(minMs = 0) {
  const input = z.union([z.number(), z.string()]).meta({
    anyOf: [
      { type: 'number', minimum: minMs },
      { type: 'string', pattern: DURATION_PATTERN },
    ],
  });
  return input.transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.issues.push({ code: 'custom', input: value, message: `expected a duration such as 500ms, 10s, 5m, 1h or 7d, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    if (ms < minMs) {
      ctx.issues.push({ code: 'custom', input: value, message: `must be at least ${minMs} ms, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A size written as bytes (number) or as "64KiB", "512MiB", "1GB"; parsed to bytes. */
export function size() {
  const input = z.union([z.number(), z.string()]).meta({
    anyOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', pattern: SIZE_PATTERN },
    ],
  });
  return input.transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.issues.push({ code: 'custom', input: value, message: `expected a size such as 4096, 64KiB, 512MiB or 1GB, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return bytes;
  });
}

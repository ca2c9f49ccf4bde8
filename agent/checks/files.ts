/**
 * The files the drivers' settings name (TLS certificates and keys, password and token files): they exist,
 * are regular files and can be read. Drivers mark such settings with `fileOption` (agent/util/file-option.ts)
 * in their options schema; this walks each configured driver's schema beside its config, so it knows no
 * driver by name. Read once here, where the drivers read them at every connect (they may rotate).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { z } from 'zod';
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import { fileOptions, type FileOptionMeta } from '../util/file-option.ts';
import { type ConfigProblem, error, warning } from './problems.ts';

interface NamedFile {
  readonly path: readonly PropertyKey[];
  readonly file: string;
  readonly meta: FileOptionMeta;
}

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; element?: z.ZodType; shape?: Record<string, z.ZodType> };

/** The file settings in `value` that `schema` marks, with their paths (wrappers looked through). */
export function namedFiles(schema: z.ZodType, value: unknown, path: readonly PropertyKey[]): NamedFile[] {
  const meta = fileOptions.get(schema);
  if (meta) return typeof value === 'string' ? [{ path, file: value, meta }] : [];
  const def = schema._zod.def as Def;
  if (def.innerType) return namedFiles(def.innerType, value, path); // optional, default, prefault, nullable…
  if (def.type === 'pipe' && def.in) return namedFiles(def.in, value, path);
  if (def.type === 'object' && def.shape && value !== null && typeof value === 'object') {
    return Object.entries(def.shape).flatMap(([key, field]) => namedFiles(field, (value as Record<string, unknown>)[key], [...path, key]));
  }
  if (def.type === 'array' && def.element && Array.isArray(value)) return value.flatMap((item, i) => namedFiles(def.element!, item, [...path, i]));
  return [];
}

/** Every driver instance of the config with its options schema: sources, the sink, the receiver's input. */
function driverSettings(loaded: LoadedConfig): { schema: z.ZodType; value: unknown; path: PropertyKey[] }[] {
  const { config, drivers } = loaded;
  const out = config.sources.map((s, i) => ({
    schema: drivers.source(s.type).options as z.ZodType,
    value: s as unknown,
    path: ['sources', i] as PropertyKey[],
  }));
  if (config.sink) out.push({ schema: drivers.sink(config.sink.type).options, value: config.sink, path: ['sink'] });
  const input = config.receiver?.input;
  if (input) out.push({ schema: drivers.sink(input.type).options, value: input, path: ['receiver', 'input'] });
  return out;
}

/** Why `file` cannot be read, or undefined; and whether others can read it. */
function inspect(file: string): { problem?: string; mode?: number } {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(file);
  } catch (err) {
    return { problem: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})` };
  }
  if (!stats.isFile()) return { problem: 'is not a regular file' };
  try {
    // Opening and reading a byte proves the permissions (access() would answer for the real, not the effective, user).
    const fd = openSync(file, 'r');
    try {
      readSync(fd, Buffer.alloc(1), 0, 1, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return { problem: `cannot be read (${(err as Error).message})` };
  }
  return { mode: Number(stats.mode) & 0o777 };
}

export function fileProblems(loaded: LoadedConfig): ConfigProblem[] {
  const paths = configPaths(loaded);
  const problems: ConfigProblem[] = [];
  for (const setting of driverSettings(loaded)) {
    for (const named of namedFiles(setting.schema, setting.value, setting.path)) {
      const file = paths.fromBase(named.file);
      const { problem, mode } = inspect(file);
      if (problem !== undefined) problems.push(error(named.path, `${named.meta.what} file ${file} ${problem}`));
      else if (named.meta.secret && mode !== undefined && (mode & 0o077) !== 0)
        problems.push(warning(named.path, `${named.meta.what} file ${file} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}`));
    }
  }
  return problems;
}

/**
 * The files the drivers' settings name (TLS certificates and keys, password and token files): they exist,
 * are regular files and can be read. Drivers mark such settings with `fileOption` (agent/util/file-option.ts)
 * in their options schema; this walks each configured driver's schema beside its config, so it knows no
 * driver by name. The fleet control connection's files (`fleet.broker`) are marked the same way. Read once here, where the drivers read them at every connect (they may rotate). The embedded
 * broker's password file is checked beside them. `check-config` reports them all; `run` and `receive` refuse
 * to start on an error in those of the drivers they start (a file the config names that is not there is a
 * configuration error, exit 2 at its line, not a connection that fails at every retry).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { z } from '../util/zod.ts';
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import { fleetBrokerSchema } from '../config/schema.ts';
import { fileOptions, type FileOptionMeta } from '../util/file-option.ts';
import { type ConfigProblem, error, warning } from './problems.ts';

interface NamedFile {
  readonly path: readonly PropertyKey[];
  readonly file: string;
  readonly meta: FileOptionMeta;
}

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; element?: z.ZodType; shape?: Record<string, z.ZodType> };

/** The settings in `value` whose schema `registry` marks, with their string values and paths (wrappers looked through). */
export function markedSettings<M>(
  registry: { get(schema: z.ZodType): M | undefined },
  schema: z.ZodType,
  value: unknown,
  path: readonly PropertyKey[],
): { path: readonly PropertyKey[]; value: string; meta: M }[] {
  const meta = registry.get(schema);
  if (meta) return typeof value === 'string' ? [{ path, value, meta }] : [];
  const def = schema._zod.def as Def;
  if (def.innerType) return markedSettings(registry, def.innerType, value, path); // optional, default, prefault, nullable…
  if (def.type === 'pipe' && def.in) return markedSettings(registry, def.in, value, path);
  if (def.type === 'object' && def.shape && value !== null && typeof value === 'object') {
    return Object.entries(def.shape).flatMap(([key, field]) => markedSettings(registry, field, (value as Record<string, unknown>)[key], [...path, key]));
  }
  if (def.type === 'array' && def.element && Array.isArray(value))
    return value.flatMap((item, i) => markedSettings(registry, def.element!, item, [...path, i]));
  return [];
}

/** The file settings in `value` that `schema` marks, with their paths. */
export function namedFiles(schema: z.ZodType, value: unknown, path: readonly PropertyKey[]): NamedFile[] {
  return markedSettings(fileOptions, schema, value, path).map(({ path, value, meta }) => ({ path, file: value, meta }));
}

/**
 * Which parts of the config a check looks at. `all` (check-config): everything the file configures. `run`:
 * the sources, the sink, and the receiver's input and the embedded broker when enabled. `receive`: the
 * receiver's input (the sink when it has none), which is all `receive` starts.
 */
export type CheckScope = 'all' | 'run' | 'receive';

/** Every driver instance `scope` starts, with its options schema: sources, the sink, the receiver's input. */
export function driverSettings(loaded: LoadedConfig, scope: CheckScope = 'all'): { schema: z.ZodType; value: unknown; path: PropertyKey[] }[] {
  const { config, drivers } = loaded;
  const out: { schema: z.ZodType; value: unknown; path: PropertyKey[] }[] = [];
  const input = config.receiver?.input;
  if (scope === 'receive') {
    if (input) out.push({ schema: drivers.sink(input.type).options, value: input, path: ['receiver', 'input'] });
    else if (config.sink) out.push({ schema: drivers.sink(config.sink.type).options, value: config.sink, path: ['sink'] });
    return out;
  }
  config.sources.forEach((s, i) => {
    out.push({ schema: drivers.source(s.type).options as z.ZodType, value: s, path: ['sources', i] });
  });
  if (config.sink) out.push({ schema: drivers.sink(config.sink.type).options, value: config.sink, path: ['sink'] });
  if (input && (scope === 'all' || config.receiver?.enabled)) out.push({ schema: drivers.sink(input.type).options, value: input, path: ['receiver', 'input'] });
  return out;
}

/**
 * The fleet control connection's settings (`fleet.broker`: password file and variable, TLS files), with their
 * schema, when `scope` starts remote control (check-config: whenever the config names them).
 */
export function fleetSettings(loaded: LoadedConfig, scope: CheckScope): { schema: z.ZodType; value: unknown; path: PropertyKey[] }[] {
  const { fleet } = loaded.config;
  if (scope === 'receive' || (scope === 'run' && !fleet.enabled)) return [];
  return [{ schema: fleetBrokerSchema, value: fleet.broker, path: ['fleet', 'broker'] }];
}

/** The embedded broker's password file, when `scope` starts the broker (check-config: whenever one is named). */
function brokerFiles(loaded: LoadedConfig, scope: CheckScope): NamedFile[] {
  const { broker } = loaded.config;
  if (broker.password_file === undefined || scope === 'receive' || (scope === 'run' && !broker.embedded)) return [];
  return [{ path: ['broker', 'password_file'], file: broker.password_file, meta: { what: 'embedded broker password', secret: true } }];
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

export function fileProblems(loaded: LoadedConfig, scope: CheckScope = 'all'): ConfigProblem[] {
  const paths = configPaths(loaded);
  const problems: ConfigProblem[] = [];
  const files = [
    ...[...driverSettings(loaded, scope), ...fleetSettings(loaded, scope)].flatMap((s) => namedFiles(s.schema, s.value, s.path)),
    ...brokerFiles(loaded, scope),
  ];
  for (const named of files) {
    const file = paths.fromBase(named.file);
    const { problem, mode } = inspect(file);
    if (problem !== undefined) problems.push(error(named.path, `${named.meta.what} file ${file} ${problem}`));
    else if (named.meta.secret && mode !== undefined && (mode & 0o077) !== 0)
      problems.push(warning(named.path, `${named.meta.what} file ${file} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}`));
  }
  return problems;
}

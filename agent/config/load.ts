import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from '../util/zod.ts';
import { AgentError } from '../errors.ts';
import type { DriverCatalog } from './catalog.ts';
import type { Config } from './schema.ts';
import { failingAlias, keyAt, MAX_ALIAS_COUNT, nearestNode, nodeAt } from './yaml-nodes.ts';

export interface ConfigIssue {
  path: string;
  line: number | undefined;
  column: number | undefined;
  message: string;
}

export interface LoadedConfig {
  config: Config;
  /** Directory relative paths in the config are resolved against. */
  baseDir: string;
  /** Where the config came from, for messages. */
  origin: string;
  /** The drivers it was validated against: the runtime creates its sources and sinks from these. */
  drivers: DriverCatalog;
  /**
   * Where the setting at `path` is written (line and column, 1-based), or where its nearest written parent
   * is, when the setting is a default; undefined when nothing of the path is written. For the checks that run
   * after the schema (key files, TLS files), so their problems point at a line as the schema's do.
   */
  position(path: readonly PropertyKey[]): { line: number; column: number; written: boolean } | undefined;
  /**
   * The document as written (plain data, before defaults): what remote configuration layers are merged onto
   * (agent/remote/config-merge.ts). Absent for configs built by hand.
   */
  data?: unknown;
}

/** `sources[0].interval` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(top level)';
}

function issueMessage(drivers: DriverCatalog, issue: z.core.$ZodIssue, present: boolean): string {
  if (issue.code === 'invalid_union' && (issue as { note?: string }).note === 'No matching discriminator') {
    const list = issue.path[0] === 'sources' ? drivers.sources : drivers.sinks;
    return `${present ? 'unknown type' : 'missing type'}; known types: ${list.map((d) => d.type).join(', ')}`;
  }
  // A bad map key (a stream name, say): zod's own text is only "Invalid key in record"; the reason is inside.
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return `invalid key: ${issue.issues.map((i) => i.message).join('; ')}`;
  return issue.message;
}

/** The document as plain data; an alias bomb or an alias without its anchor is a config error at its line. */
function documentData(doc: Document, lines: LineCounter, origin: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml package throws a ReferenceError without a position for both; find the alias it stopped at.
    if (!(err instanceof ReferenceError)) throw err;
    const failed = failingAlias(doc);
    const pos = failed?.alias.range ? lines.linePos(failed.alias.range[0]) : undefined;
    const name = failed ? `*${failed.alias.source}` : 'an alias';
    const message =
      failed?.reason === 'unresolved'
        ? `alias ${name} has no anchor &${failed.alias.source} before it`
        : `alias ${name} expands the document beyond ${MAX_ALIAS_COUNT} values (each level of aliases repeats the one before); refusing it as an alias bomb`;
    throw configError(origin, [{ path: '(yaml)', line: pos?.line, column: pos?.col, message }], err);
  }
}

/**
 * A config is parsed once per load: zod's compiled fast path for objects (generated with `new Function` on
 * the first parse of each object schema) costs more to build than it saves on one parse (≈15 ms of every
 * start, 30 ms under the profiler).
 */
const ONCE = { jitless: true } as const;

/** Pure: YAML text in, a validated config or every problem found (with path, line and column) out. */
export function parseConfig(drivers: DriverCatalog, text: string, origin: string, baseDir: string): LoadedConfig {
  const lines = new LineCounter();
  // merge: `<<: *base` merges an anchored map (YAML 1.1's merge key, which YAML 1.2 leaves to the reader).
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return { path: '(yaml)', line: pos.line, column: pos.col, message: e.message.split('\n')[0]! };
    });
    throw configError(origin, issues);
  }
  const data = documentData(doc, lines, origin) ?? {};
  const result = drivers.schemasFor(data).configSchema.safeParse(data, ONCE);
  if (result.success) return { config: result.data as Config, baseDir, origin, drivers, position: positionLookup(doc, lines), data };
  const issues: ConfigIssue[] = [];
  for (const issue of result.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) {
      // An unknown or invalid key is pointed at on the key's own line, not at its value.
      const badKey = issue.code === 'invalid_key' ? String(issue.path.at(-1)) : undefined;
      const node =
        key !== undefined ? keyAt(doc, issue.path, key) : badKey !== undefined ? keyAt(doc, issue.path.slice(0, -1), badKey) : nodeAt(doc, issue.path);
      // Missing values have no node of their own: point at the nearest enclosing one that exists.
      const anchor = node?.range ? node : nearestNode(doc, issue.path.slice(0, -1));
      const pos = anchor?.range ? lines.linePos(anchor.range[0]) : undefined;
      const path = key === undefined ? issue.path : [...issue.path, key];
      issues.push({
        path: formatPath(path),
        line: pos?.line,
        column: pos?.col,
        message: key === undefined ? issueMessage(drivers, issue, node !== undefined) : 'unknown key',
      });
    }
  }
  throw configError(origin, issues);
}

/**
 * Pure: a plain object (a merged configuration, not a file) in, a validated config or every problem found
 * (by path; no line, there is no text) out. The same schema as the file's.
 */
export function parseConfigObject(drivers: DriverCatalog, data: unknown, origin: string, baseDir: string): LoadedConfig {
  const result = drivers.schemasFor(data ?? {}).configSchema.safeParse(data ?? {}, ONCE);
  if (result.success) return { config: result.data as Config, baseDir, origin, drivers, position: () => undefined, data };
  const issues: ConfigIssue[] = [];
  for (const issue of result.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) {
      const path = key === undefined ? issue.path : [...issue.path, key];
      issues.push({
        path: formatPath(path),
        line: undefined,
        column: undefined,
        message: key === undefined ? issueMessage(drivers, issue, true) : 'unknown key',
      });
    }
  }
  throw configError(origin, issues);
}

function positionLookup(doc: Document, lines: LineCounter): LoadedConfig['position'] {
  return (path) => {
    const own = nodeAt(doc, path);
    const node = own?.range ? own : nearestNode(doc, path);
    // Only the document itself: nothing of the path is written, and line 1 would point at nothing useful.
    if (!node?.range || (node !== own && node === doc.contents)) return undefined;
    const pos = lines.linePos(node.range[0]);
    return { line: pos.line, column: pos.col, written: node === own };
  };
}

/** Issues printed at most: a hostile file can produce thousands, and the first ones say what is wrong. */
const MAX_PRINTED_ISSUES = 50;

/** One line per issue: `  file:line:column path: message`. */
export function formatIssue(origin: string, i: ConfigIssue): string {
  return `  ${origin}${i.line ? `:${i.line}:${i.column}` : ''} ${i.path}: ${i.message}`;
}

/** The error every configuration problem ends in (exit code 2): every issue with its place, `details.issues`. */
export function configError(origin: string, issues: ConfigIssue[], cause?: unknown): AgentError {
  const lines = issues.slice(0, MAX_PRINTED_ISSUES).map((i) => formatIssue(origin, i));
  if (issues.length > MAX_PRINTED_ISSUES) lines.push(`  … and ${issues.length - MAX_PRINTED_ISSUES} more`);
  return new AgentError('CONFIG_INVALID', `invalid configuration in ${origin}:\n${lines.join('\n')}`, { details: { issues }, cause });
}

export function loadConfigFile(drivers: DriverCatalog, path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AgentError('CONFIG_UNREADABLE', `cannot read config file ${path}`, { cause });
  }
  return parseConfig(drivers, text, path, dirname(resolve(path)));
}

/** Checks what `run` needs beyond the schema (a device id, a sink, at least one source). */
export function requireRunnable(loaded: LoadedConfig): void {
  const issues: ConfigIssue[] = [];
  const { config } = loaded;
  if (!config.device) issues.push({ path: 'device.id', line: undefined, column: undefined, message: 'required to run the agent' });
  if (!config.sink) issues.push({ path: 'sink', line: undefined, column: undefined, message: 'required to run the agent' });
  if (config.sources.length === 0)
    issues.push({ path: 'sources', line: undefined, column: undefined, message: 'at least one source is required to run the agent' });
  if (issues.length > 0) throw configError(loaded.origin, issues);
}

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { AgentError } from '../errors.ts';
import type { DriverCatalog } from './catalog.ts';
import type { Config } from './schema.ts';

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
}

/** `sources[0].interval` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(top level)';
}

function nodeAt(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  let node: unknown = doc.contents;
  for (const key of path) {
    if (isMap(node)) node = node.items.find((pair) => (pair.key as { value?: unknown })?.value === key)?.value;
    else if (isSeq(node) && typeof key === 'number') node = node.items[key];
    else return undefined;
  }
  return node as Node | undefined;
}

/** The YAML key node for `key` inside the map at `path` (to point at an unknown key itself). */
function keyAt(doc: Document, path: readonly PropertyKey[], key: string): Node | undefined {
  const map = nodeAt(doc, path);
  if (!isMap(map)) return undefined;
  return map.items.find((pair) => (pair.key as { value?: unknown })?.value === key)?.key as Node | undefined;
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

/** Pure: YAML text in, a validated config or every problem found (with path, line and column) out. */
export function parseConfig(drivers: DriverCatalog, text: string, origin: string, baseDir: string): LoadedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return { path: '(yaml)', line: pos.line, column: pos.col, message: e.message.split('\n')[0]! };
    });
    throw configError(origin, issues);
  }
  let data: unknown;
  try {
    // yaml refuses to expand aliases past its limit (a "billion laughs" document) by throwing from toJS.
    data = (doc.toJS() as unknown) ?? {};
  } catch (cause) {
    const issue: ConfigIssue = { path: '(yaml)', line: undefined, column: undefined, message: (cause as Error).message };
    throw new AgentError('CONFIG_INVALID', `invalid configuration in ${origin}:\n  ${origin} (yaml): ${issue.message}`, {
      cause,
      details: { issues: [issue] },
    });
  }
  const result = drivers.schemas.configSchema.safeParse(data);
  if (result.success) return { config: result.data as Config, baseDir, origin, drivers };
  const issues: ConfigIssue[] = [];
  for (const issue of result.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) {
      // An unknown or invalid key is pointed at on the key's own line, not at its value.
      const badKey = issue.code === 'invalid_key' ? String(issue.path.at(-1)) : undefined;
      const node =
        key !== undefined ? keyAt(doc, issue.path, key) : badKey !== undefined ? keyAt(doc, issue.path.slice(0, -1), badKey) : nodeAt(doc, issue.path);
      // Missing values have no node of their own: point at the nearest enclosing one that exists.
      let anchor = node;
      for (let n = issue.path.length; !anchor?.range && n > 0; n--) anchor = nodeAt(doc, issue.path.slice(0, n - 1));
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

function configError(origin: string, issues: ConfigIssue[]): AgentError {
  const text = issues.map((i) => `  ${origin}${i.line ? `:${i.line}:${i.column}` : ''} ${i.path}: ${i.message}`).join('\n');
  return new AgentError('CONFIG_INVALID', `invalid configuration in ${origin}:\n${text}`, { details: { issues } });
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

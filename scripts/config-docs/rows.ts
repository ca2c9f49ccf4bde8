/**
 * Reference-table rows from the config file's JSON Schema: one row per key with its type in words, its
 * default as one would write it, and its description. Reading the JSON Schema (rather than the zod tree) keeps
 * the docs on zod's public export, and the docs and the editor schema cannot disagree.
 */
import { DURATION_PATTERN, SIZE_PATTERN } from '../../agent/util/units.ts';

/** The part of JSON Schema the config schema uses. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  pattern?: string;
  minLength?: number;
  minimum?: number;
  maximum?: number;
}

export interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const SAFE = Number.MAX_SAFE_INTEGER;

/** A value as a code span: a string as written, unless it holds control characters (a newline delimiter). */
export function code(value: unknown): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  return `\`${typeof value === 'string' && !/[\u0000-\u001f]/.test(value) ? value : JSON.stringify(value)}\``;
}

/** Durations and sizes are "number or string"; the pattern of their string branch says which one (agent/util/units.ts). */
function unitOf(js: JsonSchema): { unit: 'duration' | 'size'; min: number } | undefined {
  const text = js.anyOf?.find((a) => a.type === 'string');
  const number = js.anyOf?.find((a) => a.type === 'number' || a.type === 'integer');
  if (text?.pattern === DURATION_PATTERN) return { unit: 'duration', min: number?.minimum ?? 0 };
  if (text?.pattern === SIZE_PATTERN) return { unit: 'size', min: number?.minimum ?? 0 };
  return undefined;
}

/** A parsed value as one would write it in the file: `30s` rather than 30000 for a duration, `1MiB` for a size. */
export function asWritten(js: JsonSchema, value: unknown): unknown {
  const unit = typeof value === 'number' ? unitOf(js)?.unit : undefined;
  if (unit === 'duration') return formatMs(value as number);
  if (unit === 'size') return formatBytes(value as number);
  return value;
}

/** A discriminated union: every alternative is an object with a constant at the same key. */
export function variantsOf(js: JsonSchema): { key: string; variants: JsonSchema[] } | undefined {
  const variants = js.oneOf ?? js.anyOf;
  const first = variants?.[0]?.properties;
  if (!variants || !first) return undefined;
  const key = Object.keys(first).find((k) => variants.every((v) => v.properties?.[k]?.const !== undefined));
  return key === undefined ? undefined : { key, variants };
}

/** A leaf's type in words, with its constraints. */
export function typeText(js: JsonSchema): string {
  const unit = unitOf(js);
  if (unit) return unit.min > 0 ? `${unit.unit} ≥ ${unit.unit === 'duration' ? formatMs(unit.min) : formatBytes(unit.min)}` : unit.unit;
  if (Array.isArray(js.enum)) return `one of ${js.enum.map(code).join(', ')}`;
  if ('const' in js) return code(js.const);
  const alternatives = js.anyOf ?? js.oneOf;
  if (alternatives) {
    if (alternatives.every((a) => 'const' in a)) return `one of ${alternatives.map((a) => code(a.const)).join(', ')}`;
    return alternatives.map(typeText).join(' or ');
  }
  if (Array.isArray(js.type)) return js.type.join(' or ');
  if (js.type === 'array') return `list of ${typeText(js.items ?? {})}`;
  if (js.type === 'string') {
    if (js.pattern === NAME_PATTERN) return 'name';
    const parts = ['string'];
    if (js.minLength === 1) parts.unshift('non-empty');
    else if (typeof js.minLength === 'number' && js.minLength > 1) parts.push(`(at least ${js.minLength} characters)`);
    if (typeof js.pattern === 'string') parts.push(`matching \`${js.pattern}\``);
    return parts.join(' ');
  }
  if (js.type === 'integer' || js.type === 'number') {
    const min = typeof js.minimum === 'number' && js.minimum > -SAFE ? js.minimum : undefined;
    const max = typeof js.maximum === 'number' && js.maximum < SAFE ? js.maximum : undefined;
    if (min !== undefined && max !== undefined) return `${js.type} ${min}–${max}`;
    if (min !== undefined) return `${js.type} ≥ ${min}`;
    if (max !== undefined) return `${js.type} ≤ ${max}`;
    return js.type;
  }
  return js.type ?? 'any';
}

function formatMs(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function formatBytes(bytes: number): string | number {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const)
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return bytes;
}

function defaultText(js: JsonSchema, required: boolean): string {
  if (required) return '**required**';
  if (!('default' in js)) return '—';
  // An object section defaults to its fields' defaults; repeating `{}` in the table says nothing.
  if (js.properties) return '—';
  return code(js.default);
}

/**
 * The alternatives of a union discriminated by another key than `type` (serial `framing` by `mode`) as one
 * object: the discriminator lists every variant with its description, and a field that only some variants
 * have says which.
 */
function mergeVariants(key: string, variants: JsonSchema[]): JsonSchema {
  const tags = variants.map((v) => v.properties![key]!);
  const properties: Record<string, JsonSchema> = {
    [key]: { enum: tags.map((t) => t.const), description: tags.map((t) => `${code(t.const)}: ${t.description ?? ''}`).join(' ') },
  };
  const required = [key];
  for (const variant of variants) {
    for (const [name, field] of Object.entries(variant.properties!)) {
      if (name in properties) continue;
      const having = variants.filter((v) => v.properties![name] !== undefined);
      const only = having.length < variants.length ? `${key} ${having.map((v) => code(v.properties![key]!.const)).join(', ')}: ` : '';
      properties[name] = { ...field, description: `${only}${field.description ?? ''}` };
      if (variant.required?.includes(name)) required.push(name);
    }
  }
  return { type: 'object', properties, required };
}

/** Rows for every key of an object schema, nested objects flattened to dotted keys. */
export function rows(object: JsonSchema, prefix = ''): Row[] {
  const out: Row[] = [];
  const required = new Set(object.required ?? []);
  for (const [name, field] of Object.entries(object.properties ?? {})) {
    const key = `${prefix}${name}`;
    const row = (type: string) => out.push({ key, type, default: defaultText(field, required.has(name)), description: field.description ?? '' });
    const union = variantsOf(field);
    const record = field.type === 'object' && typeof field.additionalProperties === 'object' ? field.additionalProperties : undefined;

    // The only single driver-typed entries are sinks (`sink`, `receiver.input`); sources come as a list.
    if (union?.key === 'type') row('sink entry, see [Sinks](#sinks)');
    else if (union) {
      row(`object by \`${union.key}\``);
      out.push(...rows(mergeVariants(union.key, union.variants), `${key}.`));
    } else if (field.properties) {
      row('object');
      out.push(...rows(field, `${key}.`));
    } else if (record) {
      const keyType = field.propertyNames ? typeText(field.propertyNames) : 'string';
      row(`map of ${keyType} → ${record.properties ? 'object' : typeText(record)}`);
      if (record.properties) out.push(...rows(record, `${key}.<${keyType}>.`));
    } else if (field.type === 'array' && field.items && variantsOf(field.items)?.key === 'type') {
      row('list of source entries, see [Sources](#sources)');
    } else if (field.type === 'array' && field.items?.properties) {
      row('list of objects');
      out.push(...rows(field.items, `${key}[].`));
    } else row(typeText(field));
  }
  return out;
}

/** Markdown-safe prose: `<placeholders>` outside code spans would be taken for HTML tags and vanish. */
export function prose(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, '&lt;').replace(/>/g, '&gt;') : part))
    .join('`');
}

function cell(text: string): string {
  return prose(text.replace(/\s*\n\s*/g, ' ')).replace(/\|/g, '\\|');
}

export function table(list: Row[]): string {
  const head = '| Key | Type | Default | Description |\n|---|---|---|---|\n';
  return `${head + list.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`).join('\n')}\n`;
}

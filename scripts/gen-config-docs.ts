/**
 * Writes docs/configuration.md from the config schema and the drivers' option schemas, so the reference
 * cannot drift from what the agent accepts (test/config/docs.test.ts fails when the file is stale).
 * Run: npm run docs:config
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { configSchemas } from '../agent/app.ts';
import { parseConfig } from '../agent/app.ts';
import { requireRunnable } from '../agent/config/load.ts';
import { sinkDrivers, sourceDrivers } from '../drivers/registry.ts';
const { configSchema } = configSchemas();

export const DOCS_PATH = resolve(import.meta.dirname, '../docs/configuration.md');

type Schema = z.ZodType;
interface Def {
  type: string;
  innerType?: Schema;
  defaultValue?: unknown;
  in?: Schema;
  out?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  keyType?: Schema;
  valueType?: Schema;
  options?: Schema[];
  discriminator?: string;
  entries?: Record<string, string | number>;
  values?: unknown[];
}
const defOf = (s: Schema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

/** Peels default / prefault / optional wrappers, keeping the first description and the default met on the way. */
function unwrap(schema: Schema): { inner: Schema; description: string | undefined; default: { value: unknown } | undefined; optional: boolean } {
  let inner = schema;
  let description: string | undefined;
  let dflt: { value: unknown } | undefined;
  let optional = false;
  for (;;) {
    description ??= inner.description;
    const def = defOf(inner);
    if (def.type === 'default' || def.type === 'prefault') dflt ??= { value: def.defaultValue };
    else if (def.type === 'optional' || def.type === 'nullable') optional = true;
    else return { inner, description, default: dflt, optional };
    inner = def.innerType!;
  }
}

/**
 * Durations and sizes are both "number or string, transformed", so their shape alone does not say which one a
 * field is; parsing a sample value does, without the schema having to carry extra markers.
 */
function unitOf(schema: Schema): 'duration' | 'size' | undefined {
  const d = schema.safeParse('2s');
  if (d.success && d.data === 2000) return 'duration';
  const s = schema.safeParse('2KiB');
  if (s.success && s.data === 2048) return 'size';
  return undefined;
}

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const SAFE = Number.MAX_SAFE_INTEGER;

function code(value: unknown): string {
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

/** A leaf's type in words, with its constraints, from its JSON Schema (the public way to read zod checks). */
function leafType(schema: Schema): string {
  const unit = unitOf(schema);
  if (unit === 'duration') return 'duration';
  if (unit === 'size') return 'size';
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return jsonType(js);
}

function jsonType(js: Record<string, unknown>): string {
  if (Array.isArray(js.enum)) return `one of ${js.enum.map(code).join(', ')}`;
  if ('const' in js) return code(js.const);
  const alternatives = (js.anyOf ?? js.oneOf) as Record<string, unknown>[] | undefined;
  if (alternatives) {
    if (alternatives.every((a) => 'const' in a)) return `one of ${alternatives.map((a) => code(a.const)).join(', ')}`;
    return alternatives.map(jsonType).join(' or ');
  }
  if (js.type === 'array') return `list of ${jsonType((js.items ?? {}) as Record<string, unknown>)}`;
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
    const word = js.type === 'integer' ? 'integer' : 'number';
    if (min !== undefined && max !== undefined) return `${word} ${min}–${max}`;
    if (min !== undefined) return `${word} ≥ ${min}`;
    if (max !== undefined) return `${word} ≤ ${max}`;
    return word;
  }
  if (typeof js.type === 'string') return js.type;
  return 'any';
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

function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const)
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return String(bytes);
}

function defaultText(leaf: Schema, found: { value: unknown } | undefined, optional: boolean, isObject: boolean): string {
  if (found === undefined) return optional ? '—' : '**required**';
  // An object section defaults to its fields' defaults; repeating `{}` in the table says nothing.
  if (isObject) return '—';
  const value = found.value;
  // Defaults given after the transform are already milliseconds or bytes: show them as one would write them.
  if (typeof value === 'number') {
    const unit = unitOf(leaf);
    if (unit === 'duration') return code(formatMs(value));
    if (unit === 'size') return code(formatBytes(value));
  }
  return code(value);
}

/** Markdown-safe prose: `<placeholders>` outside code spans would be taken for HTML tags and vanish. */
function prose(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, '&lt;').replace(/>/g, '&gt;') : part))
    .join('`');
}

function cell(text: string): string {
  return prose(text.replace(/\s*\n\s*/g, ' ')).replace(/\|/g, '\\|');
}

/** Rows for every key of an object schema, nested objects flattened to dotted keys. */
function rows(shape: Record<string, Schema>, prefix = ''): Row[] {
  const out: Row[] = [];
  for (const [name, field] of Object.entries(shape)) {
    const key = `${prefix}${name}`;
    const { inner, description, default: dflt, optional } = unwrap(field);
    const def = defOf(inner);
    const isObject = def.type === 'object';
    const row = (type: string) => out.push({ key, type, default: defaultText(inner, dflt, optional, isObject), description: description ?? '' });

    if (def.type === 'union' && def.discriminator === 'type') {
      // The only single driver-typed entries are sinks (`sink`, `receiver.input`); sources come as a list.
      row('sink entry, see [Sinks](#sinks)');
    } else if (isObject) {
      row('object');
      out.push(...rows(def.shape!, `${key}.`));
    } else if (def.type === 'array' && defOf(unwrap(def.element!).inner).type === 'union' && defOf(unwrap(def.element!).inner).discriminator === 'type') {
      row('list of source entries, see [Sources](#sources)');
    } else if (def.type === 'array' && defOf(unwrap(def.element!).inner).type === 'object') {
      row('list of objects');
      out.push(...rows(defOf(unwrap(def.element!).inner).shape!, `${key}[].`));
    } else if (def.type === 'record') {
      const value = unwrap(def.valueType!).inner;
      if (defOf(value).type === 'object') {
        row(`map of ${leafType(def.keyType!)} → object`);
        out.push(...rows(defOf(value).shape!, `${key}.<${leafType(def.keyType!)}>.`));
      } else row(`map of ${leafType(def.keyType!)} → ${leafType(value)}`);
    } else {
      row(leafType(inner));
    }
  }
  return out;
}

function table(list: Row[]): string {
  const head = '| Key | Type | Default | Description |\n|---|---|---|---|\n';
  return `${head + list.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`).join('\n')}\n`;
}

const EXAMPLE = `device:
  id: site-17-gw
data_dir: /var/lib/edge-agent
log:
  level: info
keys:
  device_private: /etc/edge-agent/keys/device.key   # mode 0600, from \`edge-agent keygen\`
  centre_public: /etc/edge-agent/keys/centre.pub
queue:
  max_bytes: 512MiB
  max_age: 14d
  full_policy: drop_oldest
streams:
  alarms:
    priority: 90
sources:
  - type: system
    name: host
    interval: 30s
  - type: synthetic
    name: alarms
    stream: alarms
    rate: 1
sink:
  type: mqtt
  url: mqtts://broker.example.net:8883
  username: site-17
  password_file: /etc/edge-agent/mqtt-password
  tls:
    ca: /etc/edge-agent/tls/ca.pem
sender:
  max_in_flight: 16
`;

/** The whole reference, deterministic: same schema in, same bytes out. */
export function renderConfigDocs(): string {
  // The example must stay valid; fail the generation (and its test) rather than publish a broken one.
  requireRunnable(parseConfig(EXAMPLE, 'docs example', '/'));

  const top = configSchema.shape;
  const general: Row[] = [];
  const sections: string[] = [];
  for (const [name, field] of Object.entries(top)) {
    const type = defOf(unwrap(field).inner).type;
    if (type === 'object' || type === 'record') sections.push(`### \`${name}\`\n\n${table(rows({ [name]: field }))}`);
    else general.push(...rows({ [name]: field }));
  }

  const sourceCommon = unwrap(configSchema.shape.sources).inner;
  const firstVariant = defOf(defOf(defOf(sourceCommon).element!).options![0]!).shape!;
  const ownOptions = new Set(Object.keys(sourceDrivers[0]!.options.shape));
  const commonShape = Object.fromEntries(Object.entries(firstVariant).filter(([k]) => k !== 'type' && !ownOptions.has(k)));

  const out: string[] = [];
  out.push(`# Configuration reference

<!-- Generated by \`npm run docs:config\` (scripts/gen-config-docs.ts) from agent/config/schema.ts and the drivers' option schemas. Do not edit by hand. -->

edge-agent reads one YAML file: \`edge-agent run --config FILE\`, \`edge-agent receive --config FILE\`, and
\`edge-agent check-config FILE\` to validate one without starting anything. Every key is optional unless marked
**required**; an unknown key is an error, reported with its path, line and column
(\`agent.yaml:4:15 sources[0].interval: expected a duration…\`), and every problem in the file is reported at once.
\`run\` also needs \`device.id\`, a \`sink\` and at least one source.

Relative paths are resolved against the directory of the config file; the queue and receiver state files are
relative to \`data_dir\`. Secrets are never written in the file itself: they come from files or environment
variables (\`password_file\`, \`password_env\`).

## Units

- **duration**: milliseconds as a number, or a string with a unit: \`500ms\`, \`10s\`, \`5m\`, \`1h\`, \`7d\`
  (decimals allowed: \`1.5s\`).
- **size**: bytes as a number, or a string with a unit: \`4096\`, \`64KiB\`, \`512MiB\`, \`1GiB\` (binary) or
  \`64KB\`, \`1MB\`, \`1GB\` (decimal).
- **name**: 1–64 letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or digit (device ids, source
  and stream names).

## Example

\`\`\`yaml
${EXAMPLE}\`\`\`

## Core settings

${table(general)}
${sections.join('\n')}
## Sources

\`sources\` is a list; each entry has \`type\` (one of ${sourceDrivers.map((d) => code(d.type)).join(', ')}), the
common fields below, and the options of its driver.

### Common fields

${table([{ key: 'type', type: `one of ${sourceDrivers.map((d) => code(d.type)).join(', ')}`, default: '**required**', description: 'The source driver.' }, ...rows(commonShape)])}`);

  for (const d of sourceDrivers) {
    out.push(`### Source \`${d.type}\`

${prose(d.summary)} ${d.mode === 'polled' ? 'Polled every `interval`.' : 'A service: it pushes records as they come; `interval` is not used.'} See [drivers/sources/${d.type}](../drivers/sources/${d.type}/README.md).

${table(rows(d.options.shape))}`);
  }

  out.push(`## Sinks

\`sink\` (and \`receiver.input\`, on the centre side) is one entry with \`type\` (one of ${sinkDrivers.map((d) => code(d.type)).join(', ')}) and the
options of its driver.
`);
  for (const d of sinkDrivers) {
    out.push(`### Sink \`${d.type}\`

${prose(d.summary)} See [drivers/sinks/${d.type}](../drivers/sinks/${d.type}/README.md).

${table([{ key: 'type', type: code(d.type), default: '**required**', description: 'The sink driver.' }, ...rows(d.options.shape)])}`);
  }
  return out.join('\n');
}

if (import.meta.main) {
  writeFileSync(DOCS_PATH, renderConfigDocs());
  process.stdout.write(`wrote ${DOCS_PATH}\n`);
}

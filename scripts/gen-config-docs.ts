/**
 * Writes docs/configuration.md and docs/config.schema.json from the config schema and the drivers' option
 * schemas, so neither can drift from what the agent accepts (test/config/docs.test.ts and
 * test/config/json-schema.test.ts fail when a file is stale). Both come from zod's JSON Schema export of the
 * input side: keys as the user writes them, durations and sizes as text, defaults before any transform.
 * Run: npm run docs:config
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { configSchemas, parseConfig } from '../agent/app.ts';
import { requireRunnable } from '../agent/config/load.ts';
import { sinkDrivers, sourceDrivers } from '../drivers/registry.ts';
import { asWritten, code, type JsonSchema, prose, type Row, rows, table, variantsOf } from './config-docs/rows.ts';

export const DOCS_PATH = resolve(import.meta.dirname, '../docs/configuration.md');
export const SCHEMA_PATH = resolve(import.meta.dirname, '../docs/config.schema.json');
/** An identifier, not a download address: editors find the file through the association the user writes. */
const SCHEMA_ID = 'urn:edge-agent:config';

/**
 * zod leaves out the input side's default of a field whose schema transforms (`duration().default(30_000)`, a
 * list of source entries), since the default is an output value. Put it back as one would write it, when
 * writing it in the file means the same: parsing it again gives the same value.
 */
function restoreDefault({ zodSchema, jsonSchema }: { zodSchema: z.core.$ZodType; jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  if ('default' in jsonSchema) return;
  const parsed = z.safeParse(zodSchema, undefined);
  if (!parsed.success || parsed.data === undefined) return;
  const written = asWritten(jsonSchema as JsonSchema, parsed.data);
  const again = z.safeParse(zodSchema, written);
  if (again.success && isDeepStrictEqual(again.data, parsed.data)) jsonSchema.default = written;
}

/** The config file's JSON Schema, as committed in docs/config.schema.json. */
export function configJsonSchema(): JsonSchema & Record<string, unknown> {
  const { configSchema } = configSchemas();
  const { $schema, ...schema } = z.toJSONSchema(configSchema, {
    target: 'draft-2020-12',
    io: 'input',
    // A part JSON Schema cannot express at all should stop the generation, not quietly accept anything.
    unrepresentable: 'throw',
    override: restoreDefault,
  }) as JsonSchema & Record<string, unknown>; // no boolean sub-schemas here, so the narrower type holds
  return {
    $schema,
    $id: SCHEMA_ID,
    title: 'edge-agent configuration',
    description: 'The YAML file read by `edge-agent run`, `receive` and `check-config`; docs/configuration.md explains every key.',
    ...schema,
  };
}

export function renderJsonSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
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

  const schema = configJsonSchema();
  const top = schema.properties!;
  const general: Row[] = [];
  const sections: string[] = [];
  for (const [name, field] of Object.entries(top)) {
    const one = { properties: { [name]: field }, required: schema.required };
    if (field.type === 'object') sections.push(`### \`${name}\`\n\n${table(rows(one))}`);
    else general.push(...rows(one));
  }

  // Each source entry is its driver's options, the common fields and `type`; a driver's own keys say which is which.
  const sourceVariants = variantsOf(top.sources!.items!)!.variants;
  const variantOf = (variants: JsonSchema[], type: string) => variants.find((v) => v.properties!.type!.const === type)!;
  const only = (variant: JsonSchema, keep: (key: string) => boolean): JsonSchema => ({
    properties: Object.fromEntries(Object.entries(variant.properties!).filter(([k]) => keep(k))),
    required: variant.required,
  });
  const firstOwn = new Set(Object.keys(sourceDrivers[0]!.options.shape));
  const common = only(variantOf(sourceVariants, sourceDrivers[0]!.type), (k) => k !== 'type' && !firstOwn.has(k));
  const sourceTypes = sourceDrivers.map((d) => code(d.type)).join(', ');
  const sinkVariants = variantsOf(top.sink!)!.variants;

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

## Editor support

[config.schema.json](config.schema.json) is the same schema as a JSON Schema, generated with this page. A YAML
editor with schema support validates and completes a config file associated with it, for example by a first
line in the file that gives the schema's path (relative to the config file) or URL:

\`\`\`yaml
# yaml-language-server: $schema=./config.schema.json
\`\`\`

It checks keys, types, enums, ranges and the duration and size syntax. The rules the schema states as code are
not in it and are left to \`edge-agent check-config\`: unique source names, each compression algorithm's level
range, exactly one of \`table\` or \`query\` (SQL sources), a serial port given by path or by USB ids, a valid
\`framing.pattern\`, the MQTT topic filter syntax, and a duration written as text below a field's minimum.

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

\`sources\` is a list; each entry has \`type\` (one of ${sourceTypes}), the
common fields below, and the options of its driver.

### Common fields

${table([{ key: 'type', type: `one of ${sourceTypes}`, default: '**required**', description: 'The source driver.' }, ...rows(common)])}`);

  for (const d of sourceDrivers) {
    const own = only(variantOf(sourceVariants, d.type), (k) => k in d.options.shape);
    out.push(`### Source \`${d.type}\`

${prose(d.summary)} ${d.mode === 'polled' ? 'Polled every `interval`.' : 'A service: it pushes records as they come; `interval` is not used.'} See [drivers/sources/${d.type}](../drivers/sources/${d.type}/README.md).

${table(rows(own))}`);
  }

  out.push(`## Sinks

\`sink\` (and \`receiver.input\`, on the centre side) is one entry with \`type\` (one of ${sinkDrivers.map((d) => code(d.type)).join(', ')}) and the
options of its driver.
`);
  for (const d of sinkDrivers) {
    const own = only(variantOf(sinkVariants, d.type), (k) => k !== 'type');
    out.push(`### Sink \`${d.type}\`

${prose(d.summary)} See [drivers/sinks/${d.type}](../drivers/sinks/${d.type}/README.md).

${table([{ key: 'type', type: code(d.type), default: '**required**', description: 'The sink driver.' }, ...rows(own)])}`);
  }
  return out.join('\n');
}

if (import.meta.main) {
  writeFileSync(DOCS_PATH, renderConfigDocs());
  writeFileSync(SCHEMA_PATH, renderJsonSchema());
  process.stdout.write(`wrote ${DOCS_PATH}\nwrote ${SCHEMA_PATH}\n`);
}

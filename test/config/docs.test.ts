import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOCS_PATH, renderConfigDocs } from '../../scripts/gen-config-docs.ts';
import { configSchemas } from '../../agent/app.ts';
import { sinkDrivers, sourceDrivers } from '../../drivers/registry.ts';
const { configSchema } = configSchemas();

describe('docs/configuration.md', () => {
  it('is up to date with the schema', () => {
    let committed: string;
    try {
      committed = readFileSync(DOCS_PATH, 'utf8');
    } catch {
      assert.fail(`${DOCS_PATH} is missing: run \`npm run docs:config\``);
    }
    // A plain equality so the failure says what to do rather than dumping a long diff first.
    if (committed !== renderConfigDocs()) {
      assert.fail("docs/configuration.md is out of date with the config schema or a driver's options: run `npm run docs:config` and commit the result");
    }
  });

  it('documents every top-level key and every driver option with its default', () => {
    const docs = renderConfigDocs();
    for (const key of Object.keys(configSchema.shape)) assert.ok(docs.includes(`| \`${key}\` |`), `top-level key ${key}`);
    for (const d of [...sourceDrivers, ...sinkDrivers]) {
      assert.ok(docs.includes(`\`${d.type}\``), `driver ${d.type}`);
      for (const option of Object.keys(d.options.shape)) assert.ok(docs.includes(`| \`${option}\` |`), `${d.type} option ${option}`);
    }
    // Durations and sizes are shown as written in a config, not as the parsed milliseconds and bytes.
    assert.match(docs, /\| `queue\.max_bytes` \| size \| `256MiB` \|/);
    assert.match(docs, /\| `keepalive` \| duration \| `30s` \|/);
    assert.match(docs, /\| `device\.id` \| name \| \*\*required\*\* \|/);
  });
});

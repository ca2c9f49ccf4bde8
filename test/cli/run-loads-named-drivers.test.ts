/**
 * A `run` evaluates the implementation of the drivers its config names only (agent/sdk/define.ts): every
 * driver's declaration is evaluated (the registry lists them all), and a driver's `create` loads the rest
 * with `import()`. Observed in the source tree, where each module is a file: a module hook records, for every
 * module of drivers/, which module first imported it, and a static import of an implementation from a
 * declaration (or from the core) shows as that importer. The executable bundles the same modules and keeps
 * the dynamic imports deferred (test/build/lazy-drivers.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainGatewayYaml } from '../../scripts/lib/gateway-configs.ts';
import { runUntilAgentRunning } from '../../scripts/lib/run-until-running.ts';
import { driverIndexOf, isDriverDeclaration } from '../helpers/driver-modules.ts';
import { NODE, ROOT } from '../helpers/executable-paths.ts';

// Preloaded with --import: records each module's first importer, and prints them on the agent's SIGINT.
const HOOK = `import { registerHooks } from 'node:module';
const importers = {};
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    importers[resolved.url] ??= context.parentURL ?? null;
    return resolved;
  },
});
process.prependOnceListener('SIGINT', () => process.stderr.write('IMPORTERS ' + JSON.stringify(importers) + '\\n'));
`;

let dir: string;

describe('the driver modules a run evaluates', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-named-drivers-'));
    // A synthetic source into the MQTT sink; the sink need not connect for "agent running".
    writeFileSync(join(dir, 'run.yaml'), plainGatewayYaml('named-drivers-gw', 'mqtt://127.0.0.1:1'));
    writeFileSync(join(dir, 'hook.mjs'), HOOK);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a run with a synthetic source and the MQTT sink evaluates the declarations of all drivers and the implementation of those two only', async () => {
    const { stopped, code, output } = await runUntilAgentRunning(
      [NODE, '--import', join(dir, 'hook.mjs'), join(ROOT, 'agent/cli/main.ts'), 'run', '--config', 'run.yaml'],
      { cwd: dir, env: process.env, timeoutMs: 120_000 },
    );
    assert.ok(stopped, `no "agent running" (exit ${code}): ${output.slice(-2000)}`);
    const line = /^IMPORTERS (.*)$/m.exec(output);
    assert.ok(line, `no list of modules: ${output.slice(-2000)}`);
    const inRepo = (url: string | null): string | undefined => (url?.startsWith('file:') ? relative(ROOT, fileURLToPath(url)) : undefined);
    const importers = new Map<string, string | undefined>();
    for (const [url, parent] of Object.entries(JSON.parse(line[1]!) as Record<string, string | null>)) {
      const path = inRepo(url);
      if (path?.startsWith('drivers/')) importers.set(path, inRepo(parent));
    }

    const named = new Set(['drivers/sources/synthetic/index.ts', 'drivers/sinks/mqtt/index.ts']);
    // The list is the real one: every driver's declaration is there, and the two named implementations.
    assert.equal([...importers.keys()].filter((p) => /^drivers\/(sources|sinks)\/[^/]+\/index\.ts$/.test(p)).length, 15);
    for (const implementation of ['drivers/sources/synthetic/source.ts', 'drivers/sinks/mqtt/sink.ts']) {
      assert.ok(importers.has(implementation), `${implementation} not loaded: ${[...importers.keys()].join(' ')}`);
    }
    // An implementation module is imported by a named driver's create or by another implementation module.
    const wrong = [...importers]
      .filter(([path]) => !isDriverDeclaration(path))
      .filter(([, by]) => by === undefined || !(named.has(by) || (by.startsWith('drivers/') && !isDriverDeclaration(by))))
      .map(([path, by]) => `${path} (imported by ${by ?? 'nothing known'})`);
    assert.deepEqual(wrong, []);
    // And no implementation of an unnamed driver, whoever imported it.
    const unnamed = [...importers.keys()].filter((p) => !isDriverDeclaration(p) && driverIndexOf(p) !== undefined && !named.has(driverIndexOf(p)!));
    assert.deepEqual(unnamed, []);
  });
});

/**
 * A warning of Node's raised while the agent runs (an experimental or deprecated API a library touches) is a
 * JSON line of the agent's log, not the plain text Node writes on stderr by default (agent/log.ts,
 * logProcessWarnings): a log read as JSON lines would hold a line it cannot parse. The warning is raised by
 * a preloaded module once the agent logs "agent running", as a library would at any time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plainGatewayYaml } from '../../scripts/lib/gateway-configs.ts';
import { runUntilAgentRunning } from '../../scripts/lib/run-until-running.ts';
import { NODE, ROOT } from '../helpers/executable-paths.ts';

// Raises one warning right after the log line "agent running" is written (the logger writes synchronously).
const RAISE = `const fs = require('node:fs');
const write = fs.writeSync;
let raised = false;
fs.writeSync = function (fd, data, ...rest) {
  const n = write.call(this, fd, data, ...rest);
  if (!raised && typeof data === 'string' && data.includes('agent running')) {
    raised = true;
    setImmediate(() => process.emitWarning('a warning raised by a test', { type: 'ExperimentalWarning', code: 'EDGE_TEST_WARNING' }));
  }
  return n;
};
`;

let dir: string;

describe("Node's warnings in a running agent's log", () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-warnings-'));
    writeFileSync(join(dir, 'run.yaml'), plainGatewayYaml('warnings-gw', 'mqtt://127.0.0.1:1'));
    writeFileSync(join(dir, 'raise.cjs'), RAISE);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('are JSON lines of the log at warn, with their name and code, and nothing else is printed for them', async () => {
    const { stopped, output } = await runUntilAgentRunning(
      [NODE, '--require', join(dir, 'raise.cjs'), join(ROOT, 'agent/cli/main.ts'), 'run', '--config', 'run.yaml', '--log-format', 'json'],
      { cwd: dir, env: process.env, timeoutMs: 120_000, until: 'a warning raised by a test' },
    );
    assert.ok(stopped, `the warning was not seen: ${output.slice(-2000)}`);
    const lines = output.split('\n').filter((line) => line !== '');
    const warning = lines.find((line) => line.includes('a warning raised by a test'))!;
    assert.deepEqual((({ level, kind, name, code, msg }) => ({ level, kind, name, code, msg }))(JSON.parse(warning) as Record<string, unknown>), {
      level: 'warn',
      kind: 'node_warning',
      name: 'ExperimentalWarning',
      code: 'EDGE_TEST_WARNING',
      msg: 'a warning raised by a test',
    });
    assert.deepEqual(
      lines.filter((line) => !line.startsWith('{')),
      [],
      'every line is a JSON line',
    );
  });
});

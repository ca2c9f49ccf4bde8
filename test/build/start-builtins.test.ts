/**
 * Node's built-in modules a plain `run` loads before "agent running": each one costs its evaluation at every
 * start (docs/benchmarks.md, "Start: the memory flag after the start, built-ins on first use"). Those only
 * some configurations or commands use (the http source's and the endpoint's HTTP server, the resolver of
 * `edge-agent check`, the line reader of `queue import`) are loaded where they are used; a static import of
 * one of them from a module every start evaluates would quietly put it back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plainGatewayYaml } from '../../scripts/lib/gateway-configs.ts';
import { runUntilAgentRunning } from '../../scripts/lib/run-until-running.ts';
import { builtExecutable } from '../helpers/executable.ts';

// child_process: commander's executable subcommands, the systemd notifier, `install`; worker_threads and
// assert: the logger's transports; tls: MQTT.js's mqtts:// transport, the SQL sources' and `check`'s TLS
// (scripts/build/load-on-use.ts); fs/promises: the update delivery's file reads.
const ON_DEMAND = ['http', 'https', '_http_server', 'dns/promises', 'readline', 'child_process', 'worker_threads', 'assert', 'tls', 'fs/promises'];
// Prepended to the agent's own SIGINT handler: the built-ins loaded so far, as one line on stderr.
// (The executable, not the source tree: there the lazy scripts' libraries, `ws` and the SQL clients, are plain
// imports that load node:http themselves.)
const REPORT = `process.prependOnceListener('SIGINT', () => process.stderr.write('BUILTINS ' + JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13))) + '\\n'));`;

let dir: string;
let bin: string;

describe('built-in modules of a start', { skip: process.arch === 'x64' && process.platform === 'linux' ? false : 'the host is not linux-x64' }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-agent-start-builtins-'));
    // The sink need not connect for "agent running": nothing listens on port 1.
    writeFileSync(join(dir, 'run.yaml'), plainGatewayYaml('builtins-test-gw', 'mqtt://127.0.0.1:1'));
    writeFileSync(join(dir, 'report.cjs'), REPORT);
    bin = builtExecutable('linux-x64');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a plain run (synthetic source, MQTT sink) reaches "agent running" without the built-ins only some configs use', async () => {
    const { stopped, code, output } = await runUntilAgentRunning([bin, `--node-options=--require ${join(dir, 'report.cjs')}`, 'run', '--config', 'run.yaml'], {
      cwd: dir,
      env: { ...process.env, EDGE_AGENT_NATIVE_CACHE: join(dir, 'native-cache') },
    });
    assert.ok(stopped, `no "agent running" (exit ${code}): ${output.slice(-2000)}`);
    const line = /^BUILTINS (.*)$/m.exec(output);
    assert.ok(line, `no list of built-ins: ${output.slice(-2000)}`);
    const loaded = new Set(JSON.parse(line[1]!) as string[]);
    // What the run does need is there (the list is the real one): the MQTT sink's sockets, the keys' crypto.
    for (const needed of ['net', 'crypto']) assert.ok(loaded.has(needed), `${needed} not loaded: ${[...loaded].join(' ')}`);
    assert.deepEqual(
      ON_DEMAND.filter((m) => loaded.has(m)),
      [],
    );
  });
});

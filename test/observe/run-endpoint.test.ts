/**
 * The endpoint in a real `edge-agent run` process: started only when http.enabled (the log line and the
 * address file), and the previous run's exit reason as it was: a first start, an unclean end after SIGKILL,
 * a clean SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startLoggingAgent } from '../helpers/agent-process.ts';
import { until } from '../helpers/processes.ts';
import { startSilentBroker } from '../helpers/fake-silent-broker.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

test('run: the endpoint starts with http.enabled only; edge_last_exit_info says how the previous run ended', async () => {
  const ws = await workspace();
  const silent = await startSilentBroker();
  const urlFile = join(ws.dir, 'data', 'http.url');
  const lastExit = async () => {
    await until(() => existsSync(urlFile), 'the endpoint address');
    const metrics = await (await fetch(`${readFileSync(urlFile, 'utf8').trim()}/metrics`)).text();
    return /^edge_last_exit_info\{reason="([^"]*)"\} 1$/m.exec(metrics)?.[1];
  };
  const sources = '  - { type: synthetic, name: gen, rate: 10 }';
  let last: ReturnType<typeof startLoggingAgent> | undefined;
  const start = (path: string) => (last = startLoggingAgent(path, ws.dir));
  try {
    const off = writeConfig(ws.dir, agentYaml(silent.url, { sources }).replace('level: warn', 'level: info'));
    let agent = start(off.path);
    await until(() => agent.lines().some((l) => l.msg === 'agent running'), 'the agent running');
    agent.child.kill('SIGTERM');
    await agent.exited;
    assert.equal(existsSync(urlFile), false, 'no endpoint when http is off');
    assert.ok(!agent.lines().some((l) => /listening/.test(String(l.msg))));

    const on = writeConfig(
      ws.dir,
      agentYaml(silent.url, { sources, extra: 'http: { enabled: true, listen: "127.0.0.1:0" }\n' }).replace('level: warn', 'level: info'),
    );
    agent = start(on.path);
    assert.equal(await lastExit(), 'signal SIGTERM');
    agent.child.kill('SIGKILL');
    await agent.exited;
    rmSync(urlFile);
    agent = start(on.path);
    assert.equal(await lastExit(), 'unclean (killed, crashed or power lost)');
    assert.ok(agent.lines().some((l) => l.msg === 'metrics, health and status page listening' && l.loopback === true));
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
  } finally {
    if (last && last.child.exitCode === null && last.child.signalCode === null) {
      last.child.kill('SIGKILL');
      await last.exited;
    }
    await silent.close();
    ws.cleanup();
  }
});

/**
 * `fleet.watch_local_file: true` on the real executable with a real Mosquitto: an edit saved the way editors
 * do (a new file renamed over the old one) is reloaded without a signal, applied live and committed; a
 * broken edit written in place is refused (schema_invalid) and the agent keeps running and forwarding on
 * what it had. With the setting off (the default), an edit changes nothing until SIGHUP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { type LoggingAgentProcess, startLoggingAgent } from '../helpers/agent-process.ts';

const startAgentProcess = startLoggingAgent;
type AgentProcess = LoggingAgentProcess;

/** Polls another process's log from line `from` on, failing after `timeoutMs`. */
async function logged(agent: AgentProcess, test: (line: Record<string, unknown>) => boolean, what: string, from = 0, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = agent.lines().slice(from).find(test);
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; log:\n${agent
          .lines()
          .slice(-30)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

const report = (outcome: string) => (l: Record<string, unknown>) => (l.report as { outcome?: string } | undefined)?.outcome === outcome;
const anyReport = (l: Record<string, unknown>) => l.report !== undefined;

let ws: Awaited<ReturnType<typeof workspace>>;
let broker: Mosquitto;
let receiver: RunningReceiver;
const output = new CollectingOutput();
let configPath: string;
let agent: AgentProcess | undefined;

const GEN = '  - { type: synthetic, name: gen, rate: 100, batch: 10 }';
const yaml = (watch: boolean, extraSources = '') =>
  agentYaml(broker.url, {
    sources: GEN + extraSources,
    extra: `queue: { commit_interval: 20ms }\nfleet: { watch_local_file: ${watch}, health_deadline: 30s }`,
  }).replace('level: warn', 'level: info');
const count = (stream: string) => output.records.filter((r) => r.header.stream === stream).length;

async function forwarding(more = 50): Promise<void> {
  const want = count('gen') + more;
  await output.waitFor(() => count('gen') >= want, `${more} more records at the receiver`, 60_000);
}

/** As an editor saves: the new content in a file beside it, renamed over the config file. */
function saveByRename(text: string): void {
  const temp = join(ws.dir, '.agent.yaml.swp');
  writeFileSync(temp, text);
  renameSync(temp, configPath);
}

async function stop(): Promise<void> {
  if (!agent) return;
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0);
  agent = undefined;
}

before(async () => {
  ws = await workspace('edge-watch-');
  broker = await startMosquitto();
  const loaded = writeConfig(ws.dir, yaml(false));
  configPath = loaded.path;
  receiver = await startReceiver(x25519, loaded, silentLogger, { output });
});

after(async () => {
  if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
  await receiver?.close();
  await broker?.stop();
  ws?.cleanup();
});

describe('the local file watched (fleet.watch_local_file, real process)', () => {
  it('off (the default): an edit is not reloaded until SIGHUP', async () => {
    agent = startAgentProcess(configPath, ws.dir);
    await logged(agent, (l) => l.msg === 'agent running', 'the agent to run');
    await forwarding();
    saveByRename(yaml(false, '\n  - { type: synthetic, name: more, rate: 100, count: 50 }'));
    // The edit must not be taken: forwarding goes on with no report, then SIGHUP takes it.
    await forwarding(200);
    assert.equal(agent.lines().find(anyReport), undefined, 'no reload without the watch');
    const mark = agent.lines().length;
    agent.child.kill('SIGHUP');
    await logged(agent, report('committed'), 'the SIGHUP reload', mark);
    await stop();
  });

  it('on: an edit saved by rename is reloaded and committed; a broken edit is refused and the agent keeps forwarding', async () => {
    saveByRename(yaml(true));
    agent = startAgentProcess(configPath, ws.dir);
    await logged(agent, (l) => l.msg === 'watching the config file: a change reloads it', 'the watch to start');
    await logged(agent, (l) => l.msg === 'agent running', 'the agent to run');
    await forwarding();

    let mark = agent.lines().length;
    saveByRename(yaml(true, '\n  - { type: synthetic, name: extra, rate: 100, count: 100 }'));
    const committed = await logged(agent, report('committed'), 'the edit committed', mark);
    assert.equal((committed.report as { layer: string }).layer, 'local');
    await output.waitFor(() => count('extra') >= 100, 'the new source at the receiver');
    // By now (100 records at 100/s) any second reload of the same save would have reported `unchanged`.
    assert.deepEqual(
      agent
        .lines()
        .slice(mark)
        .filter(anyReport)
        .map((l) => (l.report as { outcome: string }).outcome),
      ['committed'],
      'one reload for one save (debounced)',
    );

    mark = agent.lines().length;
    writeFileSync(configPath, yaml(true, '\n  - { type: synthetic, name: extra, rate: -5 }'));
    const refused = await logged(agent, report('refused'), 'the broken edit refused', mark);
    const r = refused.report as { reason: string; message: string };
    assert.equal(r.reason, 'schema_invalid');
    assert.match(r.message, /sources\[1\]\.rate/);
    assert.equal(agent.child.exitCode, null);
    await forwarding();
    await stop();
  });
});

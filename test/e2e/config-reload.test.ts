/**
 * The local file through the desired-config pipeline, on the real executable (`node agent/cli/main.ts run`)
 * with a real Mosquitto: SIGKILL between apply and commit (the next start is on the last good content, not
 * on the file that now holds the change, and reports `interrupted`), SIGHUP with a good file (applied,
 * committed), with a bad file (refused, the agent keeps forwarding on the old config). A SQLite table written throughout reaches the receiver exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { type LoggingAgentProcess, startLoggingAgent } from '../helpers/agent-process.ts';
import { startSilentBroker, type SilentBroker } from '../helpers/fake-silent-broker.ts';

const startAgentProcess = startLoggingAgent;
type AgentProcess = LoggingAgentProcess;

/** Polls another process's log from line `from` on (there is no event to wait on), failing after `timeoutMs`. */
async function logged(
  agent: AgentProcess,
  test: (line: Record<string, unknown>) => boolean,
  what: string,
  from = 0,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
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

let ws: Awaited<ReturnType<typeof workspace>>;
let broker: Mosquitto;
let silent: SilentBroker;
let receiver: RunningReceiver;
const output = new CollectingOutput();
let writer: Database.Database;
let writerTimer: NodeJS.Timeout | undefined;
let inserted = 0;
let configPath: string;
let agent: AgentProcess;

const ROWS = '  - { type: sqlite, name: rows, path: rows.db, table: readings, interval: 50ms }';
const yaml = (url: string, extraSources = '', extra = '') =>
  agentYaml(url, { sources: ROWS + extraSources, extra: `queue: { commit_interval: 20ms }\n${extra}` }).replace('level: warn', 'level: info');
const rowIds = () => output.records.filter((r) => r.header.stream === 'rows').map((r) => r.record.id as number);

async function forwarding(more = 50): Promise<void> {
  const want = rowIds().length + more;
  await output.waitFor(() => rowIds().length >= want, `${more} more rows at the receiver`, 60_000);
}

before(async () => {
  ws = await workspace('edge-reload-');
  broker = await startMosquitto();
  silent = await startSilentBroker();
  writer = new Database(join(ws.dir, 'rows.db'));
  writer.pragma('journal_mode = WAL');
  writer.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL)');
  const insert = writer.prepare('INSERT INTO readings (n) VALUES (?)');
  const many = writer.transaction((k: number) => {
    for (let i = 0; i < k; i++) insert.run(++inserted);
  });
  writerTimer = setInterval(() => many(10), 10);
  const loaded = writeConfig(ws.dir, yaml(broker.url));
  configPath = loaded.path;
  receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  agent = startAgentProcess(configPath, ws.dir);
  await logged(agent, (l) => l.msg === 'agent running', 'the agent to run');
  await forwarding();
});

after(async () => {
  clearInterval(writerTimer);
  if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
  await receiver?.close();
  await broker?.stop();
  await silent?.close();
  writer?.close();
  ws?.cleanup();
});

describe('the local file reloaded on SIGHUP (real process)', () => {
  it('SIGKILL between apply and commit of the first reload: the next start is on the last good content of the file and reports interrupted', async () => {
    // A sink that takes the connection and never acknowledges: the health gate waits its whole deadline.
    writeFileSync(configPath, yaml(silent.url, '', 'fleet: { health_deadline: 120s }'));
    const mark = agent.lines().length;
    agent.child.kill('SIGHUP');
    await logged(agent, (l) => l.msg === 'new configuration applied; checking its health', 'the apply', mark);
    assert.ok(existsSync(join(ws.dir, 'data', 'remote', 'pending.json')), 'pending.json written before the apply');
    agent.child.kill('SIGKILL');
    assert.equal(await agent.exited, 'SIGKILL');
    agent = startAgentProcess(configPath, ws.dir);
    const line = await logged(agent, report('rolled_back'), 'the interrupted report');
    const r = line.report as { layer: string; reason: string };
    assert.deepEqual([r.layer, r.reason], ['local', 'interrupted']);
    assert.equal(existsSync(join(ws.dir, 'data', 'remote', 'pending.json')), false);
    await logged(agent, (l) => l.msg === 'agent running', 'the agent to run');
    await forwarding();
  });

  it('a good file is applied live and committed: the new source forwards', async () => {
    writeFileSync(configPath, yaml(broker.url, '\n  - { type: synthetic, name: gen, rate: 100, count: 200 }'));
    const mark = agent.lines().length;
    agent.child.kill('SIGHUP');
    const line = await logged(agent, report('committed'), 'the reload committed', mark);
    assert.equal((line.report as { layer: string }).layer, 'local');
    await output.waitFor(() => output.records.filter((r) => r.header.stream === 'gen').length >= 200, 'the new source at the receiver');
    const committed = JSON.parse(readFileSync(join(ws.dir, 'data', 'remote', 'committed.json'), 'utf8')) as { local?: { sha: string } };
    assert.match(committed.local?.sha ?? '', /^[0-9a-f]{8}$/);
    await forwarding();
  });

  it('a bad file is refused (schema_invalid, naming the path); the agent keeps running on the old config', async () => {
    writeFileSync(configPath, yaml(broker.url, '\n  - { type: synthetic, name: gen, rate: -5 }'));
    const mark = agent.lines().length;
    agent.child.kill('SIGHUP');
    const line = await logged(agent, report('refused'), 'the reload refused', mark);
    const r = line.report as { reason: string; message: string };
    assert.equal(r.reason, 'schema_invalid');
    assert.match(r.message, /sources\[1\]\.rate/);
    assert.equal(agent.child.exitCode, null);
    await forwarding();
  });

  it('every row reached the receiver exactly once; SIGTERM stops the agent cleanly', async () => {
    clearInterval(writerTimer);
    const total = inserted;
    await output.waitFor(() => rowIds().length >= total, `all ${total} rows`, 120_000);
    const ids = rowIds().sort((a, b) => a - b);
    assert.equal(ids.length, total, 'no row twice');
    assert.deepEqual(
      ids,
      Array.from({ length: total }, (_, i) => i + 1),
      'no row lost',
    );
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
  });
});

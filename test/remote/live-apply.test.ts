/**
 * The desired-config pipeline on a real agent (in process) with a real Mosquitto and the receiver: new
 * configurations applied live while a SQLite table is written and forwarded, refusals, rollbacks (a sink
 * that cannot connect, a broker that never acknowledges the canary), a restart on the committed config; and
 * at the end every row of the table reached the receiver exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { parseConfigObject } from '../../agent/app.ts';
import { startWithRemoteConfig, type RemoteConfigStart } from '../../agent/remote/config-start.ts';
import type { ConfigReport, RemoteConfigDocument } from '../../agent/remote/config-pipeline.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startSilentBroker } from '../helpers/fake-silent-broker.ts';

const ROWS_SOURCE = { type: 'sqlite', name: 'rows', path: 'rows.db', table: 'readings', interval: '50ms' };
const GEN_SOURCE = { type: 'synthetic', name: 'gen', rate: 200, batch: 20, count: 400 };

let ws: Awaited<ReturnType<typeof workspace>>;
let broker: Mosquitto;
let receiver: RunningReceiver;
const output = new CollectingOutput();
let writer: Database.Database;
let writerTimer: NodeJS.Timeout | undefined;
let inserted = 0;
let local: ReturnType<typeof writeConfig>;
let running: RemoteConfigStart;
const logLines: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
const reports: ConfigReport[] = [];

function startWriting(): void {
  const insert = writer.prepare('INSERT INTO readings (n) VALUES (?)');
  const many = writer.transaction((k: number) => {
    for (let i = 0; i < k; i++) insert.run(++inserted);
  });
  writerTimer = setInterval(() => many(10), 10);
}

function stopWriting(): void {
  clearInterval(writerTimer);
}

const rowIds = () => output.records.filter((r) => r.header.stream === 'rows').map((r) => r.record.id as number);

/** Resolves once the receiver holds `more` rows beyond what it holds now: the device is forwarding. */
async function forwarding(more = 50): Promise<void> {
  const want = rowIds().length + more;
  await output.waitFor(() => rowIds().length >= want, `${more} more rows at the receiver`, 60_000);
}

function doc(version: number, config: unknown): RemoteConfigDocument {
  return { version, config, raw: JSON.stringify({ version, config }) };
}

async function start(): Promise<RemoteConfigStart> {
  const started = await startWithRemoteConfig(local, log, { localPath: local.path });
  started.pipeline.onReport((r) => reports.push(r));
  return started;
}

before(async () => {
  ws = await workspace('edge-live-apply-');
  broker = await startMosquitto();
  writer = new Database(join(ws.dir, 'rows.db'));
  writer.pragma('journal_mode = WAL');
  writer.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL)');
  local = writeConfig(
    ws.dir,
    agentYaml(broker.url, {
      sources: `  - ${JSON.stringify(ROWS_SOURCE)}\n  - ${JSON.stringify(GEN_SOURCE)}`,
      extra: 'queue: { commit_interval: 20ms }\nfleet: { groups: [site], health_deadline: 30s }',
    }),
  );
  receiver = await startReceiver(x25519, local, silentLogger, { output });
  startWriting();
  running = await start();
  await forwarding();
});

after(async () => {
  stopWriting();
  await running?.agent.stop();
  await receiver?.close();
  await broker?.stop();
  writer?.close();
  ws?.cleanup();
});

describe('desired configuration on a running agent', () => {
  it('a changed source, sink settings and queue settings apply live and are committed; the state files are private', async () => {
    const v1 = { sources: [{ ...ROWS_SOURCE, batch_size: 37 }], sender: { max_in_flight: 4 } };
    const r1 = await running.pipeline.offer({ kind: 'device' }, doc(1, v1), { keyId: 'k1', name: 'alice' });
    assert.equal(r1.outcome, 'committed', JSON.stringify(r1));
    assert.match(r1.effective, /^[0-9a-f]{8}\+d=1$/);
    assert.equal(running.agent.loaded.config.sender.max_in_flight, 4);
    await forwarding();
    // The group layer sits below the device's: its queue change applies (a whole restart), its source entry is overridden.
    const g1 = { queue: { commit_interval: '30ms' }, sources: [{ ...ROWS_SOURCE, batch_size: 99 }] };
    const r2 = await running.pipeline.offer({ kind: 'group', name: 'site' }, doc(1, g1));
    assert.equal(r2.outcome, 'committed', JSON.stringify(r2));
    assert.match(r2.effective, /^[0-9a-f]{8}\+g:site=1\+d=1$/);
    assert.equal(running.agent.loaded.config.queue.commit_interval, 30);
    assert.equal(running.agent.loaded.config.sources.find((s) => s.name === 'rows')!.batch_size, 37);
    assert.deepEqual(running.pipeline.provenance().sources, { rows: 'device', gen: 'local' });
    assert.equal(running.pipeline.provenance().keys.queue, 'group:site');
    await forwarding();
    const dir = join(ws.dir, 'data', 'remote');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'committed.json')).mode & 0o777, 0o600);
    assert.equal(existsSync(join(dir, 'pending.json')), false);
  });

  it('changing one source restarts only it: the other keeps running and counting; a log level change restarts nothing', async () => {
    const agent = running.agent;
    const rowsPolls = () => agent.status().sources.rows!.counters.polls ?? 0;
    const startedLines = (name: string) => logLines.filter((l) => l.includes('"msg":"source started"') && l.includes(`"source":"${name}"`)).length;
    const before = { rows: startedLines('rows'), gen: startedLines('gen'), polls: rowsPolls() };
    const effective = agent.loaded;
    const next = parseConfigObject(
      { ...(agent.loaded.data as object), sources: [...agent.loaded.config.sources.filter((s) => s.name !== 'gen'), { ...GEN_SOURCE, rate: 300 }] },
      'test',
      ws.dir,
    );
    const result = await agent.apply(next);
    assert.deepEqual(result, { restarted: { sources: ['gen'], sink: false, whole: false } });
    assert.equal(startedLines('gen'), before.gen + 1, 'gen started again');
    assert.equal(startedLines('rows'), before.rows, 'rows was not restarted');
    const deadline = Date.now() + 30_000;
    while (rowsPolls() < before.polls + 5) {
      assert.ok(Date.now() < deadline, 'the rows source keeps polling');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Back to the committed configuration, as the pipeline would after a rollback.
    const back = await agent.apply(effective);
    assert.deepEqual(back.restarted.sources, ['gen']);
    // The log level changes in place: nothing restarts, every component's logger follows.
    const louder = await agent.apply(parseConfigObject({ ...(effective.data as object), log: { level: 'debug' } }, 'test', ws.dir));
    assert.deepEqual(louder, { restarted: { sources: [], sink: false, whole: false } });
    assert.equal(log.level, 'debug');
    await agent.apply(effective);
    assert.equal(log.level, 'warn');
    log.level = 'info';
  });

  it('refused with the right reason while the device keeps forwarding: older, replayed, schema-invalid, forbidden, unknown group', async () => {
    // Version 2 of the device document, the same settings: committed without an apply (nothing runs differently).
    const v2 = await running.pipeline.offer({ kind: 'device' }, doc(2, running.pipeline.committed().layers.device!.config));
    assert.equal(v2.outcome, 'committed', JSON.stringify(v2));
    assert.equal(v2.message, 'no change to the running configuration');
    const cases: [Parameters<RemoteConfigStart['pipeline']['offer']>[0], RemoteConfigDocument, string][] = [
      [{ kind: 'device' }, doc(1, { sources: [{ ...ROWS_SOURCE, batch_size: 37 }], sender: { max_in_flight: 4 } }), 'older_version'],
      [{ kind: 'device' }, doc(2, { sender: { max_in_flight: 5 } }), 'replayed'],
      [{ kind: 'device' }, { version: 0, config: {}, raw: '{}' }, 'malformed'],
      [{ kind: 'group', name: 'site' }, doc(1, { queue: { commit_interval: '31ms' } }), 'replayed'],
      [{ kind: 'device' }, doc(3, { sources: [{ type: 'no-such-driver', name: 'x' }] }), 'schema_invalid'],
      [{ kind: 'device' }, doc(3, { sink: { qos: 7 } }), 'schema_invalid'],
      [{ kind: 'device' }, doc(3, { device: { id: 'someone-else' } }), 'forbidden_setting'],
      [{ kind: 'device' }, doc(3, { fleet: { trust: { threshold: 1 } } }), 'forbidden_setting'],
      [{ kind: 'group', name: 'elsewhere' }, doc(1, {}), 'wrong_target'],
    ];
    for (const [layer, document, reason] of cases) {
      const report = await running.pipeline.offer(layer, document);
      assert.equal(report.outcome, 'refused', JSON.stringify(report));
      assert.equal(report.reason, reason, JSON.stringify(report));
    }
    const schema = reports.find((r) => r.reason === 'schema_invalid' && /sink/.test(r.message ?? ''));
    assert.ok(schema, 'a schema refusal names the path');
    const same = await running.pipeline.offer({ kind: 'device' }, doc(2, running.pipeline.committed().layers.device!.config));
    assert.equal(same.outcome, 'unchanged');
    const counted = running.agent.telemetry.counter('edge_remote_refused_total', '', ['kind', 'reason']);
    assert.equal(counted.value({ kind: 'config', reason: 'forbidden_setting' }), 2);
    await forwarding();
  });

  it('a config whose sink cannot connect is rolled back (health:sink) while the device keeps forwarding', async () => {
    const port = await freePort();
    const deviceNow = running.pipeline.committed().layers.device!.config as Record<string, unknown>;
    const started = Date.now();
    const report = await offerBad(3, { ...deviceNow, sink: { type: 'mqtt', url: `mqtt://127.0.0.1:${port}` } });
    assert.equal(report.outcome, 'rolled_back', JSON.stringify(report));
    assert.equal(report.reason, 'health:sink');
    assert.match(report.effective, /\+d=2$/, 'still on device v2');
    assert.ok(Date.now() - started < 30_000);
    assert.equal(running.agent.loaded.config.sink!.url, broker.url);
    assert.equal(existsSync(join(ws.dir, 'data', 'remote', 'pending.json')), false);
    await forwarding();
  });

  it('a config whose canary batch is never acknowledged is rolled back (health:canary); the canary goes out after the rollback', async () => {
    stopWriting();
    const agent = running.agent;
    const quiet = Date.now() + 60_000;
    while (agent.queue.hasUnsent() || agent.status().sources.gen!.counters.records! < GEN_SOURCE.count) {
      assert.ok(Date.now() < quiet, 'the device goes quiet');
      await new Promise((r) => setTimeout(r, 20));
    }
    const silent = await startSilentBroker();
    try {
      const deviceNow = running.pipeline.committed().layers.device!.config as Record<string, unknown>;
      const report = await offerBad(4, { ...deviceNow, sink: { type: 'mqtt', url: silent.url } });
      assert.equal(report.outcome, 'rolled_back', JSON.stringify(report));
      assert.equal(report.reason, 'health:canary');
      assert.ok(silent.publishes() >= 1, 'the canary batch was published to the silent broker');
    } finally {
      await silent.close();
    }
    await output.waitFor(() => output.records.some((r) => r.header.stream === '_canary'), 'the canary record at the receiver', 60_000);
    const canary = output.records.find((r) => r.header.stream === '_canary')!.record;
    assert.equal(canary.kind, 'canary');
    startWriting();
    await forwarding();
  });

  it('a restart comes back on the committed configuration', async () => {
    await running.agent.stop();
    running = await start();
    assert.match(running.pipeline.effectiveVersion(), /^[0-9a-f]{8}\+g:site=1\+d=2$/);
    assert.equal(running.agent.loaded.config.sender.max_in_flight, 4);
    assert.equal(running.agent.loaded.config.queue.commit_interval, 30);
    assert.equal(running.interrupted, undefined);
    await forwarding();
  });

  it('every row of the table reached the receiver exactly once, across every apply, rollback and restart', async () => {
    stopWriting();
    const total = inserted;
    await output.waitFor(() => rowIds().length >= total, `all ${total} rows`, 120_000);
    const ids = rowIds().sort((a, b) => a - b);
    assert.equal(ids.length, total, 'no row twice');
    assert.deepEqual(
      ids,
      Array.from({ length: total }, (_, i) => i + 1),
      'no row lost',
    );
    const gen = output.records.filter((r) => r.header.stream === 'gen').map((r) => r.record.n as number);
    assert.equal(new Set(gen).size, gen.length, 'no synthetic record twice');
    process.stdout.write(`# ${total} rows forwarded exactly once across ${reports.length} configuration reports\n`);
  });
});

/** A device document with a short health deadline of its own: a bad config must be rolled back quickly. */
function offerBad(version: number, config: Record<string, unknown>): Promise<ConfigReport> {
  return running.pipeline.offer({ kind: 'device' }, doc(version, { ...config, fleet: { health_deadline: '3s' } }));
}

/**
 * `ConfigPipeline.rollback()` on a real agent (in process) with real Mosquittos: a rollback whose earlier
 * configuration fails its health gate (its broker is gone) leaves the device on what it ran and can be tried
 * again; a rollback that passes is committed as `rolled_back`/`operator`; afterwards the version floor stays
 * at the highest version committed: the retained copy of the rolled-back document is ignored quietly, the
 * same document offered live is refused `replayed`, an older one `older_version`, a newer one is taken.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../agent/log.ts';
import { startWithRemoteConfig, type RemoteConfigStart } from '../../agent/remote/config-start.ts';
import type { ConfigReport, RemoteConfigDocument } from '../../agent/remote/config-pipeline.ts';
import type { CommittedState } from '../../agent/remote/config-state.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { Watcher } from '../helpers/fleet.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

let ws: Awaited<ReturnType<typeof workspace>>;
let a: Mosquitto;
let b: Mosquitto | undefined;
const centres: Watcher[] = [];
let running: RemoteConfigStart;
const reports: ConfigReport[] = [];

const doc = (version: number, config: unknown): RemoteConfigDocument => ({ version, config, raw: JSON.stringify({ version, config }) });
const rate = () => running.agent.loaded.config.sources.find((s) => s.name === 'gen')!.rate;
const committedFile = () => JSON.parse(readFileSync(join(ws.dir, 'data', 'remote', 'committed.json'), 'utf8')) as CommittedState;

before(async () => {
  ws = await workspace('edge-rollback-');
  a = await startMosquitto();
  b = await startMosquitto();
  // A subscriber on each broker: MQTT 5 acknowledges a batch nobody subscribes to as not delivered.
  for (const broker of [a, b]) centres.push(await Watcher.connect(broker.url, ['edge-agent/v1/#']));
  const local = writeConfig(
    ws.dir,
    agentYaml(a.url, { sources: '  - { type: synthetic, name: gen, rate: 100, batch: 10 }', extra: 'fleet: { health_deadline: 3s }' }),
  );
  running = await startWithRemoteConfig(local, silentLogger, { localPath: local.path });
  running.pipeline.onReport((r) => reports.push(r));
});

after(async () => {
  await running?.agent.stop();
  for (const c of centres) await c.close();
  await b?.stop();
  await a?.stop();
  ws?.cleanup();
});

it('nothing committed over an earlier remote configuration: nothing to roll back to', async () => {
  await assert.rejects(running.pipeline.rollback(), /nothing to roll back to/);
});

it('a rollback whose earlier configuration fails its health gate: still on what ran, tried again later', async () => {
  assert.equal((await running.pipeline.offer({ kind: 'device' }, doc(1, { sink: { url: b!.url } }))).outcome, 'committed');
  assert.equal(running.agent.loaded.config.sink!.url, b!.url);
  assert.equal((await running.pipeline.offer({ kind: 'device' }, doc(2, { sink: { url: a.url } }))).outcome, 'committed');
  assert.equal(committedFile().previous?.layers.device?.version, 1, 'committed.json keeps the layers before the last commit');
  await b!.stop();
  b = undefined;
  const failed = await running.pipeline.rollback();
  assert.deepEqual([failed.outcome, failed.reason, failed.version], ['rolled_back', 'health:sink', 2], JSON.stringify(failed));
  assert.match(failed.message ?? '', /rollback on request failed its health check/);
  assert.equal(running.agent.loaded.config.sink!.url, a.url, 'back on v2');
  assert.match(running.pipeline.effectiveVersion(), /\+d=2$/);
  assert.equal(running.pipeline.committed().previous?.layers.device?.version, 1, 'previous kept: it can be tried again');
});

it('a rollback that passes is committed as rolled_back/operator; the version floor stays at the highest version committed', async () => {
  const v3 = doc(3, { sink: { url: a.url }, sources: [{ type: 'synthetic', name: 'gen', rate: 150, batch: 10 }] });
  assert.equal((await running.pipeline.offer({ kind: 'device' }, v3)).outcome, 'committed');
  assert.equal(rate(), 150);
  const back = await running.pipeline.rollback();
  assert.deepEqual([back.layer, back.outcome, back.reason, back.version], ['device', 'rolled_back', 'operator', 2], JSON.stringify(back));
  assert.equal(back.message, 'device v3 → v2 on request');
  assert.equal(rate(), 100);
  const file = committedFile();
  assert.equal(file.layers.device?.version, 2);
  assert.equal(file.previous, undefined, 'one step only');
  assert.equal(file.floors?.device?.version, 3);
  assert.equal(statSync(join(ws.dir, 'data', 'remote', 'committed.json')).mode & 0o777, 0o600);
  await assert.rejects(running.pipeline.rollback(), /nothing to roll back to/);

  const published = reports.length;
  const quiet = await running.pipeline.offer({ kind: 'device' }, v3, undefined, { redelivered: true });
  assert.equal(quiet.outcome, 'unchanged');
  assert.equal(reports.length, published, 'the retained copy is ignored quietly: no report');
  assert.equal(running.pipeline.lastReport?.reason, 'operator');
  const counter = running.agent.telemetry.counter('edge_remote_refused_total', '', ['kind', 'reason']);
  assert.equal(counter.value({ kind: 'config', reason: 'replayed' }), 0, 'nor counted');

  const live = await running.pipeline.offer({ kind: 'device' }, v3);
  assert.deepEqual([live.outcome, live.reason], ['refused', 'replayed'], JSON.stringify(live));
  assert.match(live.message ?? '', /rolled back on request; sign a version above v3/);
  const other = await running.pipeline.offer({ kind: 'device' }, doc(3, { log: { level: 'info' } }), undefined, { redelivered: true });
  assert.deepEqual([other.outcome, other.reason], ['refused', 'replayed']);
  assert.equal((await running.pipeline.offer({ kind: 'device' }, doc(1, { sink: { url: a.url } }))).reason, 'older_version');
  assert.equal((await running.pipeline.offer({ kind: 'device' }, doc(2, { sink: { url: a.url } }))).outcome, 'unchanged');
  assert.equal(rate(), 100, 'none of them applied');

  const v4 = await running.pipeline.offer(
    { kind: 'device' },
    doc(4, { sink: { url: a.url }, sources: [{ type: 'synthetic', name: 'gen', rate: 120, batch: 10 }] }),
  );
  assert.equal(v4.outcome, 'committed', JSON.stringify(v4));
  assert.equal(rate(), 120);
  assert.equal(committedFile().floors?.device?.version, 4);
});

it('a version that failed its health gate becomes the floor: its retained copy is not applied again at a reconnect', async () => {
  const closed = `mqtt://127.0.0.1:1`; // nothing listens on port 1: the sink never connects
  const v5 = doc(5, { sink: { url: closed }, sources: [{ type: 'synthetic', name: 'gen', rate: 130, batch: 10 }] });
  const failed = await running.pipeline.offer({ kind: 'device' }, v5);
  assert.equal(failed.outcome, 'rolled_back', JSON.stringify(failed));
  assert.equal(failed.reason, 'health:sink');
  assert.equal(rate(), 120, 'back on v4');
  assert.deepEqual(committedFile().floors?.device, { version: 5, raw: v5.raw, rolled_back: 'health:sink' });

  const published = reports.length;
  const again = await running.pipeline.offer({ kind: 'device' }, v5, undefined, { redelivered: true });
  assert.equal(again.outcome, 'unchanged', JSON.stringify(again));
  assert.match(String(again.message), /rolled back \(health:sink\)/);
  assert.equal(reports.length, published, 'the retained copy is not reported again');
  assert.equal(rate(), 120, 'and not applied again');

  const live = await running.pipeline.offer({ kind: 'device' }, v5);
  assert.equal(live.reason, 'replayed', JSON.stringify(live));
  const v6 = await running.pipeline.offer(
    { kind: 'device' },
    doc(6, { sink: { url: a.url }, sources: [{ type: 'synthetic', name: 'gen', rate: 140, batch: 10 }] }),
  );
  assert.equal(v6.outcome, 'committed', JSON.stringify(v6));
  assert.equal(rate(), 140);
});

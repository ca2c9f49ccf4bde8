import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { CountingProxy } from '../../scripts/lib/counting-proxy.ts';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startLoggingAgent } from '../helpers/agent-process.ts';
import { until } from './pipeline.ts';
import { FixtureTree } from './fixture-tree.ts';

const RECORDS = 300;
/** How long a held agent is watched for a leak (a negative needs a window): 5 of its 200 ms checks. */
const WATCH_MS = 1_000;

describe('the agent as a process, held by a gate', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('queues while the memory gate is closed, forwards everything once it opens; budget counters written 0600', async () => {
    const mosquitto = await startMosquitto();
    cleanups.push(() => mosquitto.stop());
    const proxy = await CountingProxy.start(mosquitto.port);
    cleanups.push(() => proxy.close());
    const tree = new FixtureTree(1);
    cleanups.push(() => tree.remove());
    tree.memory(16); // below hold (32 MiB)
    const arrivals: number[] = [];
    const subscriber = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
    cleanups.push(() => subscriber.endAsync(true));
    subscriber.on('message', () => arrivals.push(Date.now()));
    await subscriber.subscribeAsync('edge-agent/v1/#', { qos: 1 });
    const dir = mkdtempSync(join(tmpdir(), 'governor-agent-'));
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      `device: { id: gw-held }
data_dir: ${dir}/data
keys: { device_private: ${dir}/keys/device.key, centre_public: ${dir}/keys/centre.pub, generate_if_missing: true }
sources:
  - { type: synthetic, name: load, rate: 0, count: ${RECORDS}, batch: 50, shape: realistic }
batch: { max_records: 50 }
sink: { type: mqtt, url: "mqtt://127.0.0.1:${proxy.port}" }
governor:
  proc_root: ${tree.proc}
  sys_root: ${tree.sys}
  check_interval: 200ms
  gates: { memory: { hold: 32, resume: 48 } }
  budget: { daily: 10MiB }
`,
    );
    const agent = startLoggingAgent(config, dir);
    cleanups.push(async () => {
      agent.child.kill('SIGKILL');
      await agent.exited;
    });
    const logged = (msg: string) => agent.lines().some((l) => l.msg === msg);
    await until(() => logged('gate closed; its classes wait') && logged('synthetic source reached its count') && logged('mqtt connected'), 'held and queued');
    const closed = agent.lines().find((l) => l.msg === 'gate closed; its classes wait')!;
    assert.equal(closed.gate, 'memory');
    assert.match(String(closed.detail), /memory 16 MiB available: held until above 48/);
    const watchedFrom = proxy.out;
    await new Promise((resolve) => setTimeout(resolve, WATCH_MS));
    assert.equal(arrivals.length, 0, 'nothing forwarded while the gate is closed');
    assert.ok(proxy.out - watchedFrom < 64, `bytes went out while held: ${proxy.out - watchedFrom}`);

    tree.memory(40); // inside the band: still closed
    tree.memory(64); // above resume
    const opened = Date.now();
    await until(() => logged('gate open again'), 'the gate opened');
    await until(() => arrivals.length >= RECORDS / 50, `all ${RECORDS / 50} batches arrived`);
    assert.ok(arrivals[0]! >= opened, 'the first batch came after the gate opened');

    const stateFile = join(dir, 'data', 'governor-budget.json');
    assert.ok(existsSync(stateFile));
    assert.equal(statSync(stateFile).mode & 0o777, 0o600);
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { cycle: { wire: number } };
    assert.ok(state.cycle.wire >= proxy.total - 4096, 'the budget file vouches for the bytes spent (written ahead, or exact at stop)');
  });
});

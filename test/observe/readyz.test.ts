/**
 * /readyz against real brokers: a Mosquitto of the test's own stopped and started again (red within two
 * intervals, green within two after it returns), a sink that connects but never acknowledges (red by the
 * backlog threshold, while the sink check stays green), and an operator's pause (forwarding held on
 * purpose: green, however old the backlog). An interval here is the sink grace plus the endpoint's
 * once-a-second look at the sink.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { type ObservedAgent, startObservedAgent } from '../helpers/observe.ts';
import { startSilentBroker } from '../helpers/fake-silent-broker.ts';
import { readToken } from '../../agent/observe/token.ts';
import { configPaths } from '../../agent/config/paths.ts';

const GRACE_MS = 1000;
const INTERVAL_MS = GRACE_MS + 1000;

interface Ready {
  ready: boolean;
  sink: { ok: boolean };
  backlog: { ok: boolean; oldestAgeSeconds: number; held: string[] };
}

async function readyz(o: ObservedAgent): Promise<{ status: number; body: Ready }> {
  const r = await o.get('/readyz');
  return { status: r.status, body: (await r.json()) as Ready };
}

/** Polls /readyz until `want` holds; returns how long it took (ms). */
async function readyzUntil(o: ObservedAgent, want: (r: { status: number; body: Ready }) => boolean, what: string, timeoutMs = 60_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    const r = await readyz(o);
    if (want(r)) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('broker stopped: /readyz red within two intervals; broker back: green within two', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: true });
  const loaded = writeConfig(
    ws.dir,
    agentYaml(broker.url, {
      sources: '  - { type: synthetic, name: gen, rate: 200, batch: 20 }',
      extra: `http: { enabled: true, listen: "127.0.0.1:0", ready_sink_grace: ${GRACE_MS}ms, ready_max_oldest_age: 1h }\n`,
    }),
  );
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output: new CollectingOutput() });
  const o = await startObservedAgent(loaded);
  try {
    await readyzUntil(o, (r) => r.status === 200 && r.body.ready, 'green at start');
    await broker.stop();
    const red = await readyzUntil(o, (r) => r.status === 503 && !r.body.sink.ok, 'red after the broker stopped');
    assert.ok(red <= 2 * INTERVAL_MS, `red after ${red} ms, more than two intervals (${2 * INTERVAL_MS} ms)`);
    await broker.restart();
    const green = await readyzUntil(o, (r) => r.status === 200 && r.body.ready, 'green after the broker returned');
    assert.ok(green <= 2 * INTERVAL_MS, `green after ${green} ms, more than two intervals (${2 * INTERVAL_MS} ms)`);
  } finally {
    await o.stop();
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});

test('a sink that never acknowledges: red by the backlog threshold, the sink check green; an operator pause holds it green', async () => {
  const ws = await workspace();
  const silent = await startSilentBroker();
  const THRESHOLD_MS = 2000;
  const loaded = writeConfig(
    ws.dir,
    agentYaml(silent.url, {
      sources: '  - { type: synthetic, name: gen, rate: 100, batch: 10 }',
      extra: `http: { enabled: true, listen: "127.0.0.1:0", ready_sink_grace: 1s, ready_max_oldest_age: ${THRESHOLD_MS}ms }\n`,
    }),
  );
  const o = await startObservedAgent(loaded);
  try {
    const first = await readyz(o);
    assert.equal(first.status, 200, 'green while the backlog is young');
    await readyzUntil(o, (r) => r.body.backlog.oldestAgeSeconds > 0, 'a record waiting');
    const r = await readyz(o).then(async (x) => (x.status === 503 ? x : (await readyzUntil(o, (y) => y.status === 503, 'red by the threshold'), readyz(o))));
    assert.equal(r.body.sink.ok, true, 'the sink is connected: the backlog check is what turned red');
    assert.equal(r.body.backlog.ok, false);
    assert.ok(r.body.backlog.oldestAgeSeconds * 1000 > THRESHOLD_MS, 'red only once the oldest record is past the threshold');
    assert.ok(silent.publishes() > 0, 'batches were written and never acknowledged');
    // Held on purpose: an operator's pause (token, same origin) sets edge_forwarding_held{reason="operator"}.
    const token = readToken(configPaths(loaded).dataDir)!;
    const refused = await o.get('/actions/pause', { method: 'POST', headers: { authorization: `Bearer ${token}`, origin: 'http://evil.example' } });
    assert.equal(refused.status, 403, 'a cross-origin pause is refused');
    const noToken = await o.get('/actions/pause', { method: 'POST' });
    assert.equal(noToken.status, 401, 'a pause without the token is refused');
    const paused = await o.get('/actions/pause', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(paused.status, 200);
    const held = await readyz(o);
    assert.equal(held.status, 200, 'held, not stuck');
    assert.deepEqual(held.body.backlog.held, ['operator']);
    assert.ok(held.body.backlog.oldestAgeSeconds * 1000 > THRESHOLD_MS);
    assert.match(await o.text('/metrics'), /^edge_forwarding_held\{reason="operator"\} 1$/m);
    await o.get('/actions/resume', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal((await readyz(o)).status, 503, 'resumed, still stuck: red again');
  } finally {
    await o.stop();
    await silent.close();
    ws.cleanup();
  }
});

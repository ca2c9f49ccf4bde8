import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, parseConfigObject } from '../../agent/app.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { workspace } from '../helpers/setup.ts';

// A change under everything (here the queue's commit interval) restarts the whole agent in process: the
// embedded broker (on a new port), the in-process receiver, the queue, the sink with end-to-end
// acknowledgements, the source. The source's sequence reaches the receiver with no gap and no repeat.
test('a whole restart with the embedded broker and receiver loses and repeats nothing', async () => {
  const ws = await workspace('edge-whole-');
  const yaml = `
device: { id: gw-whole }
data_dir: data
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources: [ { type: synthetic, name: gen, rate: 300, batch: 10, count: 600 } ]
sink: { type: mqtt, url: embedded, protocol_version: 4, acknowledged_by: centre }
broker: { embedded: true }
queue: { commit_interval: 20ms }
receiver: { enabled: true, private_key: keys/centre.key, devices: [ { id: gw-whole, public_keys: [keys/device.pub] } ] }
`;
  const loaded = parseConfig(yaml, 'whole.yaml', ws.dir);
  const output = new CollectingOutput();
  const agent = await startAgent(loaded, silentLogger, { receiverOutput: output });
  try {
    await output.waitFor(() => output.records.length >= 100, '100 records before the restart');
    const brokerBefore = agent.loaded.config.broker;
    const result = await agent.apply(parseConfigObject({ ...(loaded.data as object), queue: { commit_interval: '50ms' } }, 'whole-2.yaml', ws.dir));
    assert.deepEqual(result, { restarted: { sources: ['gen'], sink: true, whole: true } });
    assert.deepEqual(agent.loaded.config.broker, brokerBefore);
    assert.deepEqual(await agent.health(Date.now(), 30_000, 'whole'), { ok: true });
    // The health gate may have queued a canary (stream _canary) when the queue was empty for a moment.
    const gen = () => output.records.filter((r) => r.header.stream === 'gen').map((r) => r.record.n as number);
    await output.waitFor(() => gen().length >= 600, 'all 600 records', 60_000);
    const numbers = gen().sort((a, b) => a - b);
    assert.deepEqual(
      numbers,
      Array.from({ length: 600 }, (_, i) => i + 1),
    );
  } finally {
    await agent.stop();
    ws.cleanup();
  }
});

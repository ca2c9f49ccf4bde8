import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';

const TOTAL = 30_000;

// Mosquitto acknowledges a publish before it is on disk: only a broker that shuts down (SIGTERM, saving its
// persistence file) can promise to keep what it acknowledged. That is the restart tested here; a SIGKILLed
// broker loses what it had acknowledged but not yet delivered, which no publisher can prevent.
test('broker stopped and restarted mid-stream: every record arrives, none twice', async () => {
  const ws = await workspace();
  const broker = await startMosquitto({ persistence: true });
  const loaded = writeConfig(ws.dir, agentYaml(broker.url, { sources: `  - { type: synthetic, name: gen, rate: 20000, batch: 200, count: ${TOTAL} }` }));
  const output = new CollectingOutput();
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output });
  const agent = await startAgent(loaded, silentLogger);
  try {
    await output.waitFor(() => output.records.length >= TOTAL / 5, 'a fifth of the stream');
    await broker.stop();
    const atStop = output.records.length;
    assert.ok(atStop < TOTAL, 'the broker went down mid-stream');
    await broker.restart();
    await output.waitFor(() => output.records.length >= TOTAL, 'every record', 120_000);
    await agent.sender.idle();
    await agent.queue.flush(); // acknowledged rows leave with the next group commit
    const numbers = output.numbers();
    assert.equal(numbers.length, TOTAL, 'no record twice in the output');
    assert.deepEqual(
      [...numbers].sort((a, b) => a - b),
      Array.from({ length: TOTAL }, (_, i) => i + 1),
    );
    assert.equal(agent.status().queue.records, 0, 'the queue drained');
  } finally {
    await agent.stop();
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});

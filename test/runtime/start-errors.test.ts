import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startAgent, type RunningAgent } from '../../agent/runtime/agent.ts';
import { silentLogger } from '../../agent/log.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startPtyPair } from '../helpers/socat.ts';

/** Resolves once `test()` holds, checking at each queue commit; fails after `timeoutMs`. */
function until(agent: RunningAgent, test: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (test()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(agent.status().sources)}`));
    }, timeoutMs);
    // Source restarts are not commits: also look again on a short cadence while waiting for state changes.
    const poll = setInterval(check, 50);
    const off = agent.queue.onData(check);
    function check() {
      if (!test()) return;
      stop();
      resolve();
    }
    function stop() {
      clearTimeout(timer);
      clearInterval(poll);
      off();
    }
  });
}

// A gateway with an unplugged serial adapter still ships its other data; on_start_error decides what the
// missing device's source does. Real components: a serial source on a path with no device yet (then a real
// pty appears there), a synthetic source beside it, a real Mosquitto as the sink.
describe('a source that cannot start never stops the others', () => {
  for (const behaviour of ['retry', 'ignore'] as const) {
    test(`on_start_error: ${behaviour}`, async () => {
      const ws = await workspace();
      const broker = await startMosquitto();
      const devicePath = join(ws.dir, 'gps-dev');
      const loaded = writeConfig(
        ws.dir,
        agentYaml(broker.url, {
          sources: [
            `  - { type: serial, name: gps, path: ${devicePath}, framing: { mode: json_lines }, on_start_error: ${behaviour} }`,
            '  - { type: synthetic, name: gen, rate: 2000, batch: 50 }',
          ].join('\n'),
        }),
      );
      const agent = await startAgent(loaded, silentLogger);
      let pty: Awaited<ReturnType<typeof startPtyPair>> | undefined;
      try {
        const committedAtStart = agent.queue.stats().committed;
        await until(agent, () => agent.queue.stats().committed > committedAtStart + 500, 'the other source to keep producing');
        const gps = () => agent.status().sources.gps!;
        assert.equal(gps().state, behaviour === 'retry' ? 'retrying' : 'off');
        assert.ok((gps().counters.start_errors ?? 0) >= 1, 'the failed start is counted');
        // The device is plugged in: a retrying source picks it up by itself; an ignored one stays off.
        pty = await startPtyPair(ws.dir, 'gps');
        if (behaviour === 'retry') {
          await until(agent, () => gps().state === 'running', 'the serial source to start once its device exists');
          await pty.write('\n{"lat":48.1}\n');
          await until(agent, () => (gps().counters.records ?? 0) >= 1, 'a record from the device');
        } else {
          assert.equal(gps().state, 'off');
        }
        assert.equal(agent.status().sources.gen!.state, 'running');
      } finally {
        await agent.stop();
        await pty?.stop();
        await broker.stop();
        ws.cleanup();
      }
    });
  }

  test("on_start_error: fail stops the agent at start with the source's error", async () => {
    const ws = await workspace();
    const broker = await startMosquitto();
    const loaded = writeConfig(
      ws.dir,
      agentYaml(broker.url, {
        sources: `  - { type: serial, name: gps, path: ${join(ws.dir, 'nothing-here')}, framing: { mode: lines }, on_start_error: fail }`,
      }),
    );
    try {
      await assert.rejects(startAgent(loaded, silentLogger), (err: Error) => /nothing-here/.test(err.message));
    } finally {
      await broker.stop();
      ws.cleanup();
    }
  });
});

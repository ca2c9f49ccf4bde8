import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startPipeline, until, type Pipeline } from './pipeline.ts';

/**
 * A flapping metered link: the proxy resets every connection every FLAP ms for SECONDS s. The product's
 * ratio (flaps every 2 s, reconnect floor 30 s) is kept at 1:15, time compressed tenfold: flaps every 200 ms,
 * floor 3 s. EDGE_TEST_GOVERNOR_FLAP_SECONDS scales the run (default 6; 360 is the simulated hour at this pace).
 */
const SECONDS = Number(process.env.EDGE_TEST_GOVERNOR_FLAP_SECONDS ?? 6);
const FLAP_MS = 200;
const FLOOR_MS = 3_000;
// A control reserve sized for the worst hour: the floor allows one handshake (about 43 B here) per 3 s, 120
// in the simulated hour (5.2 KB); without the floor the sink reconnected at every flap.
const CONTROL_RESERVE = 8 * 1024;

describe('a flapping metered link', () => {
  let p: Pipeline | undefined;
  after(async () => p?.close());

  it('reconnects no sooner than the floor: handshake bytes stay within the control reserve, all counted', async () => {
    p = await startPipeline(
      {
        gates: { metered: { reconnect_floor: FLOOR_MS } },
        budget: { daily: '1MiB', control_reserve: CONTROL_RESERVE },
        classes: {},
      },
      // Without the floor this sink would be back within 50–200 ms of every reset.
      { reconnect: { initial_delay: 50, max_delay: 200 } },
    );
    const pipe = p;
    await until(() => pipe.proxy.connections > 0, 'first connection');
    pipe.sender.start();
    const start = performance.now();
    while (performance.now() - start < SECONDS * 1000) {
      await new Promise((resolve) => setTimeout(resolve, FLAP_MS));
      pipe.proxy.cutLink();
      pipe.proxy.restore();
    }
    const seconds = (performance.now() - start) / 1000;
    const budget = pipe.governor.status().budget!;
    const agent = pipe.agentBytes();
    const control = Math.max(budget.cycle.wire, agent) - budget.cycle.critical - budget.cycle.general;
    console.log(`flapping: ${pipe.proxy.connections} connections in ${seconds.toFixed(1)} s, proxy ${pipe.proxy.total} B, agent ${agent} B`);
    assert.ok(pipe.proxy.connections <= Math.ceil(seconds / (FLOOR_MS / 1000)) + 2, `${pipe.proxy.connections} connections: the floor did not hold`);
    assert.ok(agent >= pipe.proxy.total, 'every handshake byte counted by the agent');
    assert.ok(control <= CONTROL_RESERVE, `handshakes took ${control} B, more than the control reserve`);
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { records, startPipeline, until, type Pipeline } from './pipeline.ts';

/** Seconds the cap is measured over; EDGE_TEST_GOVERNOR_BW_SECONDS scales it (default 10; the benchmark uses 60). */
const SECONDS = Number(process.env.EDGE_TEST_GOVERNOR_BW_SECONDS ?? 10);
const RATE = 16 * 1024;

describe('bandwidth cap on bytes on the wire', () => {
  let p: Pipeline | undefined;
  after(async () => p?.close());

  it(`a backlog drains at the cap: bytes at the proxy over ${SECONDS} s within ±5 %`, async () => {
    p = await startPipeline({ bandwidth: { bytes_per_second: RATE, burst: RATE } });
    // Far more than the cap lets through in the measured time.
    for (let i = 0; i < 20; i++) await p.queue.enqueue('telemetry', records(2_000));
    await until(() => p!.proxy.connections > 0 && p!.agentBytes() > 0, 'the sink connected');
    const start = performance.now();
    const before = p.proxy.total;
    p.sender.start();
    await until(() => performance.now() - start >= SECONDS * 1000, 'the measured time', SECONDS * 1000 + 5_000);
    const elapsed = (performance.now() - start) / 1000;
    const counted = p.proxy.total - before;
    // The bucket starts full (one second of the rate): that much may go at once, the rest at the rate.
    const expected = RATE * elapsed + RATE;
    const error = (counted - expected) / (RATE * elapsed);
    console.log(`bandwidth: ${counted} B at the proxy in ${elapsed.toFixed(1)} s, cap ${RATE} B/s + burst: ${(error * 100).toFixed(2)} % off`);
    assert.ok(Math.abs(error) <= 0.05, `${(error * 100).toFixed(2)} % off the cap`);
    assert.ok(p.queue.hasUnsent(), 'the backlog was still waiting: the cap, not the data, set the pace');
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { records, startPipeline, until, type Pipeline } from './pipeline.ts';

/**
 * Over budget or outside its window, data waits in the queue or expires there by its TTL with the reason
 * counted (docs/governor.md, "Telemetry"): records held past the queue's max_age expire, are counted exactly
 * (by the queue as `expired`, by the governor with the class and the reason holding it), and nothing else is
 * lost. The queue's clock is injected so max_age passes without waiting for it.
 */
const HOUR = 3_600_000;

describe('records held past max_age', () => {
  let p: Pipeline | undefined;
  after(async () => p?.close());

  it('expire with the holding reason counted exactly; the streams not held lose nothing', async () => {
    const queueClock = { t: Date.now() };
    const noon = Date.parse('2026-06-10T12:00:00Z');
    const governorClock = { wallMs: () => noon, uptimeMs: () => 1_000_000, bootId: () => 'b' };
    p = await startPipeline(
      {
        classes: { backlog: 'bulk' },
        // Bulk sends only at 03:00 UTC for a minute: at noon it is held by its window.
        windows: [{ cron: '0 3 * * *', duration: '1m', timezone: 'UTC', classes: ['bulk'] }],
      },
      { clock: governorClock, maxAgeMs: HOUR, queueNow: () => queueClock.t },
    );
    const pipe = p;
    for (let i = 0; i < 6; i++) await pipe.queue.enqueue('backlog', records(50));
    for (let i = 0; i < 4; i++) await pipe.queue.enqueue('telemetry', records(50));
    await until(() => pipe.proxy.connections > 0 && pipe.agentBytes() > 0, 'the sink connected');
    pipe.sender.start();
    await until(() => pipe.sender.stats().recordsSent === 200, 'the telemetry delivered');
    assert.equal(pipe.queue.stats().streams.backlog?.records, 300, 'the backlog waits, held by its window');

    // More telemetry, committed just before the clock passes max_age: young enough to stay.
    queueClock.t += HOUR - 1_000;
    for (let i = 0; i < 2; i++) await pipe.queue.enqueue('telemetry', records(50));
    queueClock.t += 2_000;
    pipe.queue.expire();

    const expired = pipe.telemetry.get('edge_governor_expired_records_total') as { value(l: Record<string, string>): number } | undefined;
    assert.ok(expired, 'the governor counts expiry while it holds a class');
    assert.equal(expired.value({ class: 'bulk', reason: 'window' }), 300, 'every held record that expired, with its class and reason');
    assert.deepEqual(pipe.queue.stats().drops, { backlog: { expired: 300 } }, 'the queue counts them expired; nothing else dropped');
    await until(() => pipe.sender.stats().recordsSent === 300, 'the younger telemetry delivered');
    assert.equal(pipe.queue.hasUnsent(), false, 'nothing left: every record was delivered or counted expired');
    // The last acknowledgements leave the file with the next commit.
    await until(() => pipe.queue.stats().records === 0, 'the queue empty once the acknowledgements are committed');
    assert.deepEqual(pipe.queue.stats().drops, { backlog: { expired: 300 } }, 'still only the expired backlog counted');
  });
});

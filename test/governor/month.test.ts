import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { records, startPipeline, until, type Pipeline } from './pipeline.ts';

/**
 * A month in seconds: an injected clock walks day by day from 14 February to early April 2026 (the cycle that
 * starts on the 17th, a February cycle, the Berlin DST change on 29 March), with steady telemetry, a bulk
 * backlog, a two-day outage and alarms on random days, through a counting proxy to a real Mosquitto.
 * EDGE_TEST_GOVERNOR_DAYS scales the walk (default 48 days; drain days come on top).
 */
const DAYS = Number(process.env.EDGE_TEST_GOVERNOR_DAYS ?? 48);
const KiB = 1024;
const DAILY = 24 * KiB;
const MONTHLY = 520 * KiB;
const BUDGET = {
  monthly: MONTHLY,
  daily: DAILY,
  cycle_start_day: 17,
  timezone: 'Europe/Berlin',
  critical_cap: 40 * KiB,
  control_reserve: 40 * KiB,
  bulk_reserve: 200 * KiB,
  persist_step: 4 * KiB,
};

/** A seeded generator: the same alarms on the same days every run. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe('a month in seconds', () => {
  let p: Pipeline | undefined;
  after(async () => p?.close());

  it('keeps every day and every cycle within budget at the proxy, alarms within 5 s, nothing lost, its count within 1 %', async () => {
    // Simulated noon, Berlin: the day's traffic happens "at noon"; days step in whole days.
    const sim = { t: Date.parse('2026-02-14T11:00:00Z') };
    const t0 = sim.t;
    const clock = { wallMs: () => sim.t, uptimeMs: () => sim.t - t0 + 1_000_000, bootId: () => 'sim' };
    p = await startPipeline(
      { check_interval: 100, classes: { alarms: 'critical', telemetry: 'normal', backlog: 'bulk' }, budget: BUDGET },
      { clock, priorities: { alarms: 100, telemetry: 50, backlog: 10 } },
    );
    const pipe = p;
    const g = pipe.governor;
    const random = seeded(17);
    let enqueued = 0;
    // As sources emit: in small groups, each committed (and chunked) on its own.
    const enqueue = async (stream: string, n: number) => {
      for (let done = 0; done < n; done += 50) await pipe.queue.enqueue(stream, records(Math.min(50, n - done), sim.t));
      enqueued += n;
    };
    await enqueue('backlog', 600); // an old backlog, bulk
    await until(() => pipe.proxy.connections > 0 && pipe.agentBytes() > 0, 'the sink connected');
    pipe.sender.start();

    /** Nothing in flight, and every stream either drained or held by the governor. */
    const settled = () => {
      if (pipe.sender.stats().inFlight > 0) return false;
      const streams = pipe.queue.stats().streams;
      return ['telemetry', 'backlog', 'alarms'].every((s) => (streams[s]?.records ?? 0) === 0 || g.hold(s) !== undefined);
    };
    const perDay: { day: string; cycle: string; bytes: number }[] = [];
    const alarmDelays: number[] = [];
    let proxyMark = pipe.proxy.total;
    let day = 0;
    let outage = false;
    const endOfWalk = DAYS;
    for (; day < endOfWalk + 60; day++) {
      const walking = day < endOfWalk;
      if (!walking && !pipe.queue.hasUnsent()) break;
      // The outage: days 10 and 11 of the walk.
      if (walking && day === 10) {
        pipe.proxy.cutLink();
        outage = true;
      }
      if (outage && day === 12) {
        pipe.proxy.restore();
        outage = false;
      }
      if (walking) await enqueue('telemetry', 300 + Math.floor(random() * 200));
      if (walking && day % 9 === 4) await enqueue('telemetry', 900); // a burst
      await until(() => outage || settled(), `day ${day} settled`);
      if (walking && random() < 0.3) {
        // An alarm at a random time of the day, after the day's traffic, the budget perhaps spent.
        const before = pipe.received.get('alarms')?.length ?? 0;
        const at = Date.now();
        await enqueue('alarms', 1);
        if (!outage) {
          await until(() => (pipe.received.get('alarms')?.length ?? 0) > before, 'the alarm arrived', 10_000);
          alarmDelays.push(Date.now() - at);
          await until(settled, 'settled after the alarm');
        }
      }
      const snapshot = g.status().budget!;
      pipe.governor.check(); // sockets sampled before the day ends
      perDay.push({ day: snapshot.dayKey, cycle: snapshot.cycleKey, bytes: pipe.proxy.total - proxyMark });
      proxyMark = pipe.proxy.total;
      sim.t += 86_400_000;
      g.check(); // the new day is seen at once, not at the next tick
    }
    assert.ok(!pipe.queue.hasUnsent(), `the backlog never drained: ${JSON.stringify(pipe.queue.stats().streams)}`);
    await until(() => pipe.sender.stats().recordsSent === enqueued, 'every record delivered');

    const overDay = perDay.filter((d) => d.bytes > DAILY);
    assert.deepEqual(overDay, [], 'days over the daily cap (bytes at the proxy)');
    const cycles = new Map<string, number>();
    for (const d of perDay) cycles.set(d.cycle, (cycles.get(d.cycle) ?? 0) + d.bytes);
    for (const [cycle, bytes] of cycles) assert.ok(bytes <= MONTHLY, `cycle from ${cycle}: ${bytes} B > ${MONTHLY} B`);
    assert.ok(cycles.has('2026-02-17') && cycles.has('2026-03-17'), `cycles seen: ${[...cycles.keys()]}`);
    assert.ok(alarmDelays.length >= 3, 'alarms were sent');
    assert.ok(Math.max(...alarmDelays) < 5_000, `an alarm took ${Math.max(...alarmDelays)} ms`);
    const agent = pipe.agentBytes();
    const proxy = pipe.proxy.total;
    console.log(
      `month: ${perDay.length} days, ${enqueued} records, proxy ${proxy} B, agent ${agent} B, busiest day ${Math.max(...perDay.map((d) => d.bytes))} B, alarms ≤ ${Math.max(...alarmDelays)} ms`,
    );
    assert.ok(agent >= proxy, `the agent counted fewer bytes (${agent}) than the proxy (${proxy})`);
    assert.ok(agent - proxy <= proxy * 0.01, `the agent's count is ${(((agent - proxy) / proxy) * 100).toFixed(2)} % above the proxy's`);
  });
});

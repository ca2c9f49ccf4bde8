import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { records, startPipeline, until, type Pipeline } from './pipeline.ts';

/**
 * Batch size adapts to the link (docs/governor.md, "Batch size"): the sender asks the queue for batches no
 * larger than what the governor can admit now, so the end of a day's allowance is used and a small bucket
 * gets batches it can carry. Many small chunks (as sources commit) and a batch.max_bytes far above both.
 */
const KiB = 1024;

async function smallChunks(p: Pipeline, n: number): Promise<void> {
  for (let done = 0; done < n; done += 10) await p.queue.enqueue('telemetry', records(10));
}

describe('batch size adapts to the link', () => {
  let p: Pipeline | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it("uses the end of the day's allowance: batches shrink to what is left, down to one chunk", async () => {
    const DAILY = 12 * KiB;
    // The control reserve keeps room for what is not data (keepalives, acknowledgements after the last batch): on
    // a slow run a keepalive falls inside the test, and without a reserve its 4 bytes went over the day's cap.
    p = await startPipeline(
      { check_interval: 100, budget: { daily: DAILY, timezone: 'UTC', control_reserve: 512 } },
      { batchMaxBytes: 256 * KiB, batchMaxRecords: 5_000 },
    );
    await smallChunks(p, 1_500); // far more than a day's allowance, in chunks of a few hundred bytes
    await until(() => p!.proxy.connections > 0 && p!.agentBytes() > 0, 'the sink connected');
    p.sender.start();
    // Sent until what is left is smaller than a chunk (that chunk is handed back) or nothing is left: the class
    // waits for tomorrow, its admitted batches acknowledged.
    await until(() => p!.governor.hold('telemetry')?.reason === 'budget' && p!.sender.stats().inFlight === 0, 'the budget held the rest');
    const spent = p.governor.budget!.total('day');
    const { day, dayAllowance } = p.governor.budget!.snapshot();
    // What is not data (keepalives, acknowledgements, the framing of each publish) is the control class's: a
    // day keeps only a thirtieth of the control reserve for it (docs/governor.md, "Data budgets"), so on a slow
    // run, with more keepalives, the wire can pass the day's cap by that much; the data never passes its allowance.
    const control = spent - day.general - day.critical;
    const sent = p.sender.stats();
    console.log(
      `day: ${spent} of ${DAILY} B counted (data ${day.general} of ${dayAllowance} B allowed, ${control} B control), ${sent.batchesSent} batches, proxy ${p.proxy.total} B`,
    );
    assert.ok(dayAllowance <= DAILY && dayAllowance >= DAILY - 512, `the day's allowance ${dayAllowance} B is the cap less the control share`);
    assert.ok(day.general <= dayAllowance, `the day's data ${day.general} B stays within its allowance ${dayAllowance} B`);
    assert.ok(p.proxy.total <= DAILY + control, `the proxy's count ${p.proxy.total} B passes ${DAILY} B by no more than the control traffic (${control} B)`);
    // Before: the first batch (every chunk, far above the allowance) waited for the next day; nothing went.
    assert.ok(sent.batchesSent >= 2, `several batches sized to what was left went (${sent.batchesSent})`);
    assert.ok(day.general >= dayAllowance - 2 * KiB, `the allowance was used to its last chunk (${day.general} of ${dayAllowance} B)`);
    assert.ok(p.queue.hasUnsent(), 'the rest waits in the queue');
  });

  it('a small bucket gets batches no larger than its burst', async () => {
    const BURST = 4 * KiB;
    p = await startPipeline({ bandwidth: { bytes_per_second: 64 * KiB, burst: BURST } }, { batchMaxBytes: 256 * KiB, batchMaxRecords: 5_000 });
    await smallChunks(p, 1_000);
    await until(() => p!.proxy.connections > 0 && p!.agentBytes() > 0, 'the sink connected');
    p.sender.start();
    await p.sender.idle();
    const sent = p.sender.stats();
    assert.equal(sent.recordsSent, 1_000, 'every record delivered');
    const average = sent.bytesSent / sent.batchesSent;
    console.log(`bucket: ${sent.batchesSent} batches, ${average.toFixed(0)} B on average, burst ${BURST} B`);
    // Before: one batch of every chunk (tens of KiB) went at once, far beyond the burst.
    assert.ok(average <= BURST, `batches of ${average.toFixed(0)} B on average fit the ${BURST} B burst`);
    assert.ok(sent.batchesSent >= 5, `the backlog went in several batches (${sent.batchesSent})`);
  });
});

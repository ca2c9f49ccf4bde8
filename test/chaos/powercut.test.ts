import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PowerCutSession, type CutResult } from '../../scripts/chaos/powercut-session.ts';
import { formatSummary, summarise } from '../../scripts/chaos/powercut-summary.ts';
import { powerCutTestOptions, requirePowerCut } from '../helpers/powercut.ts';

const FULL_CUTS = Number(process.env.EDGE_POWERCUTS ?? 30);
const NORMAL_CUTS = Number(process.env.EDGE_POWERCUTS_NORMAL ?? 10);

async function runCuts(session: PowerCutSession, cuts: number): Promise<{ results: CutResult[]; ms: number }> {
  const started = Date.now();
  const results: CutResult[] = [];
  try {
    for (let i = 1; i <= cuts; i++) results.push(await session.cut(i));
  } finally {
    await session.close();
  }
  return { results, ms: Date.now() - started };
}

// The agent ingests ~20k records/s into a queue on a file system that forgets every write not fsynced when
// the power goes. Cut at a random moment, killed, the same queue reopened each time: with synchronous=full
// every record the source was told was committed must still be there, in order, once, and SQLite must find
// the file intact. The sink is never reachable, so nothing legitimately leaves the queue.
test(`synchronous=full: ${FULL_CUTS} power cuts lose no acked record and never corrupt the queue`, powerCutTestOptions(), async () => {
  requirePowerCut();
  const session = await PowerCutSession.open({ synchronous: 'full', maxDelayMs: 600 });
  const { results, ms } = await runCuts(session, FULL_CUTS);
  const summary = summarise(results);
  process.stdout.write(`# ${formatSummary('full', summary, ms, session.options).replaceAll('\n', '\n# ')}\n`);
  assert.deepEqual(summary.problems, [], 'the queue is consistent after every cut');
  assert.deepEqual(
    results.filter((r) => r.lost > 0).map((r) => `cut ${r.index}: acked up to ${r.lastAcked}, queue cursor ${r.cursor}`),
    [],
    'no acked record is lost',
  );
  assert.ok(
    results.every((r) => r.integrity === 'ok'),
    'SQLite finds the queue intact',
  );
  assert.ok(
    results.filter((r) => r.index % 5 !== 0).every((r) => r.lastAcked > 0),
    'cuts landed while records flowed',
  );
  assert.ok(summary.finalRecords >= results[results.length - 1]!.lastAcked);
});

// synchronous=normal syncs the WAL only at checkpoints, so a cut loses what was committed since the last
// one: measured here (docs/power-loss.md), not asserted to be zero. What must hold even so: the queue opens
// intact, holds records 1…cursor with no gap or duplicate, and never loses what an earlier cut left on disk.
test(`synchronous=normal: ${NORMAL_CUTS} power cuts: the loss window is measured and the queue stays consistent`, powerCutTestOptions(), async () => {
  requirePowerCut();
  const session = await PowerCutSession.open({ synchronous: 'normal', maxDelayMs: 2_500 });
  const { results, ms } = await runCuts(session, NORMAL_CUTS);
  const summary = summarise(results);
  process.stdout.write(`# ${formatSummary('normal', summary, ms, session.options).replaceAll('\n', '\n# ')}\n`);
  process.stdout.write(`# normal, lost per cut: ${results.map((r) => `${r.lost}/${r.lastAcked}`).join(' ')}\n`);
  assert.deepEqual(summary.problems, [], 'the queue is consistent after every cut');
  assert.ok(results.every((r) => r.integrity === 'ok' || r.integrity === 'missing'));
  assert.ok(results.every((r) => r.lost <= r.lastAcked));
});

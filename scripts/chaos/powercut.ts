/**
 * Power-cut chaos run: an agent ingests into a queue on a file system that forgets every unsynced write at
 * a cut; it is cut at random moments, killed, and what survived is checked against what the source was told
 * was committed. See docs/power-loss.md.
 *
 *   node scripts/chaos/powercut.ts [--cuts 100] [--synchronous full|normal|both] [--keep 0] [--max-delay 1000]
 *                                  [--rate 20000] [--compression none|deflate] [--verbose]
 *
 * Exit code 1 when any cut broke the queue (integrity, gaps, duplicates, a cursor going back) or, with
 * synchronous=full, lost an acked record.
 */
import { parseArgs } from 'node:util';
import { powerCutUnavailable } from './fuse-mount.ts';
import { PowerCutSession, type CutResult } from './powercut-session.ts';
import { summarise, formatSummary } from './powercut-summary.ts';

const { values } = parseArgs({
  options: {
    cuts: { type: 'string', default: '100' },
    synchronous: { type: 'string', default: 'both' },
    keep: { type: 'string', default: '0' },
    'max-delay': { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20000' },
    compression: { type: 'string', default: 'none' },
    verbose: { type: 'boolean', default: false },
  },
});

const unavailable = powerCutUnavailable();
if (unavailable) {
  process.stderr.write(`powercut: cannot run: ${unavailable}\n`);
  process.exit(2);
}
const modes = values.synchronous === 'both' ? (['full', 'normal'] as const) : [values.synchronous as 'full' | 'normal'];
if (!modes.every((m) => m === 'full' || m === 'normal')) {
  process.stderr.write(`powercut: --synchronous must be full, normal or both\n`);
  process.exit(2);
}
const compression = values.compression === 'deflate' ? 'deflate' : 'none';

let failed = false;
for (const synchronous of modes) {
  const session = await PowerCutSession.open({
    synchronous,
    rate: Number(values.rate),
    maxDelayMs: Number(values['max-delay']),
    keep: Number(values.keep),
    compression,
  });
  const results: CutResult[] = [];
  const started = Date.now();
  try {
    for (let i = 1; i <= Number(values.cuts); i++) {
      const r = await session.cut(i);
      results.push(r);
      if (values.verbose || r.problems.length > 0 || (synchronous === 'full' && r.lost > 0)) {
        process.stdout.write(
          `${synchronous} cut ${i}: +${r.delayMs}ms acked≤${r.lastAcked} cursor=${r.cursor} lost=${r.lost} pages dropped=${r.fs.pages_dropped} kept=${r.fs.pages_kept} names=${r.fs.names_dropped} ${r.ms}ms (start ${r.startMs}, check ${r.checkMs})${r.problems.length ? ` PROBLEMS: ${r.problems.join(' | ')}` : ''}\n`,
        );
      }
    }
  } finally {
    await session.close();
  }
  const summary = summarise(results);
  process.stdout.write(`${formatSummary(synchronous, summary, Date.now() - started, session.options)}\n`);
  if (summary.broken > 0 || (synchronous === 'full' && summary.lossyCuts > 0)) failed = true;
}
process.exit(failed ? 1 : 0);

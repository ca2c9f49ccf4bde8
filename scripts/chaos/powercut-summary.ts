import type { CutResult, SessionOptions } from './powercut-session.ts';

export interface CutSummary {
  cuts: number;
  /** Cuts after which the queue contradicted its contract (corruption, gap, duplicate, cursor back). */
  broken: number;
  /** Cuts that lost at least one acked record. */
  lossyCuts: number;
  lostTotal: number;
  /** Acked records lost per cut: min, median, 90th percentile, max, mean. */
  lost: { min: number; median: number; p90: number; max: number; mean: number };
  /** Records the queue held at the end (all of them acked and surviving). */
  finalRecords: number;
  problems: string[];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function summarise(results: readonly CutResult[]): CutSummary {
  const lost = results.map((r) => r.lost).sort((a, b) => a - b);
  const lostTotal = lost.reduce((a, b) => a + b, 0);
  return {
    cuts: results.length,
    broken: results.filter((r) => r.problems.length > 0).length,
    lossyCuts: results.filter((r) => r.lost > 0).length,
    lostTotal,
    lost: {
      min: lost[0] ?? 0,
      median: quantile(lost, 0.5),
      p90: quantile(lost, 0.9),
      max: lost[lost.length - 1] ?? 0,
      mean: results.length ? lostTotal / results.length : 0,
    },
    finalRecords: results[results.length - 1]?.records ?? 0,
    problems: results.flatMap((r) => r.problems.map((p) => `cut ${r.index}: ${p}`)),
  };
}

export function formatSummary(synchronous: string, s: CutSummary, ms: number, options: Required<SessionOptions>): string {
  return [
    `synchronous=${synchronous}: ${s.cuts} cuts in ${(ms / 1000).toFixed(1)} s (rate ${options.rate}/s, cut 0–${options.maxDelayMs} ms after the first commit, unsynced pages kept ${options.keep}, compression ${options.compression})`,
    `  queue broken after ${s.broken} cuts${s.problems.length ? `: ${s.problems.slice(0, 5).join(' | ')}` : ''}`,
    `  acked records lost: ${s.lostTotal} in ${s.lossyCuts} of ${s.cuts} cuts; per cut min ${s.lost.min} / median ${s.lost.median} / p90 ${s.lost.p90} / max ${s.lost.max} / mean ${s.lost.mean.toFixed(1)}`,
    `  records in the queue at the end: ${s.finalRecords}`,
  ].join('\n');
}

import { SOURCE_KINDS } from './ground-truth.ts';
import type { ChaosResult } from './chaos-run.ts';

/** The run's figures as an operator reads them; every line starts with the seed's run for grep. */
export function formatChaosReport(r: ChaosResult): string {
  const faults = Object.entries(r.faults)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const rows = SOURCE_KINDS.filter((k) => r.kinds[k]).map((k) => {
    const x = r.kinds[k]!;
    return `  ${k.padEnd(8)} accepted ${String(x.accepted).padStart(8)}  delivered once ${String(x.delivered - x.duplicated).padStart(8)}  lost ${String(x.lost).padStart(6)}  duplicated after dedup ${String(x.duplicated).padStart(5)}  batch lines rewritten ${x.rewrittenLines}${x.lostSample.length ? `  lost ids e.g. ${x.lostSample.join(',')}` : ''}`;
  });
  return [
    `chaos seed ${r.seed}: ${(r.faultMs / 1000).toFixed(0)} s of faults: ${faults || 'none'}`,
    ...r.skipped.map((s) => `  skipped ${s}`),
    ...rows,
    ...(Object.keys(r.queueDrops).length
      ? [
          `  dropped and counted by the queue: ${Object.entries(r.queueDrops)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')}`,
        ]
      : []),
    `  restarts: agent ${r.restarts.agent}, receiver ${r.restarts.receiver}, broker ${r.restarts.broker}; exits on their own: agent ${r.crashes.agent}, receiver ${r.crashes.receiver}; crash loops ${r.crashLoops}; stalls ${r.stalls}; torn output lines ${r.tornLines}`,
  ].join('\n');
}

/** Anything lost or duplicated fails the run. */
export function chaosFailed(r: ChaosResult): boolean {
  return Object.values(r.kinds).some((k) => k.lost > 0 || k.duplicated > 0);
}

/**
 * Self-update on the device, timed with the real executable run as the generated unit says by the stand-in
 * for systemd (test/helpers/unit-supervisor.ts), all on loopback:
 *
 *   node scripts/bench/self-update.ts [--runs 3]
 *
 * - apply → commit: from beginTrial (the release already staged) through the restart, the guard, the new
 *   release's start and its health gate (embedded broker, receiver, canary acknowledged) to its commit in the
 *   state file;
 * - bad start → previous running and reported: from the first start of a release that exits at once
 *   (/usr/bin/false, staged as a real ELF) to the committed release ready again, the failure written to the
 *   state file the retained status reads (3 starts, RestartSec=1);
 * - the same for a release that cannot reach its broker (trial deadline 6 s).
 * Prints each run and the medians. Staging (copy + SHA-256 + fsync of the 116 MB executable) is timed apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtExecutable } from '../../test/helpers/executable.ts';
import { type UnitEvent, UnitSupervisor } from '../../test/helpers/unit-supervisor.ts';
import { installLayout, type Layout, writeConfig } from '../../test/helpers/update-layout.ts';
import { numberArg, parseArgs } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const runs = numberArg(args, 'runs', 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function once(kind: 'good' | 'exits' | 'no-broker'): Promise<{ stageMs: number; ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-bench-update-'));
  try {
    const layout: Layout = installLayout(dir);
    const s0 = performance.now();
    layout.store.stageFile('1.1.0', kind === 'exits' ? '/usr/bin/false' : layout.executable, 2);
    const stageMs = performance.now() - s0;
    if (kind === 'no-broker') writeConfig(layout.configPath, 'no-broker');
    const t0 = Date.now();
    layout.store.beginTrial('1.1.0', kind === 'good' ? 60_000 : 6_000);
    const unit = new UnitSupervisor(layout.unitPath, layout.logPath, { EDGE_AGENT_NATIVE_CACHE: join(dir, 'native') });
    await unit.start();
    try {
      if (kind === 'good') {
        await unit.waitFor(() => layout.store.state().committed === '1.1.0', 'commit');
        return { stageMs, ms: Date.now() - t0 };
      }
      const back = () => unit.events.find((e): e is Extract<UnitEvent, { type: 'ready' }> => e.type === 'ready' && e.release === '1.0.0');
      await unit.waitFor(() => layout.store.state().last_result?.outcome === 'failed' && back() !== undefined, 'rollback');
      const firstBad = unit.events.find((e) => e.type === 'started' && e.release === '1.1.0')!;
      return { stageMs, ms: back()!.at - firstBad.at };
    } finally {
      await unit.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

builtExecutable('linux-x64');
for (const [kind, label] of [
  ['good', 'apply → commit (healthy release)'],
  ['exits', 'bad start → previous running and reported (exits at once)'],
  ['no-broker', 'bad start → previous running and reported (broker unreachable, deadline 6 s)'],
] as const) {
  const ms: number[] = [];
  const stage: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await once(kind);
    ms.push(r.ms);
    stage.push(r.stageMs);
    process.stdout.write(`${label}: run ${i + 1}: ${(r.ms / 1000).toFixed(2)} s (staging ${(r.stageMs / 1000).toFixed(2)} s)\n`);
  }
  process.stdout.write(`${label}: median ${(median(ms) / 1000).toFixed(2)} s over ${runs} runs; staging median ${(median(stage) / 1000).toFixed(2)} s\n`);
}

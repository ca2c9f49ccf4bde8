/**
 * The disk's fsync latency right now: 1000 appends of 8 KiB, each followed by fdatasync, in the directory
 * the queues use. Every figure that waits for a commit moves with this, and on a shared virtual disk it
 * changes over minutes, so run.ts takes it before and after the measurements. Prints one JSON line.
 *
 *   node scripts/bench/fsync-worker.ts [--dir DIR] [--count 1000]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numberArg, parseArgs, report } from './proc.ts';

const args = parseArgs(process.argv.slice(2));
const count = numberArg(args, 'count', 1000);
const dir = mkdtempSync(join(args.get('dir') ?? tmpdir(), 'edge-bench-fsync-'));
const block = Buffer.alloc(8192, 0x5a);
const ms: number[] = [];
try {
  const fd = openSync(join(dir, 'probe'), 'a');
  try {
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      ms.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
ms.sort((a, b) => a - b);
const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!;
report({
  kind: 'fsync',
  count,
  p50: at(0.5),
  p90: at(0.9),
  p99: at(0.99),
  mean: ms.reduce((a, b) => a + b, 0) / ms.length,
  perSecond: 1000 / (ms.reduce((a, b) => a + b, 0) / ms.length),
});

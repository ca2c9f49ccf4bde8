import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { AgentRecord } from '../../agent/domain/record.ts';

/** `edge-agent queue …` as a child process; resolves with its exit code and output (the caller's loop keeps running). */
export function queueCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['agent/cli/main.ts', 'queue', ...args], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A digest of a queue file and its WAL: equal before and after means the command wrote nothing. */
export function fileDigest(path: string): string {
  const hash = createHash('sha256');
  for (const f of [path, `${path}-wal`]) if (existsSync(f)) hash.update(readFileSync(f));
  return hash.digest('hex');
}

/** Realistic sensor records: per-record timestamps, noisy floats, many sensor ids. */
export function sensorRecords(start: number, count: number): AgentRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const n = start + i;
    return {
      n,
      ts: 1_780_000_000_000 + n * 137,
      sensor: `sensor-${(n * 7919) % 500}`,
      temp: 20 + Math.sin(n) * 5 + ((n * 16807) % 1000) / 1e4,
      hum: 40 + Math.cos(n / 3) * 10,
      ok: n % 13 !== 0,
    };
  });
}

/** A stable key for a record, for multiset comparisons. */
export function recordKey(r: AgentRecord): string {
  return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v));
}

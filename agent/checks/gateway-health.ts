/**
 * What `edge-agent check` looks at on the gateway itself besides the config: the queue file's integrity
 * (`PRAGMA quick_check` on a read-only connection, so it may run beside the agent), the quarantined files
 * recovery left, the clock, and the free space under data_dir.
 */
import { existsSync, statfsSync } from 'node:fs';
import { checkWalHeader } from '../queue/recovery.ts';
import { quarantinedBeside } from '../queue/tool-inspect.ts';
import { openDatabase } from '../util/sqlite.ts';
import type { CheckLine } from './reachability.ts';

/** No gateway's clock may honestly read earlier than this build's release (a clock reset to 1970 or 2000). */
const EARLIEST_SANE = Date.parse('2026-01-01T00:00:00Z');
/** Ahead of the newest record the queue committed by more than this: the clock went back. */
const CLOCK_BACK_SLACK_MS = 60_000;

export function queueIntegrity(path: string): CheckLine[] {
  if (!existsSync(path)) return [{ check: 'queue', status: 'ok', message: `${path} does not exist yet (created at the first run)` }];
  const lines: CheckLine[] = [];
  const wal = checkWalHeader(path);
  if (wal) lines.push({ check: 'queue', status: 'fail', message: `${path}: ${wal}; the next start quarantines it (edge-agent queue salvage reads it)` });
  try {
    const db = openDatabase(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 2000');
      const result = db.pragma('quick_check', { simple: true }) as string;
      if (result === 'ok') {
        const records = db.prepare('SELECT coalesce(sum(count), 0) FROM chunks').pluck().get() as number;
        lines.push({ check: 'queue', status: 'ok', message: `${path}: quick_check ok, ${records} records queued` });
      } else {
        lines.push({
          check: 'queue',
          status: 'fail',
          message: `${path}: quick_check found damage (${result}); restart the agent to quarantine and salvage it`,
        });
      }
    } finally {
      db.close();
    }
  } catch (err) {
    lines.push({ check: 'queue', status: 'fail', message: `${path}: cannot be read (${(err as Error).message}); the next start quarantines it` });
  }
  for (const q of quarantinedBeside(path)) {
    lines.push({
      check: 'queue',
      status: 'warn',
      message: `quarantined file ${q.path} (${q.bytes} bytes): read it with edge-agent queue salvage, then remove it`,
    });
  }
  return lines;
}

/** Newest commit time in the queue (ms), to tell a clock that went back. */
function newestCommit(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const db = openDatabase(path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT max(created) FROM chunks').pluck().get() as number | null) ?? undefined;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

/** systemd-timesyncd's mark, or `undefined` when this system does not say. */
function synchronised(): boolean | undefined {
  if (existsSync('/run/systemd/timesync/synchronized')) return true;
  // timesyncd runs but has not synchronised yet: its state directory exists without the mark.
  if (existsSync('/run/systemd/timesync')) return false;
  return undefined;
}

export function clockSanity(queuePath: string, now: number): CheckLine[] {
  const iso = new Date(now).toISOString();
  if (now < EARLIEST_SANE)
    return [{ check: 'clock', status: 'fail', message: `${iso} is before this build existed: the clock was reset (set it, or enable NTP)` }];
  const newest = newestCommit(queuePath);
  if (newest !== undefined && newest > now + CLOCK_BACK_SLACK_MS) {
    return [
      { check: 'clock', status: 'warn', message: `${iso} is ${Math.round((newest - now) / 1000)} s behind the newest queued record: the clock went back` },
    ];
  }
  const synced = synchronised();
  if (synced === false) return [{ check: 'clock', status: 'warn', message: `${iso}; not synchronised by NTP` }];
  return [{ check: 'clock', status: 'ok', message: `${iso}${synced ? ', NTP synchronised' : ''}` }];
}

export function diskSpace(dataDir: string, minFree: number, queueMax: number): CheckLine[] {
  let free: number;
  let total: number;
  try {
    const s = statfsSync(existsSync(dataDir) ? dataDir : '.');
    free = s.bavail * s.bsize;
    total = s.blocks * s.bsize;
  } catch (err) {
    return [{ check: 'disk', status: 'fail', message: `${dataDir}: ${(err as Error).message}` }];
  }
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
  const text = `${mib(free)} free of ${mib(total)} under ${dataDir}`;
  if (free < minFree)
    return [{ check: 'disk', status: 'fail', message: `${text}: below queue.min_free_disk (${mib(minFree)}); the queue has stopped growing` }];
  if (free < queueMax)
    return [{ check: 'disk', status: 'warn', message: `${text}: less than queue.max_bytes (${mib(queueMax)}); the disk fills before the queue's bound` }];
  return [{ check: 'disk', status: 'ok', message: text }];
}

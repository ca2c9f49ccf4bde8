import { readFile, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';

/** Reads a small text file; undefined when it is missing or unreadable (devices come and go). */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

export async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return [];
  }
}

export function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(value) ? value : undefined;
}

/** /proc/stat "cpu" line: jiffies per state. */
export function parseCpuTimes(stat: string): { busy: number; total: number; iowait: number } | undefined {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 4 || f.some((v) => !Number.isFinite(v))) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const idleAll = idle + iowait;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idleAll, iowait };
}

/** /proc/meminfo in kB → bytes for the fields we report. */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]) * (line.includes('kB') ? 1024 : 1);
  }
  return out;
}

/** /proc/net/dev: per interface counters. */
export function parseNetDev(
  text: string,
): { iface: string; rx_bytes: number; rx_packets: number; rx_errors: number; tx_bytes: number; tx_packets: number; tx_errors: number }[] {
  const out = [];
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((v) => !Number.isFinite(v))) continue;
    out.push({ iface: m[1]!.trim(), rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]! });
  }
  return out;
}

export async function diskUsage(mount: string): Promise<{ total: number; free: number; available: number } | undefined> {
  try {
    const s = await statfs(mount);
    return { total: s.blocks * s.bsize, free: s.bfree * s.bsize, available: s.bavail * s.bsize };
  } catch {
    return undefined;
  }
}

export { join };

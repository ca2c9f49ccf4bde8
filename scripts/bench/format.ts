/** Number formatting and Markdown tables for the bench's report. */
export const MiB = 1024 * 1024;
export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtK = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(0)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
export const fmtMiB = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
export const fmtMiBn = (n: number) => (n / MiB).toFixed(1);
export const fmtB = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
export const fmtMs = (n: number) => (n >= 10 ? n.toFixed(0) : n.toFixed(2));

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** "median (min–max)" for several runs, the value alone for one, '–' for none; `unit` once at the end. */
export function spread(values: number[], fmt: (n: number) => string, unit = ''): string {
  if (values.length === 0) return '–';
  if (values.length === 1) return `${fmt(values[0]!)}${unit}`;
  return `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})${unit}`;
}

/** The median alone ('–' for none). */
export function mid(values: number[], fmt: (n: number) => string, unit = ''): string {
  return values.length === 0 ? '–' : `${fmt(median(values))}${unit}`;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

/**
 * The Prometheus text exposition format (version 0.0.4) of the telemetry registry: a plain walk over
 * `collect()`. Counters and gauges are one line per series; a histogram is its cumulative `_bucket` lines
 * (with `le`, ending at +Inf), `_sum` and `_count`. Label values and help text are escaped as the format asks.
 */
import type { HistogramSample, Labels, MetricSnapshot, Sample } from '../telemetry/registry.ts';

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function exposition(metrics: readonly MetricSnapshot[]): string {
  const out: string[] = [];
  for (const m of metrics) {
    out.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    // A counter or histogram without labels that nothing counted yet is 0, not absent: rate() and alerts
    // on it work from the first scrape.
    const unlabelledZero = m.samples.length === 0 && m.labelNames.length === 0 && m.type !== 'gauge';
    if (m.type === 'histogram') {
      const buckets = m.buckets ?? [];
      const zero: HistogramSample = { labels: {}, counts: new Array<number>(buckets.length + 1).fill(0), sum: 0, count: 0 };
      for (const s of unlabelledZero ? [zero] : (m.samples as HistogramSample[])) {
        for (const [i, le] of buckets.entries()) out.push(`${m.name}_bucket${labels(s.labels, formatNumber(le))} ${formatNumber(s.counts[i] ?? 0)}`);
        out.push(`${m.name}_bucket${labels(s.labels, '+Inf')} ${formatNumber(s.counts[buckets.length] ?? s.count)}`);
        out.push(`${m.name}_sum${labels(s.labels)} ${formatNumber(s.sum)}`, `${m.name}_count${labels(s.labels)} ${formatNumber(s.count)}`);
      }
    } else {
      for (const s of unlabelledZero ? [{ labels: {}, value: 0 }] : (m.samples as Sample[])) out.push(`${m.name}${labels(s.labels)} ${formatNumber(s.value)}`);
    }
  }
  out.push('');
  return out.join('\n');
}

function labels(set: Labels, le?: string): string {
  const parts = Object.entries(set).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

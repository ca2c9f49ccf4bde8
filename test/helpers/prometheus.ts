/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for the tests: every line must be a
 * HELP, a TYPE or a sample of the metric its TYPE announced (histograms: `_bucket` with `le`, `_sum`,
 * `_count`), label values escaped as the format says, each series once, buckets cumulative and ending at
 * +Inf equal to `_count`. Anything else throws with the line number, so a malformed exposition fails a test.
 */
export interface ParsedMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"\s*(,|$)/y;

export function parsePrometheus(text: string): Map<string, ParsedMetric> {
  const metrics = new Map<string, ParsedMetric>();
  const seen = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  const lines = text.split('\n').slice(0, -1);
  let current: ParsedMetric | undefined;
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line.startsWith('# HELP ')) {
      const m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
      if (!m) throw new Error(`bad HELP, ${where}`);
      if (metrics.has(m[1]!)) throw new Error(`metric declared twice, ${where}`);
      current = { name: m[1]!, type: 'untyped', help: m[2]!, samples: [] };
      metrics.set(m[1]!, current);
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
      if (!m || !current || m[1] !== current.name) throw new Error(`TYPE without its HELP, ${where}`);
      current.type = m[2] as ParsedMetric['type'];
      return;
    }
    if (line.startsWith('#') || line === '') throw new Error(`unexpected line, ${where}`);
    const m = SAMPLE.exec(line);
    if (!m || !current) throw new Error(`bad sample, ${where}`);
    const [, name, labelText = '', valueText] = m;
    const allowed = current.type === 'histogram' ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`] : [current.name];
    if (!allowed.includes(name!)) throw new Error(`sample of ${name} under metric ${current.name}, ${where}`);
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < labelText.length) {
      const at = LABEL.lastIndex;
      const l = LABEL.exec(labelText);
      if (!l || l.index !== at) throw new Error(`bad labels, ${where}`);
      if (l[1]! in labels) throw new Error(`label ${l[1]} twice, ${where}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? Number.NaN : Number(valueText);
    if (!/^(\+Inf|-Inf|NaN|-?\d+(\.\d+)?([eE][-+]?\d+)?)$/.test(valueText!)) throw new Error(`bad value, ${where}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`series twice, ${where}`);
    seen.add(key);
    if (current.type === 'counter' && !(value >= 0)) throw new Error(`negative counter, ${where}`);
    current.samples.push({ name: name!, labels, value });
  });
  for (const m of metrics.values()) if (m.type === 'histogram') checkHistogram(m);
  return metrics;
}

function checkHistogram(m: ParsedMetric): void {
  const groups = new Map<string, { le: number; value: number }[]>();
  const counts = new Map<string, number>();
  for (const s of m.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${m.name}: bucket without le`);
      const list = groups.get(key) ?? [];
      list.push({ le: le === '+Inf' ? Infinity : Number(le), value: s.value });
      groups.set(key, list);
    } else if (s.name.endsWith('_count')) counts.set(key, s.value);
  }
  for (const [key, list] of groups) {
    for (let i = 1; i < list.length; i++) {
      if (!(list[i]!.le > list[i - 1]!.le) || list[i]!.value < list[i - 1]!.value) throw new Error(`${m.name}: buckets not cumulative`);
    }
    const last = list[list.length - 1]!;
    if (last.le !== Infinity || last.value !== counts.get(key)) throw new Error(`${m.name}: +Inf bucket missing or not equal to _count`);
  }
}

/** The value of one series (labels must match exactly the given ones, others ignored when `partial`). */
export function sampleValue(metrics: Map<string, ParsedMetric>, name: string, labels: Record<string, string> = {}, sampleName = name): number | undefined {
  const m = metrics.get(name);
  const s = m?.samples.find((x) => x.name === sampleName && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

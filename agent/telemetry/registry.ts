/**
 * The one registry every part of the agent reports into: counters, gauges and histograms by name and labels.
 * Status, the retained MQTT status, metrics exposition and the status page all read it; no component keeps a
 * counter of its own that the operator cannot see.
 *
 * Why not prom-client itself: its reads are asynchronous (`await metric.get()`), while status is read
 * synchronously from hot paths and tests; it keeps a process-global default registry (an agent that rebuilds
 * its pipeline on a new config would meet "already registered"); and it pulls a tracing API package onto
 * every gateway. This layer is shaped like it (name, help, label names; inc/set/observe; Prometheus naming), so
 * exposition in the text format is a plain walk over `collect()`.
 */

import { RecordTap } from './record-tap.ts';

export type Labels = Readonly<Record<string, string>>;
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

export interface HistogramSample {
  readonly labels: Labels;
  /** Cumulative counts per upper bound, in the order of `buckets`, then +Inf. */
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export interface MetricSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  readonly samples: readonly (Sample | HistogramSample)[];
  readonly buckets?: readonly number[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Series of one metric, keyed by its label values in label-name order. */
abstract class Metric<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: Labels; state: S }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  abstract readonly type: MetricType;

  protected key(labels: Labels | undefined): string {
    if (this.labelNames.length === 0) return '';
    let key = '';
    for (const name of this.labelNames) {
      const value = labels?.[name];
      if (value === undefined) throw new TypeError(`metric ${this.name}: label ${name} is missing`);
      key += `${value}\u0000`;
    }
    return key;
  }

  protected entry(labels: Labels | undefined, initial: () => S): { labels: Labels; state: S } {
    const key = this.key(labels);
    let entry = this.series.get(key);
    if (!entry) {
      const own: Record<string, string> = {};
      for (const name of this.labelNames) own[name] = labels![name]!;
      entry = { labels: own, state: initial() };
      this.series.set(key, entry);
    }
    return entry;
  }

  /** Forgets every series whose labels include all of `match` (a source that was removed, say). */
  remove(match: Labels): void {
    for (const [key, entry] of this.series) {
      if (Object.entries(match).every(([k, v]) => entry.labels[k] === v)) this.series.delete(key);
    }
  }
}

/**
 * A value that only goes up (records committed, batches sent, drops by reason). Most are counted as things
 * happen (`inc`); a total whose truth is kept durably elsewhere (the queue's drop counts live in the queue file,
 * so they survive restarts) is read from its owner at collection time through `collect`.
 */
export class Counter extends Metric<{ value: number }> {
  readonly type = 'counter';
  collectFn: ((total: (labels: Labels | undefined, value: number) => void) => void) | undefined;

  constructor(name: string, help: string, labelNames: readonly string[], collect?: (total: (labels: Labels | undefined, value: number) => void) => void) {
    super(name, help, labelNames);
    this.collectFn = collect;
  }

  private collect(): void {
    this.collectFn?.((labels, value) => {
      this.entry(labels, () => ({ value: 0 })).state.value = value;
    });
  }

  inc(labels?: Labels, n = 1): void {
    if (!(n >= 0)) throw new RangeError(`counter ${this.name} cannot go down (inc by ${n})`);
    this.entry(labels, () => ({ value: 0 })).state.value += n;
  }

  value(labels?: Labels): number {
    this.collect();
    return this.series.get(this.key(labels))?.state.value ?? 0;
  }

  /** Every series' value, keyed by one label's value (for status views: drops by reason, say). */
  by(label: string, match: Labels = {}): Record<string, number> {
    this.collect();
    const out: Record<string, number> = {};
    for (const { labels, state } of this.series.values()) {
      if (Object.entries(match).every(([k, v]) => labels[k] === v)) out[labels[label]!] = (out[labels[label]!] ?? 0) + state.value;
    }
    return out;
  }

  samples(): Sample[] {
    this.collect();
    return [...this.series.values()].map(({ labels, state }) => ({ labels, value: state.value }));
  }
}

/** A value that goes up and down, set by its owner or read at collection time from the truth (queue depth). */
export class Gauge extends Metric<{ value: number }> {
  readonly type = 'gauge';
  collectFn: ((gauge: Gauge) => void) | undefined;

  constructor(name: string, help: string, labelNames: readonly string[], collect?: (gauge: Gauge) => void) {
    super(name, help, labelNames);
    this.collectFn = collect;
  }

  set(labels: Labels | undefined, value: number): void {
    this.entry(labels, () => ({ value: 0 })).state.value = value;
  }

  inc(labels?: Labels, n = 1): void {
    this.entry(labels, () => ({ value: 0 })).state.value += n;
  }

  value(labels?: Labels): number {
    this.collectFn?.(this);
    return this.series.get(this.key(labels))?.state.value ?? 0;
  }

  samples(): Sample[] {
    this.collectFn?.(this);
    return [...this.series.values()].map(({ labels, state }) => ({ labels, value: state.value }));
  }
}

/** A distribution (commit latency, batch size) in cumulative buckets, as Prometheus histograms are. */
export class Histogram extends Metric<{ counts: number[]; sum: number; count: number }> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) {
      throw new RangeError(`histogram ${name}: buckets must be increasing and not empty`);
    }
    this.buckets = buckets;
  }

  observe(labels: Labels | undefined, value: number): void {
    const { state } = this.entry(labels, () => ({ counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]!) i++;
    state.counts[i]!++;
    state.sum += value;
    state.count++;
  }

  samples(): HistogramSample[] {
    return [...this.series.values()].map(({ labels, state }) => {
      let running = 0;
      const counts = state.counts.map((c) => (running += c));
      return { labels, counts, sum: state.sum, count: state.count };
    });
  }
}

type AnyMetric = Counter | Gauge | Histogram;

/**
 * The registry. `counter`, `gauge` and `histogram` return the existing metric of that name when it was
 * already declared the same way, so a component rebuilt after a config change reports into the same series
 * (and a collect callback given again replaces the old one: the newest owner is read); a second declaration
 * with another type or other labels is a programming error and throws.
 */
export class Telemetry {
  private readonly metrics = new Map<string, AnyMetric>();
  /** Committed records, for a live tap (`edge-agent tap`): carried here because every part of one agent shares this registry. */
  readonly tap = new RecordTap();

  counter(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: (total: (labels: Labels | undefined, value: number) => void) => void,
  ): Counter {
    const counter = this.register(name, 'counter', labelNames, () => new Counter(name, help, labelNames, collect));
    if (collect) counter.collectFn = collect;
    return counter;
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: (gauge: Gauge) => void): Gauge {
    const gauge = this.register(name, 'gauge', labelNames, () => new Gauge(name, help, labelNames, collect));
    if (collect) gauge.collectFn = collect;
    return gauge;
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.register(name, 'histogram', labelNames, () => new Histogram(name, help, labelNames, buckets));
  }

  get(name: string): AnyMetric | undefined {
    return this.metrics.get(name);
  }

  /** Every metric with its current samples (gauges read from their owners now), in declaration order. */
  collect(): MetricSnapshot[] {
    return [...this.metrics.values()].map((m) => ({
      name: m.name,
      help: m.help,
      type: m.type,
      labelNames: m.labelNames,
      samples: m.samples(),
      ...(m instanceof Histogram ? { buckets: m.buckets } : {}),
    }));
  }

  private register<M extends AnyMetric>(name: string, type: MetricType, labelNames: readonly string[], make: () => M): M {
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.type !== type || existing.labelNames.join() !== labelNames.join()) {
        throw new TypeError(`metric ${name} is already declared as a ${existing.type} with labels [${existing.labelNames.join(', ')}]`);
      }
      return existing as M;
    }
    if (!NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) if (!LABEL.test(label)) throw new TypeError(`metric ${name}: invalid label name ${JSON.stringify(label)}`);
    const metric = make();
    this.metrics.set(name, metric);
    return metric;
  }
}

/**
 * The status page's last hour: one point per `history_interval` in a fixed ring of Float64Arrays (361 points
 * of 5 numbers at the default 10 s: 14 KB), allocated once. What a point holds is cumulative or a level, so
 * rates are differences of neighbours and a missed tick costs nothing but resolution.
 */
export const HISTORY_FIELDS = ['time', 'queueRecords', 'queueBytes', 'recordsIn', 'recordsOut', 'oldestAge'] as const;
export type HistoryPoint = Record<(typeof HISTORY_FIELDS)[number], number>;

/** The page's plots: time (s since the epoch), depth, rates per second, oldest age (s). */
export interface HistorySeries {
  time: number[];
  queueRecords: number[];
  queueBytes: number[];
  inRate: number[];
  outRate: number[];
  oldestAge: number[];
}

export class History {
  private readonly columns: Float64Array[];
  private readonly capacity: number;
  private next = 0;
  private size = 0;

  constructor(intervalMs: number, spanMs = 3_600_000) {
    this.capacity = Math.ceil(spanMs / intervalMs) + 1;
    this.columns = HISTORY_FIELDS.map(() => new Float64Array(this.capacity));
  }

  add(point: HistoryPoint): void {
    HISTORY_FIELDS.forEach((field, i) => {
      this.columns[i]![this.next] = point[field];
    });
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Oldest first; rates from the difference with the point before (the first point's rate is 0). */
  series(): HistorySeries {
    const out: HistorySeries = { time: [], queueRecords: [], queueBytes: [], inRate: [], outRate: [], oldestAge: [] };
    const start = (this.next - this.size + this.capacity) % this.capacity;
    const col = (field: (typeof HISTORY_FIELDS)[number], at: number) => this.columns[HISTORY_FIELDS.indexOf(field)]![at]!;
    for (let k = 0; k < this.size; k++) {
      const at = (start + k) % this.capacity;
      const before = (at - 1 + this.capacity) % this.capacity;
      const seconds = k === 0 ? 0 : (col('time', at) - col('time', before)) / 1000;
      const rate = (field: 'recordsIn' | 'recordsOut') => (seconds > 0 ? Math.max(0, col(field, at) - col(field, before)) / seconds : 0);
      out.time.push(col('time', at) / 1000);
      out.queueRecords.push(col('queueRecords', at));
      out.queueBytes.push(col('queueBytes', at));
      out.inRate.push(rate('recordsIn'));
      out.outRate.push(rate('recordsOut'));
      out.oldestAge.push(col('oldestAge', at));
    }
    return out;
  }
}

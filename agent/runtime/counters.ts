import type { Counters } from '../sdk/index.ts';

/** Named counters of one component instance. */
export class CounterSet implements Counters {
  private readonly values = new Map<string, number>();

  add(name: string, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

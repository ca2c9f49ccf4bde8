/**
 * Named counters of one component instance (a source, the sink), as drivers see them: `add('bad_frames')`.
 * They live in the telemetry registry as one counter per kind of component, labelled by instance and event,
 * so status and metrics read the same numbers.
 */
import type { Counter, Telemetry } from './registry.ts';

export interface Counters {
  add(name: string, n?: number): void;
}

export class ComponentCounters implements Counters {
  private readonly counter: Counter;
  private readonly label: string;
  private readonly instance: string;

  /** `kind` names the registry counter (`edge_<kind>_events_total`) and its instance label (`source="gps"`). */
  constructor(telemetry: Telemetry, kind: 'source' | 'sink' | 'receiver_input', instance: string) {
    this.counter = telemetry.counter(`edge_${kind}_events_total`, `Events counted by each ${kind.replace('_', ' ')}, by name`, [kind, 'event']);
    this.label = kind;
    this.instance = instance;
  }

  add(name: string, n = 1): void {
    this.counter.inc({ [this.label]: this.instance, event: name }, n);
  }

  snapshot(): Record<string, number> {
    return this.counter.by('event', { [this.label]: this.instance });
  }
}

/**
 * Gates: each reads one figure from the machine and closes at its `hold` threshold, opening again only past
 * `resume`, so a value wandering inside the band between them never makes the gate flap. A closed gate holds
 * the classes it names and says why, in words an operator can act on.
 */
import type { GovernorConfig, PriorityClass } from '../config/governor-schema.ts';
import type { MachineProbes } from './probes.ts';

export interface GateState {
  /** Short name, the `reason` label of edge_forwarding_held. */
  readonly reason: string;
  readonly name: string;
  readonly open: boolean;
  /** Why it is closed (or last closed), with the figure read. */
  readonly detail: string;
  readonly holds: readonly PriorityClass[];
}

export interface Gate {
  readonly name: string;
  readonly reason: string;
  readonly holds: readonly PriorityClass[];
  /** Reads the machine and updates the state. */
  check(): GateState;
}

/** A figure against a hold threshold and a resume threshold; `higherIsWorse` says which side holds. */
export class ThresholdGate implements Gate {
  readonly name: string;
  readonly reason: string;
  readonly holds: readonly PriorityClass[];
  private open = true;
  private detail = 'no reading yet';
  private readonly read: () => number | undefined;
  private readonly limits: { hold: number; resume: number; higherIsWorse: boolean; unit: string };

  constructor(
    name: string,
    reason: string,
    holds: readonly PriorityClass[],
    read: () => number | undefined,
    limits: { hold: number; resume: number; higherIsWorse: boolean; unit: string },
  ) {
    this.name = name;
    this.reason = reason;
    this.holds = holds;
    this.read = read;
    this.limits = limits;
  }

  check(): GateState {
    const value = this.read();
    const { hold, resume, higherIsWorse, unit } = this.limits;
    if (value === undefined) {
      this.open = true;
      this.detail = `${this.name}: nothing to read; open`;
    } else {
      const shown = value === Number.POSITIVE_INFINITY ? 'exempt (mains present)' : `${Math.round(value * 100) / 100} ${unit}`;
      const beyondHold = higherIsWorse ? value >= hold : value <= hold;
      const pastResume = higherIsWorse ? value < resume : value > resume;
      if (this.open && beyondHold) this.open = false;
      else if (!this.open && pastResume) this.open = true;
      this.detail = this.open
        ? `${this.name} ${shown}, ${higherIsWorse ? 'below' : 'above'} hold ${hold}`
        : `${this.name} ${shown}: held until ${higherIsWorse ? 'below' : 'above'} ${resume}`;
    }
    return { reason: this.reason, name: this.name, open: this.open, detail: this.detail, holds: this.holds };
  }
}

/** Closed while the gateway runs on battery (no mains supply online). No band: the supply's state is discrete. */
export class OnBatteryGate implements Gate {
  readonly name = 'on_battery';
  readonly reason = 'power';
  readonly holds: readonly PriorityClass[];
  private readonly probes: MachineProbes;

  constructor(probes: MachineProbes, holds: readonly PriorityClass[]) {
    this.probes = probes;
    this.holds = holds;
  }

  check(): GateState {
    const power = this.probes.power();
    const open = !power?.discharging;
    const detail =
      power === undefined ? 'on_battery: no power supply to read; open' : open ? 'on_battery: mains present' : 'on_battery: running on battery, no mains';
    return { reason: this.reason, name: this.name, open, detail, holds: this.holds };
  }
}

/** Battery capacity while discharging; with mains online the battery charges, and the gate is open. */
function batteryReading(probes: MachineProbes): number | undefined {
  const power = probes.power();
  if (power === undefined) return undefined;
  return power.discharging ? power.capacity : Number.POSITIVE_INFINITY;
}

/** Open while the centre's receiver announces it listens; closed until it has said so. */
export class CentreGate implements Gate {
  readonly name = 'centre';
  readonly reason = 'centre';
  readonly holds: readonly PriorityClass[];
  private online = false;
  private heard = false;

  constructor(holds: readonly PriorityClass[]) {
    this.holds = holds;
  }

  set(online: boolean): void {
    this.online = online;
    this.heard = true;
  }

  check(): GateState {
    const detail = this.online ? 'centre: the receiver listens' : this.heard ? 'centre: the receiver is offline' : 'centre: no word from the receiver yet';
    return { reason: this.reason, name: this.name, open: this.online, detail, holds: this.holds };
  }
}

/** The gates the config asks for. */
export function buildGates(config: GovernorConfig, probes: MachineProbes): Gate[] {
  const g = config.gates;
  const gates: Gate[] = [];
  if (g.cpu_load) {
    gates.push(new ThresholdGate('cpu_load', 'cpu', g.cpu_load.holds, () => probes.loadPerCore(), { ...g.cpu_load, higherIsWorse: true, unit: 'load/core' }));
  }
  if (g.cpu_pressure) {
    gates.push(
      new ThresholdGate('cpu_pressure', 'cpu', g.cpu_pressure.holds, () => probes.cpuPressure(), {
        ...g.cpu_pressure,
        higherIsWorse: true,
        unit: '% some avg10',
      }),
    );
  }
  if (g.memory) {
    gates.push(
      new ThresholdGate('memory', 'memory', g.memory.holds, () => probes.memoryAvailableMiB(), { ...g.memory, higherIsWorse: false, unit: 'MiB available' }),
    );
  }
  if (g.battery) {
    gates.push(new ThresholdGate('battery', 'power', g.battery.holds, () => batteryReading(probes), { ...g.battery, higherIsWorse: false, unit: '% battery' }));
  }
  if (g.on_battery) gates.push(new OnBatteryGate(probes, g.on_battery.holds));
  if (g.centre) gates.push(new CentreGate(g.centre.holds));
  return gates;
}

import { matchesGlob } from 'node:path';
import type { AgentRecord, PolledSource, SourceContext } from '../../../agent/sdk/index.ts';
import { DeviceFilter } from './filter.ts';
import type { Options, Override, Subsystem } from './options.ts';
import { SensorProblems } from './problems.ts';
import { scanDevices, type DeviceKind, type DeviceResult, type ScanContext } from './scan.ts';
import { hwmon } from './subsystems/hwmon.ts';
import { iio } from './subsystems/iio.ts';
import { powerSupply } from './subsystems/power-supply.ts';
import { thermal } from './subsystems/thermal.ts';
import { w1 } from './subsystems/w1.ts';
import { nodeIo, type SysfsIo } from './sysfs.ts';
import { converterFor, tidy, type Family } from './units.ts';

const KINDS: Record<Subsystem, DeviceKind> = { hwmon, thermal, iio, w1, power_supply: powerSupply };
// Ids are stable, so this only grows past a few hundred when devices keep changing names; then start over.
const OVERRIDE_CACHE_LIMIT = 10_000;

/**
 * Reads every included subsystem once per poll and emits one record per reading, all with the poll's `ts`.
 * Subsystems and devices are read concurrently (1-wire excepted); records come out in a fixed order
 * (subsystem as listed in `include`, then device and channel in natural order) so polls are comparable.
 */
export class SensorsSource implements PolledSource {
  private readonly config: Options;
  private readonly io: SysfsIo;
  private readonly filter: DeviceFilter;
  private readonly subsystems: Subsystem[];
  private readonly overrideCache = new Map<string, Override | undefined>();
  private problems: SensorProblems | undefined;
  /** Directory → id of the devices the previous poll read. */
  private previousDevices: Map<string, string> | undefined;

  constructor(config: Options, io: SysfsIo = nodeIo) {
    this.config = config;
    this.io = io;
    this.filter = new DeviceFilter(config.devices);
    this.subsystems = [...new Set(config.include)];
  }

  async gather(ctx: SourceContext): Promise<void> {
    const problems = (this.problems ??= new SensorProblems(ctx.problems, ctx.counters, ctx.log));
    const ts = Date.now();
    const scan: ScanContext = { io: this.io, problems, sysRoot: this.config.sys_root, signal: ctx.signal, wanted: (id) => this.filter.device(id) };
    const devices = (await Promise.all(this.subsystems.map((s) => scanDevices(scan, KINDS[s])))).flat();

    const records: AgentRecord[] = [];
    for (const device of devices) {
      for (const r of device.readings) {
        if (!this.filter.sensor(device.id, r.sensor)) continue;
        const { unit, value } = this.output(r.family, r.sensor, r.value);
        const record: AgentRecord = { ts, family: r.family, sensor: r.sensor, value, unit };
        if (r.status !== undefined) record.status = r.status;
        records.push(record);
      }
    }
    this.trackDevices(devices, problems, ctx);
    problems.endPoll();
    if (records.length > 0) await ctx.emit(records);
  }

  /** The declared unit, then the sensor's own calibration. */
  private output(family: Family, sensor: string, base: number): { unit: string; value: number } {
    const { unit, convert } = converterFor(family, this.config.units);
    const override = this.overrideFor(family, sensor);
    if (!override) return { unit, value: tidy(convert(base)) };
    return { unit: override.unit ?? unit, value: tidy(convert(base) * override.scale + override.offset) };
  }

  private overrideFor(family: Family, sensor: string): Override | undefined {
    const key = `${family}\u0000${sensor}`;
    if (this.overrideCache.has(key)) return this.overrideCache.get(key);
    const found = this.config.overrides.find((o) => (o.family === undefined || o.family === family) && matchesGlob(sensor, o.sensor));
    if (this.overrideCache.size >= OVERRIDE_CACHE_LIMIT) this.overrideCache.clear();
    this.overrideCache.set(key, found);
    return found;
  }

  /**
   * A device the previous poll read that is no longer listed is counted as lost, unless it is back under
   * another directory number. One that vanished in the middle of a poll was counted then: its directory
   * was listed, so it is not counted again. A device that appears is read from its first poll on.
   */
  private trackDevices(devices: DeviceResult[], problems: SensorProblems, ctx: SourceContext): void {
    const listedDirs = new Set(devices.map((d) => d.dir));
    const present = devices.filter((d) => !d.vanished);
    const presentIds = new Set(present.map((d) => d.id));
    const previous = this.previousDevices;
    if (previous) {
      const previousIds = new Set(previous.values());
      for (const [dir, id] of previous) if (!listedDirs.has(dir) && !presentIds.has(id)) problems.report('device_lost', id);
      for (const id of presentIds) if (!previousIds.has(id)) ctx.log.info({ device: id }, 'sensor device appeared');
    }
    this.previousDevices = new Map(present.map((d) => [d.dir, d.id]));
  }
}

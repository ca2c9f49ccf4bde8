import { basename, join } from 'node:path';
import { DeviceFiles } from './device-files.ts';
import type { SensorProblems } from './problems.ts';
import { listDirectory, type SysfsIo } from './sysfs.ts';
import type { Family } from './units.ts';

/** One value as a subsystem reader found it, in its family's base unit. */
export interface Reading {
  family: Family;
  sensor: string;
  value: number;
  /** Battery charge state (`Charging`, `Discharging`…), carried on the capacity record. */
  status?: string;
}

export interface DeviceResult {
  id: string;
  /** The device's directory in sysfs. */
  dir: string;
  readings: Reading[];
  /** The directory went away during this poll (already counted). */
  vanished: boolean;
}

export interface ScanContext {
  readonly io: SysfsIo;
  readonly problems: SensorProblems;
  readonly sysRoot: string;
  /** Stops a slow one-at-a-time scan (1-wire) when the source is stopped. */
  readonly signal: AbortSignal;
  /** The `devices` filter at device level: whether any of this device's sensors may be wanted. */
  wanted(deviceId: string): boolean;
}

export interface DeviceKind {
  /** Prefix of every id (`hwmon`), and the directory listing them, relative to sys_root. */
  readonly prefix: string;
  readonly dir: string;
  readonly entries: RegExp;
  /** 1-wire reads block for a conversion each and the bus serialises them anyway: read one at a time. */
  readonly oneAtATime?: boolean;
  /** The device's name (the part of its id after the prefix) and the directory its attributes are in. */
  open(files: DeviceFiles, entry: string): Promise<{ name: string; files: DeviceFiles }>;
  read(files: DeviceFiles, id: string): Promise<Reading[]>;
}

/**
 * Lists one subsystem's devices, names them, applies the device filter and reads each. Names come from the
 * devices themselves (hwmon `name`, thermal `type`…) because directory numbers follow probe order and change
 * across boots; two devices with the same name are told apart by the hardware address their `device` link
 * points to (an I2C `1-0048`, a PCI `0000:01:00.0`), which does not.
 */
export async function scanDevices(ctx: ScanContext, kind: DeviceKind): Promise<DeviceResult[]> {
  const base = join(ctx.sysRoot, kind.dir);
  const entries = (await listDirectory(ctx.io, base))?.filter((e) => kind.entries.test(e)) ?? [];
  const opened = await Promise.all(
    entries.map(async (entry) => ({ entry, ...(await kind.open(new DeviceFiles(join(base, entry), ctx.io, ctx.problems), entry)) })),
  );
  const ids = await uniqueIds(ctx.io, kind.prefix, opened, base);
  const devices = opened.map((d, i) => ({ ...d, dir: join(base, d.entry), id: ids[i]! }));
  // A device that vanished while being named is reported whatever the filter says: its name, and so its
  // id, may not have been read, and the caller must know its directory was listed.
  const vanished = devices.filter((d) => d.files.vanished).map((d): DeviceResult => ({ id: d.id, dir: d.dir, readings: [], vanished: true }));
  const chosen = devices.filter((d) => !d.files.vanished && ctx.wanted(d.id));

  const readOne = async (d: (typeof chosen)[number]): Promise<DeviceResult> => {
    const readings = await kind.read(d.files, d.id);
    return { id: d.id, dir: d.dir, readings: d.files.vanished ? [] : readings, vanished: d.files.vanished };
  };
  if (!kind.oneAtATime) return [...(await Promise.all(chosen.map(readOne))), ...vanished];
  const results: DeviceResult[] = [];
  for (const d of chosen) {
    if (ctx.signal.aborted) break;
    results.push(await readOne(d));
  }
  return [...results, ...vanished];
}

async function uniqueIds(io: SysfsIo, prefix: string, devices: { entry: string; name: string }[], base: string): Promise<string[]> {
  const count = new Map<string, number>();
  for (const d of devices) count.set(d.name, (count.get(d.name) ?? 0) + 1);
  const ids = await Promise.all(
    devices.map(async (d) => {
      if (count.get(d.name) === 1) return `${prefix}/${d.name}`;
      const address = await io.readlink(join(base, d.entry, 'device')).then(basename, () => d.entry);
      return `${prefix}/${d.name}@${address}`;
    }),
  );
  // Two identical devices behind one parent (rare) share the address too: the directory is all that is left.
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  return ids.map((id, i) => (seen.get(id)! > 1 ? `${prefix}/${devices[i]!.name}@${devices[i]!.entry}` : id));
}

import { join } from 'node:path';
import { DeviceFiles } from '../device-files.ts';
import type { DeviceKind, Reading } from '../scan.ts';
import type { Family } from '../units.ts';

// hwmon sysfs ABI: temp m°C, in mV, fan rpm, power µW, curr mA, humidity m%RH. Factor to the family's base unit.
const CHANNEL_TYPES: Record<string, { family: Family; toBase: number }> = {
  temp: { family: 'temperature', toBase: 1 },
  in: { family: 'voltage', toBase: 1000 },
  fan: { family: 'fan', toBase: 1 },
  power: { family: 'power', toBase: 1 },
  curr: { family: 'current', toBase: 1000 },
  humidity: { family: 'humidity', toBase: 1 },
};
// Meters such as the ACPI power meter only have power*_average; *_input wins when both exist.
const CHANNEL_FILE = /^(temp|in|fan|power|curr|humidity)(\d+)_(input|average)$/;

/** `/sys/class/hwmon/hwmon*`: one reading per `<type><n>_input`, named by its `_label` when there is one. */
export const hwmon: DeviceKind = {
  prefix: 'hwmon',
  dir: 'class/hwmon',
  entries: /^hwmon\d+$/,

  async open(files, entry) {
    const listed = (await files.list()) ?? [];
    if (listed.includes('name')) return { name: (await files.text('name', true))?.trim() || entry, files };
    // Kernels before 3.x (and a few drivers still) keep the attributes in the parent device's directory.
    if (listed.includes('device')) {
      const legacy = new DeviceFiles(join(files.dir, 'device'), files.io, files.problems);
      const name = (await legacy.text('name', false))?.trim();
      if (name) return { name, files: legacy };
    }
    await files.text('name', true); // counts the missing name unless the device is gone
    return { name: entry, files };
  },

  async read(files, id) {
    const listed = new Set((await files.list()) ?? []);
    const channels = new Map<string, { file: string; type: string }>();
    for (const file of listed) {
      const m = CHANNEL_FILE.exec(file);
      if (!m) continue;
      const channel = `${m[1]}${m[2]}`;
      if (m[3] === 'input' || !channels.has(channel)) channels.set(channel, { file, type: m[1]! });
    }
    const readings = await Promise.all(
      [...channels].map(async ([channel, { file, type }]): Promise<Reading | undefined> => {
        const labelFile = `${channel}_label`;
        const [value, label] = await Promise.all([files.number(file, true), listed.has(labelFile) ? files.text(labelFile, true) : undefined]);
        if (value === undefined) return undefined;
        const { family, toBase } = CHANNEL_TYPES[type]!;
        return { family, sensor: `${id}/${label?.trim() || channel}`, value: value * toBase };
      }),
    );
    return readings.filter((r) => r !== undefined);
  },
};

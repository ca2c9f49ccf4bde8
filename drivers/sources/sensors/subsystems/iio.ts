import type { DeviceFiles } from '../device-files.ts';
import type { DeviceKind, Reading } from '../scan.ts';
import type { Family } from '../units.ts';

// IIO sysfs ABI: the unit of a channel type after (raw + offset) × scale, as a factor to the family's base unit.
const CHANNEL_TYPES: Record<string, { family: Family; toBase: number }> = {
  accel: { family: 'acceleration', toBase: 1 }, // m/s²
  anglvel: { family: 'angular_velocity', toBase: 1 }, // rad/s
  magn: { family: 'magnetic_field', toBase: 1 }, // gauss
  temp: { family: 'temperature', toBase: 1 }, // m°C
  voltage: { family: 'voltage', toBase: 1000 }, // mV
  current: { family: 'current', toBase: 1000 }, // mA
  power: { family: 'power', toBase: 1000 }, // mW
  pressure: { family: 'pressure', toBase: 1 }, // kPa
  humidityrelative: { family: 'humidity', toBase: 1 }, // m%RH
  illuminance: { family: 'illuminance', toBase: 1 }, // lux
  concentration: { family: 'concentration', toBase: 1 }, // %
};
// in_accel_x_raw, in_voltage0_raw, in_voltage0-voltage1_raw, in_temp_ambient_input, in_illuminance_input…
const CHANNEL_FILE = /^in_(([a-z]+)[^_]*(?:_[a-z0-9]+)*)_(raw|input)$/;

/**
 * `/sys/bus/iio/devices/iio:device*`: one reading per channel of a known type. A channel's `_input` is already
 * in the ABI's unit; a `_raw` becomes (raw + offset) × scale, where scale and offset come from the channel's
 * own `in_<channel>_scale` if it has one, else the file shared by its channels (`in_voltage_scale` for
 * `in_voltage0_raw`, `in_accel_scale` for `in_accel_x_raw`), else 1 and 0.
 */
export const iio: DeviceKind = {
  prefix: 'iio',
  dir: 'bus/iio/devices',
  entries: /^iio:device\d+$/,

  async open(files, entry) {
    return { name: (await files.text('name', false))?.trim() || entry, files };
  },

  async read(files, id) {
    const listed = new Set((await files.list()) ?? []);
    const channels = new Map<string, { type: string; file: string; processed: boolean }>();
    for (const file of listed) {
      const m = CHANNEL_FILE.exec(file);
      if (!m || !(m[2]! in CHANNEL_TYPES)) continue;
      const processed = m[3] === 'input';
      if (processed || !channels.has(m[1]!)) channels.set(m[1]!, { type: m[2]!, file, processed });
    }
    const shared = new Map<string, Promise<number | undefined>>();
    const attribute = (file: string) => {
      let value = shared.get(file);
      if (!value) shared.set(file, (value = files.number(file, true)));
      return value;
    };
    const readings = await Promise.all(
      [...channels].map(async ([channel, { type, file, processed }]): Promise<Reading | undefined> => {
        const value = processed ? await files.number(file, true) : await scaled(files, listed, attribute, channel, type, file);
        if (value === undefined) return undefined;
        const { family, toBase } = CHANNEL_TYPES[type]!;
        return { family, sensor: `${id}/${channel}`, value: value * toBase };
      }),
    );
    return readings.filter((r) => r !== undefined);
  },
};

async function scaled(
  files: DeviceFiles,
  listed: Set<string>,
  attribute: (file: string) => Promise<number | undefined>,
  channel: string,
  type: string,
  rawFile: string,
): Promise<number | undefined> {
  // Most specific first: in_voltage0_scale, then in_voltage_scale (in_voltage-voltage_scale for differential
  // channels), then the type's.
  const candidates = [...new Set([channel, channel.replace(/\d+/g, ''), type])];
  const pick = (suffix: string) => candidates.map((c) => `in_${c}_${suffix}`).find((f) => listed.has(f));
  const scaleFile = pick('scale');
  const offsetFile = pick('offset');
  const [raw, scale, offset] = await Promise.all([
    files.number(rawFile, true),
    scaleFile === undefined ? 1 : attribute(scaleFile),
    offsetFile === undefined ? 0 : attribute(offsetFile),
  ]);
  if (raw === undefined || scale === undefined || offset === undefined) return undefined;
  return (raw + offset) * scale;
}

import type { DeviceFiles } from '../device-files.ts';
import type { DeviceKind } from '../scan.ts';

// w1_therm family codes: DS18S20, DS1822, DS18B20, DS1825, DS28EA00.
const THERMOMETER = /^(10|22|28|3b|42)-[0-9a-f]+$/i;
const CRC_LINE = /:\s*crc=[0-9a-f]{2}\s+(YES|NO)\s*$/i;
const TEMPERATURE = /\bt=(-?\d+)\s*$/;

/**
 * `/sys/bus/w1/devices/<family>-<serial>`: 1-wire thermometers. `w1_slave` is read where it exists (every
 * kernel has it, and it shows the CRC verdict); newer kernels also offer `temperature` (m°C, one number),
 * used when `w1_slave` is absent. Each read starts a conversion of up to 750 ms, hence one device at a time.
 */
export const w1: DeviceKind = {
  prefix: 'w1',
  dir: 'bus/w1/devices',
  entries: THERMOMETER,
  oneAtATime: true,

  async open(files, entry) {
    return { name: entry, files };
  },

  async read(files, id) {
    const listed = await files.list();
    if (listed === undefined) return [];
    let milli: number | undefined;
    if (listed.includes('w1_slave')) {
      const text = await files.text('w1_slave', true);
      milli = text === undefined ? undefined : parseW1Slave(files, text);
    } else milli = await files.number('temperature', true);
    return milli === undefined ? [] : [{ family: 'temperature', sensor: id, value: milli }];
  },
};

/**
 * The two-line w1_slave format:
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *   72 01 4b 46 7f ff 0e 10 57 t=23125
 * Only a first line ending in YES is accepted. A scratchpad of nine zero bytes passes the CRC but is what a
 * shorted data line reads, so it is refused as a failed check too.
 */
export function parseW1Slave(files: Pick<DeviceFiles, 'unreadable' | 'badCrc'>, text: string): number | undefined {
  const [first, second] = text.split('\n');
  const verdict = first === undefined ? undefined : CRC_LINE.exec(first)?.[1];
  const t = second === undefined ? undefined : TEMPERATURE.exec(second)?.[1];
  if (verdict === undefined) {
    files.unreadable('w1_slave', text);
    return undefined;
  }
  const bytes = first!.split(':')[0]!.trim().split(/\s+/);
  if (verdict.toUpperCase() !== 'YES' || bytes.every((b) => /^0+$/.test(b))) {
    files.badCrc('w1_slave', text);
    return undefined;
  }
  if (t === undefined) {
    files.unreadable('w1_slave', text);
    return undefined;
  }
  return Number(t);
}

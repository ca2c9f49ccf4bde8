import type { DeviceKind } from '../scan.ts';

/** `/sys/class/thermal/thermal_zone*`: `temp` in m°C, named by the zone's `type` (`cpu-thermal`, `acpitz`). */
export const thermal: DeviceKind = {
  prefix: 'thermal',
  dir: 'class/thermal',
  entries: /^thermal_zone\d+$/,

  async open(files, entry) {
    return { name: (await files.text('type', false))?.trim() || entry, files };
  },

  async read(files, id) {
    const milli = await files.number('temp', true);
    return milli === undefined ? [] : [{ family: 'temperature', sensor: id, value: milli }];
  },
};

import type { DeviceKind, Reading } from '../scan.ts';

/**
 * `/sys/class/power_supply/*`: a battery's `capacity` (%) with its `status`, a mains or USB supply's `online`
 * (1 or 0), and `voltage_now` (µV) and `current_now` (µA) where the supply reports them. Which attributes exist
 * depends on the supply, so only the listed ones are read; a battery whose `present` is 0 (slot empty) has no
 * readings and that is not a problem.
 */
export const powerSupply: DeviceKind = {
  prefix: 'power_supply',
  dir: 'class/power_supply',
  entries: /^[^.]/,

  async open(files, entry) {
    return { name: entry, files };
  },

  async read(files, id) {
    const listed = new Set((await files.list()) ?? []);
    const number = (name: string) => (listed.has(name) ? files.number(name, true) : Promise.resolve(undefined));
    if (listed.has('present') && (await number('present')) === 0) return [];
    const [capacity, status, online, voltage, current] = await Promise.all([
      number('capacity'),
      listed.has('status') ? files.text('status', true) : undefined,
      number('online'),
      number('voltage_now'),
      number('current_now'),
    ]);
    const readings: Reading[] = [];
    if (capacity !== undefined) {
      const state = status?.trim();
      readings.push(state ? { family: 'capacity', sensor: id, value: capacity, status: state } : { family: 'capacity', sensor: id, value: capacity });
    }
    if (online !== undefined) readings.push({ family: 'online', sensor: id, value: online === 0 ? 0 : 1 });
    if (voltage !== undefined) readings.push({ family: 'voltage', sensor: id, value: voltage });
    if (current !== undefined) readings.push({ family: 'current', sensor: id, value: current });
    return readings;
  },
};

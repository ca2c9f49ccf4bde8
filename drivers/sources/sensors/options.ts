import { z } from '../../../agent/sdk/index.ts';
import { FIXED, CONVERTIBLE, unitNames } from './units.ts';

export const SUBSYSTEMS = ['hwmon', 'thermal', 'iio', 'w1', 'power_supply'] as const;
export type Subsystem = (typeof SUBSYSTEMS)[number];

const FAMILIES = [...Object.keys(CONVERTIBLE), ...Object.keys(FIXED)] as [string, ...string[]];

function unitOption(family: keyof typeof CONVERTIBLE, what: string) {
  const names = unitNames(family);
  return z.enum(names).default(names[0]).describe(`Unit of ${what} records.`);
}

const override = () =>
  z.strictObject({
    sensor: z.string().min(1).describe('Sensor id or glob (`hwmon/ina3221/*`, `w1/28-*`).'),
    family: z.enum(FAMILIES).optional().describe('Only readings of this family (a power monitor labels its voltage, current and power alike).'),
    scale: z.number().default(1).describe('Multiplies the value after unit conversion (calibration, a divider on an `in` input).'),
    offset: z.number().default(0).describe('Added after `scale`.'),
    unit: z.string().min(1).optional().describe('Unit the record carries instead (when scale turns volts into, say, bar).'),
  });
export type Override = z.output<ReturnType<typeof override>>;

/** Built on first use (agent/sdk/define.ts). */
export const options = () =>
  z.strictObject({
    sys_root: z.string().default('/sys').describe('Where sysfs is mounted (tests point it at a fixture tree); relative to the config file.'),
    include: z
      .array(z.enum(SUBSYSTEMS))
      .min(1)
      .default([...SUBSYSTEMS])
      .describe('Which kernel subsystems to read: `hwmon`, `thermal`, `iio`, `w1` (1-wire thermometers), `power_supply`.'),
    devices: z
      .array(z.string().min(1))
      .default([])
      .describe('Only these devices or sensors: globs over device ids (`hwmon/coretemp`) or sensor ids (`hwmon/coretemp/Core *`). Empty: all.'),
    units: z
      .strictObject({
        temperature: unitOption('temperature', 'temperature'),
        voltage: unitOption('voltage', 'voltage'),
        current: unitOption('current', 'current'),
        power: unitOption('power', 'power'),
        humidity: unitOption('humidity', 'relative humidity'),
        pressure: unitOption('pressure', 'pressure'),
        acceleration: unitOption('acceleration', 'acceleration'),
      })
      .prefault({})
      .describe('Output unit per reading family; every record carries its `unit`.'),
    overrides: z
      .array(override())
      .default([])
      .describe('Per-sensor `value × scale + offset` (in the output unit), matched by sensor id glob; the first match wins.'),
  });

export type Options = z.output<ReturnType<typeof options>>;

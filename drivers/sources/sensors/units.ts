/**
 * Reading families and their units. Every subsystem reader hands over a value in its family's base unit
 * (the finest unit the kernel uses for it: millidegrees, microvolts…); the source converts it once, to the
 * unit the config declares, so records never mix units within a family.
 */

type Convert = (base: number) => number;

const STANDARD_GRAVITY = 9.80665;

/** Families whose output unit the config chooses; the first unit listed is the default. */
export const CONVERTIBLE = {
  temperature: {
    base: 'millicelsius',
    units: { celsius: (v) => v / 1000, fahrenheit: (v) => (v * 9) / 5000 + 32, kelvin: (v) => v / 1000 + 273.15, millicelsius: (v) => v },
  },
  voltage: { base: 'uV', units: { V: (v) => v / 1e6, mV: (v) => v / 1000, uV: (v) => v } },
  current: { base: 'uA', units: { A: (v) => v / 1e6, mA: (v) => v / 1000, uA: (v) => v } },
  power: { base: 'uW', units: { W: (v) => v / 1e6, mW: (v) => v / 1000, uW: (v) => v } },
  humidity: { base: 'millipercent', units: { percent: (v) => v / 1000, millipercent: (v) => v } },
  pressure: { base: 'kPa', units: { kPa: (v) => v, hPa: (v) => v * 10, Pa: (v) => v * 1000 } },
  acceleration: { base: 'm/s^2', units: { 'm/s^2': (v) => v, g: (v) => v / STANDARD_GRAVITY } },
} as const satisfies Record<string, { base: string; units: Record<string, Convert> }>;

/** Families with one unit only. */
export const FIXED = {
  fan: 'rpm',
  capacity: 'percent',
  online: 'bool',
  angular_velocity: 'rad/s',
  magnetic_field: 'gauss',
  illuminance: 'lux',
  concentration: 'percent',
} as const;

export type ConvertibleFamily = keyof typeof CONVERTIBLE;
export type Family = ConvertibleFamily | keyof typeof FIXED;
/** The output unit chosen per convertible family (validated against CONVERTIBLE by the options schema). */
export type UnitChoice = Record<ConvertibleFamily, string>;

export function unitNames<F extends ConvertibleFamily>(family: F): [string, ...string[]] {
  return Object.keys(CONVERTIBLE[family].units) as [string, ...string[]];
}

/** A family's converter to the chosen unit, and that unit's name as records carry it. */
export function converterFor(family: Family, choice: UnitChoice): { unit: string; convert: Convert } {
  if (family in FIXED) return { unit: FIXED[family as keyof typeof FIXED], convert: (v) => v };
  const f = family as ConvertibleFamily;
  const unit = choice[f];
  return { unit, convert: (CONVERTIBLE[f].units as Record<string, Convert>)[unit]! };
}

/** Drops binary floating-point noise (23.125000000000004) without losing any precision a sensor has. */
export function tidy(value: number): number {
  return Number(value.toPrecision(12));
}

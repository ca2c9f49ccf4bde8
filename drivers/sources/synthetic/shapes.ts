import type { AgentRecord } from '../../../agent/sdk/index.ts';

/**
 * Record shapes of the synthetic source. `classic` is the original small record (one timestamp per emit,
 * a few sensor names, a smooth two-decimal value): it compresses far better than anything a gateway reads
 * (≈7 B per record on the wire), so load figures measured with it flatter the agent. `realistic` is shaped
 * like what field devices send: a timestamp per record with jitter, hundreds of sensor ids, noisy float32
 * readings widened to float64 (as a driver reading a register gets them), a status string and, as the size
 * grows, an array of readings. Every value is a function of `n`, so a restarted source repeats nothing
 * and a test can recompute any record.
 */
export const SHAPES = ['classic', 'realistic'] as const;
export type Shape = (typeof SHAPES)[number];

const UNITS = ['C', 'kPa', 'V', 'A', 'rpm', '%RH', 'lx', 'm3/h'] as const;
const STATUSES = ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'warn', 'ok', 'stale', 'ok', 'ok', 'ok', 'ok', 'ok', 'alarm'] as const;

/** A well-mixed 32-bit hash of an integer (splitmix-like), so each record's noise is reproducible from `n`. */
function mix(n: number, salt: number): number {
  let x = (n ^ (salt * 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Uniform in [0, 1) from `n` and a salt. */
const unit = (n: number, salt: number) => mix(n, salt) / 0x1_0000_0000;

/** A noisy reading around a slow wave, as a float32 sensor value widened to a double (≈16 significant digits). */
function reading(n: number, channel: number): number {
  return Math.fround(20 + (channel & 7) * 3.5 + Math.sin((n + channel * 97) / 300) * 4 + (unit(n, channel + 7) - 0.5) * 0.8);
}

/**
 * JSON bytes of the `realistic` record without its `readings` array, and what each reading adds (≈19 B as
 * a float32 widened to a double, plus its comma). Used to pick the number of readings for `record_bytes`.
 */
const BASE_BYTES = 121;
const BYTES_PER_READING = 18.6;
/** Below this, the compact form: short keys, no unit or status, a reading scaled to three decimals. */
const COMPACT_BELOW = 100;

export interface ShapeOptions {
  shape: Shape;
  sensors: number;
  record_bytes: number;
}

/** Builds the record numbered `n`; `now` is the emit's wall clock (ms), `offset` the record's place in it. */
export type RecordMaker = (n: number, now: number, offset: number) => AgentRecord;

/** Sensor ids are made once up to this many sensors (≈40 B each); above, an id is made for each record. */
const KEPT_IDS = 4096;

/**
 * The id of sensor `s` by `name`: kept for `sensors` ≤ KEPT_IDS, made anew otherwise (a huge `sensors` must
 * not hold memory). A template string made per record is a chain of pieces that the agent's writer must then
 * flatten: two allocations per record for the same few hundred values.
 */
function idsOf(sensors: number, name: (s: number) => string): (s: number) => string {
  if (sensors > KEPT_IDS) return name;
  const ids = Array.from({ length: sensors }, (_, s) => name(s));
  return (s) => ids[s]!;
}

export function recordMaker({ shape, sensors, record_bytes }: ShapeOptions): RecordMaker {
  if (shape === 'classic') {
    const classicId = idsOf(sensors, (s) => `sensor-${s}`);
    return (n, now) => ({ n, ts: now, sensor: classicId(n % sensors), value: Math.round((20 + Math.sin(n / 50) * 5 + (n % 7) / 10) * 100) / 100, unit: 'C' });
  }
  // Sensor ids are spread over `sensors` in a scrambled order, as interleaved devices report.
  const sensorOf = (n: number) => mix(n, 1) % sensors;
  // Records of one emit are a few ms apart with jitter, each stamped on its own.
  const tsOf = (n: number, now: number, offset: number) => now - 2 * offset + (mix(n, 2) & 1);
  if (record_bytes < COMPACT_BELOW) {
    const id = idsOf(sensors, (s) => `s${s}`);
    return (n, now, offset) => ({ n, ts: tsOf(n, now, offset), id: id(sensorOf(n)), v: Math.round(reading(n, sensorOf(n)) * 1000) / 1000 });
  }
  const readings = Math.max(0, Math.round((record_bytes - BASE_BYTES - 13) / BYTES_PER_READING));
  const sensorId = idsOf(sensors, (s) => `plant-${s % 7}/line-${s % 13}/sensor-${s}`);
  return (n, now, offset) => {
    const s = sensorOf(n);
    const record: AgentRecord = {
      n,
      ts: tsOf(n, now, offset),
      sensor: sensorId(s),
      value: reading(n, s),
      unit: UNITS[s & 7],
      status: STATUSES[mix(n, 3) & 15],
    };
    if (readings > 0) {
      const values = new Array<number>(readings);
      for (let i = 0; i < readings; i++) values[i] = reading(n, i);
      record.readings = values;
    }
    return record;
  };
}

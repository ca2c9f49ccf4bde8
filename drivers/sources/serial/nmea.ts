/**
 * NMEA 0183 sentences → record fields. The framer hands over `$…*hh` / `!…*hh` without the line end; this
 * verifies the checksum (XOR of the bytes between the start marker and `*`), splits the address into talker
 * and sentence type, and parses the common position sentences. Others keep their raw `fields`.
 */

export type NmeaResult = { ok: true; fields: Record<string, unknown> } | { ok: false; reason: 'bad_checksum' | 'bad_sentence'; detail: string };

class SentenceError extends Error {}

export function parseNmea(sentence: string, requireChecksum: boolean): NmeaResult {
  const star = sentence.lastIndexOf('*');
  let body: string;
  if (star >= 0) {
    body = sentence.slice(1, star);
    const given = sentence.slice(star + 1);
    if (!/^[0-9A-Fa-f]{2}$/.test(given)) return { ok: false, reason: 'bad_checksum', detail: `malformed checksum "${given}"` };
    const computed = checksum(body);
    if (computed !== Number.parseInt(given, 16)) {
      return { ok: false, reason: 'bad_checksum', detail: `checksum ${given} given, ${computed.toString(16).toUpperCase().padStart(2, '0')} computed` };
    }
  } else {
    if (requireChecksum) return { ok: false, reason: 'bad_checksum', detail: 'no checksum' };
    body = sentence.slice(1);
  }
  const parts = body.split(',');
  const address = parts[0]!;
  if (!/^[A-Z0-9]{2,6}$/.test(address)) return { ok: false, reason: 'bad_sentence', detail: `bad address "${address}"` };
  // Proprietary sentences are "P" + maker code + type; the rest have a two-letter talker.
  const talker = address.startsWith('P') ? 'P' : address.slice(0, 2);
  const type = address.slice(talker.length);
  const data = parts.slice(1);
  const parse = PARSERS[type];
  try {
    const parsed = talker !== 'P' && parse ? parse(data) : { fields: data };
    return { ok: true, fields: { talker, sentence: type, ...dropUndefined(parsed) } };
  } catch (err) {
    if (err instanceof SentenceError) return { ok: false, reason: 'bad_sentence', detail: `${address}: ${err.message}` };
    throw err;
  }
}

export function checksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return sum;
}

function dropUndefined(fields: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
  return fields;
}

type Parser = (f: string[]) => Record<string, unknown>;

const PARSERS: Record<string, Parser> = {
  GGA: (f) => ({
    time: time(f[0]),
    lat: latitude(f[1], f[2]),
    lon: longitude(f[3], f[4]),
    quality: int(f[5]),
    satellites: int(f[6]),
    hdop: num(f[7]),
    altitude: num(f[8]),
    geoid_separation: num(f[10]),
    dgps_age: num(f[12]),
    dgps_station: text(f[13]),
  }),
  RMC: (f) => {
    const t = time(f[0]);
    const d = date(f[8]);
    return {
      time: t,
      date: d,
      datetime: d && t ? `${d}T${t}Z` : undefined,
      valid: f[1] === 'A',
      lat: latitude(f[2], f[3]),
      lon: longitude(f[4], f[5]),
      speed_knots: num(f[6]),
      course: num(f[7]),
      magnetic_variation: signed(num(f[9]), f[10], 'W'),
      mode: text(f[11]),
    };
  },
  VTG: (f) => ({
    course_true: num(f[0]),
    course_magnetic: num(f[2]),
    speed_knots: num(f[4]),
    speed_kmh: num(f[6]),
    mode: text(f[8]),
  }),
  GSA: (f) => ({
    selection: text(f[0]),
    fix_type: int(f[1]),
    satellite_ids: f
      .slice(2, 14)
      .filter((s) => s !== '')
      .map((s) => int(s)!),
    pdop: num(f[14]),
    hdop: num(f[15]),
    vdop: num(f[16]),
    system_id: f[17] === undefined ? undefined : int(f[17]),
  }),
  GLL: (f) => ({
    lat: latitude(f[0], f[1]),
    lon: longitude(f[2], f[3]),
    time: time(f[4]),
    valid: f[5] === 'A',
    mode: text(f[6]),
  }),
  ZDA: (f) => {
    const t = time(f[0]);
    const day = int(f[1]);
    const month = int(f[2]);
    const year = int(f[3]);
    const d = day !== undefined && month !== undefined && year !== undefined ? `${year}-${pad(month)}-${pad(day)}` : undefined;
    return { time: t, day, month, year, datetime: d && t ? `${d}T${t}Z` : undefined, zone_hours: int(f[4]), zone_minutes: int(f[5]) };
  },
};

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function text(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s === '') return undefined;
  if (!/^[-+]?\d+(\.\d*)?$|^[-+]?\.\d+$/.test(s)) throw new SentenceError(`"${s}" is not a number`);
  return Number(s);
}

function int(s: string | undefined): number | undefined {
  if (s === undefined || s === '') return undefined;
  if (!/^\d+$/.test(s)) throw new SentenceError(`"${s}" is not an integer`);
  return Number(s);
}

/** hhmmss[.ss] → "hh:mm:ss[.ss]" (UTC). */
function time(s: string | undefined): string | undefined {
  if (s === undefined || s === '') return undefined;
  const m = /^(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$/.exec(s);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3]) >= 61) throw new SentenceError(`"${s}" is not a time hhmmss.ss`);
  return `${m[1]}:${m[2]}:${m[3]!.padStart(2, '0')}`;
}

/** ddmmyy → "20yy-mm-dd" (NMEA dates carry two-digit years; receivers in use today report this century). */
function date(s: string | undefined): string | undefined {
  if (s === undefined || s === '') return undefined;
  const m = /^(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 31 || Number(m[2]) < 1 || Number(m[2]) > 12) throw new SentenceError(`"${s}" is not a date ddmmyy`);
  return `20${m[3]}-${m[2]}-${m[1]}`;
}

function signed(value: number | undefined, hemisphere: string | undefined, negative: string): number | undefined {
  return value === undefined ? undefined : hemisphere === negative ? -value : value;
}

/** (d)ddmm.mmmm + hemisphere → signed decimal degrees. */
function degrees(s: string | undefined, hemisphere: string | undefined, degreeDigits: number, hemispheres: string): number | undefined {
  if (s === undefined || s === '') return undefined;
  const m = new RegExp(`^(\\d{${degreeDigits}})(\\d{2}(?:\\.\\d+)?)$`).exec(s);
  if (!m || Number(m[2]) >= 60) throw new SentenceError(`"${s}" is not a coordinate`);
  if (hemisphere === undefined || !hemispheres.includes(hemisphere) || hemisphere === '') throw new SentenceError(`"${hemisphere ?? ''}" is not a hemisphere`);
  const value = Math.round((Number(m[1]) + Number(m[2]) / 60) * 1e8) / 1e8;
  const limit = degreeDigits === 2 ? 90 : 180;
  if (value > limit) throw new SentenceError(`"${s}" is out of range`);
  return hemisphere === hemispheres[1] ? -value : value;
}

function latitude(s: string | undefined, hemisphere: string | undefined): number | undefined {
  return degrees(s, hemisphere, 2, 'NS');
}

function longitude(s: string | undefined, hemisphere: string | undefined): number | undefined {
  return degrees(s, hemisphere, 3, 'EW');
}

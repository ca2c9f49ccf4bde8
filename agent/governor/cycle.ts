/**
 * Billing periods in a time zone: the calendar day, and the cycle that starts on a given day of the month
 * (on the month's last day when the month is shorter). Keys name a period; boundaries are instants.
 */

interface LocalDate {
  y: number;
  m: number; // 1–12
  d: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function localDate(ms: number, timeZone: string): LocalDate {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  const [y, m, d] = f.format(new Date(ms)).split('-').map(Number) as [number, number, number];
  return { y, m, d };
}

function daysIn(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

const clockFormatters = new Map<string, Intl.DateTimeFormat>();

function clockFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = clockFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    clockFormatters.set(timeZone, f);
  }
  return f;
}

/** The instant local midnight starts `date` in `timeZone` (found by correcting a UTC guess by the zone's offset). */
export function localMidnight(date: LocalDate, timeZone: string): number {
  let guess = Date.UTC(date.y, date.m - 1, date.d);
  for (let i = 0; i < 3; i++) {
    const seen = localDate(guess, timeZone);
    const seenUtc = Date.UTC(seen.y, seen.m - 1, seen.d);
    const parts = clockFormatter(timeZone).format(new Date(guess)).split(':');
    const localMs = seenUtc + (Number(parts[0]) * 60 + Number(parts[1])) * 60_000;
    const offset = localMs - guess;
    const next = Date.UTC(date.y, date.m - 1, date.d) - offset;
    if (next === guess) break;
    guess = next;
  }
  return guess;
}

function key(date: LocalDate): string {
  return `${date.y}-${String(date.m).padStart(2, '0')}-${String(date.d).padStart(2, '0')}`;
}

function cycleStartIn(y: number, m: number, startDay: number): LocalDate {
  return { y, m, d: Math.min(startDay, daysIn(y, m)) };
}

function addMonth({ y, m }: { y: number; m: number }, n: number): { y: number; m: number } {
  const i = y * 12 + (m - 1) + n;
  return { y: Math.floor(i / 12), m: (i % 12) + 1 };
}

export interface Periods {
  readonly dayKey: string;
  readonly cycleKey: string;
  readonly dayEnd: number;
  readonly cycleEnd: number;
  /** Days left in the cycle, today included. */
  readonly daysLeft: number;
}

export function periodsAt(ms: number, timeZone: string, startDay: number): Periods {
  const today = localDate(ms, timeZone);
  const thisStart = cycleStartIn(today.y, today.m, startDay);
  const startMonth = today.d >= thisStart.d ? { y: today.y, m: today.m } : addMonth(today, -1);
  const start = cycleStartIn(startMonth.y, startMonth.m, startDay);
  const nextMonth = addMonth(startMonth, 1);
  const end = cycleStartIn(nextMonth.y, nextMonth.m, startDay);
  const tomorrow = localDate(Date.UTC(today.y, today.m - 1, today.d + 1, 12), 'UTC');
  const daysLeft = Math.round((Date.UTC(end.y, end.m - 1, end.d) - Date.UTC(today.y, today.m - 1, today.d)) / 86_400_000);
  return {
    dayKey: key(today),
    cycleKey: key(start),
    dayEnd: localMidnight(tomorrow, timeZone),
    cycleEnd: localMidnight(end, timeZone),
    daysLeft,
  };
}

/**
 * The `governor` section: forward only when resources allow (docs/governor.md). Gates with hysteresis, send
 * windows, a bandwidth cap on bytes on the wire and data budgets per billing cycle, by priority class.
 * Absent: nothing is held, as before.
 */
import { Cron } from 'croner';
import { z } from '../util/zod.ts';
import { duration, size } from '../util/units.ts';

export const PRIORITY_CLASSES = ['critical', 'control', 'normal', 'bulk'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

const classList = (fallback: PriorityClass[], what: string) =>
  z.array(z.enum(PRIORITY_CLASSES)).default(fallback).describe(`The classes this ${what} holds back while closed.`);

/** A threshold gate: closes at `hold`, opens again only past `resume` (the hysteresis band between them). */
function threshold(what: string, hold: number, resume: number, unit: string, higherIsWorse: boolean) {
  return z
    .strictObject({
      hold: z
        .number()
        .min(0)
        .default(hold)
        .describe(`Close at ${higherIsWorse ? 'or above' : 'or below'} this ${unit}.`),
      resume: z
        .number()
        .min(0)
        .default(resume)
        .describe(`Open again only ${higherIsWorse ? 'below' : 'above'} this ${unit} (hysteresis).`),
      holds: classList(['normal', 'bulk'], 'gate'),
    })
    .superRefine((t, ctx) => {
      if (higherIsWorse ? t.resume >= t.hold : t.resume <= t.hold) {
        ctx.addIssue({
          code: 'custom',
          path: ['resume'],
          message: `${what}: resume (${t.resume}) must be ${higherIsWorse ? 'below' : 'above'} hold (${t.hold}), or the gate would flap`,
        });
      }
    });
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** A cron expression with a time zone, checked by the cron library itself. */
const windowSchema = z
  .strictObject({
    cron: z.string().describe('When the window opens: a cron expression (5 or 6 fields), e.g. "0 22 * * *".'),
    duration: duration(1_000).describe('How long it stays open from each start (real time: a DST change does not stretch it).'),
    timezone: z.string().default('UTC').describe('IANA time zone the expression is read in, e.g. Europe/Berlin.'),
    classes: z.array(z.enum(PRIORITY_CLASSES)).default([]).describe('Classes that may send only inside this window.'),
    streams: z.array(z.string()).default([]).describe('Streams that may send only inside this window (overrides their class).'),
  })
  .superRefine((w, ctx) => {
    if (!isTimeZone(w.timezone)) {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: `unknown IANA time zone ${JSON.stringify(w.timezone)}` });
      return;
    }
    try {
      new Cron(w.cron, { timezone: w.timezone, paused: true });
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: `not a valid cron expression in ${w.timezone}: ${(err as Error).message}` });
    }
  });

export const governorSchema = z
  .strictObject({
    proc_root: z.string().default('/proc').describe('Where /proc is read from (tests point it at a fixture tree).'),
    sys_root: z.string().default('/sys').describe('Where /sys is read from.'),
    check_interval: duration(100).prefault('5s').describe('How often the gates read the machine.'),
    classes: z.record(z.string(), z.enum(PRIORITY_CLASSES)).default({}).describe('Priority class by stream name; a stream not named here is `normal`.'),
    gates: z
      .strictObject({
        cpu_load: threshold('gates.cpu_load', 2, 1.5, 'one-minute load average per core', true).optional(),
        cpu_pressure: threshold('gates.cpu_pressure', 60, 30, 'percentage of /proc/pressure/cpu "some avg10"', true).optional(),
        memory: threshold('gates.memory', 32, 48, 'MiB of MemAvailable', false).optional(),
        battery: threshold('gates.battery', 20, 30, 'percent of battery capacity', false).optional(),
        on_battery: z
          .strictObject({ holds: classList(['bulk'], 'gate') })
          .optional()
          .describe('Hold while no mains (AC/USB) supply is online and a battery discharges.'),
        centre: z
          .strictObject({ holds: classList(['bulk'], 'gate') })
          .optional()
          .describe("Hold until the centre's receiver says it listens (its sink's `announce_online: true`); closed until it has."),
        metered: z
          .strictObject({
            reconnect_floor: duration(100)
              .prefault('30s')
              .describe("A metered link: the sink's reconnect backoff starts at least this high, so a flapping link cannot burn the budget on handshakes."),
          })
          .optional(),
      })
      .prefault({}),
    windows: z.array(windowSchema).default([]).describe('Send windows; alarm (critical) and control classes are never held by a window unless named.'),
    bandwidth: z
      .strictObject({
        bytes_per_second: size().describe('Sustained bytes per second on the wire (after compression and encryption, framing included).'),
        burst: size().optional().describe('Bucket size; default two seconds of the rate.'),
      })
      .optional(),
    budget: z
      .strictObject({
        monthly: size().optional().describe('Bytes per billing cycle, both directions, every connection and handshake counted.'),
        daily: size().optional().describe('Bytes per calendar day in `timezone`.'),
        cycle_start_day: z.number().int().min(1).max(31).default(1).describe('Day of the month the cycle starts (a shorter month starts it on its last day).'),
        timezone: z.string().default('UTC').describe('IANA time zone of the cycle and day boundaries.'),
        critical_cap: size().default(0).describe('Bytes of the critical class (alarms) exempt from the caps per cycle; still counted.'),
        control_reserve: size().default(0).describe('Bytes kept for the control class (status, config, update chunks, handshakes).'),
        bulk_reserve: size().default(0).describe('Bulk (backlog) sends only while more than this much of the cycle is left.'),
        interface: z.string().optional().describe('A dedicated link interface: its /sys/class/net counters are read too and the larger count enforced.'),
        persist_step: size()
          .prefault('64KiB')
          .describe('Counters are written ahead in steps of this size (fsynced), so a kill or power cut never forgets a spent byte.'),
        state_file: z.string().default('governor-budget.json').describe('Where the counters live, relative to data_dir.'),
      })
      .superRefine((b, ctx) => {
        if (b.monthly !== undefined && b.daily !== undefined && b.daily > b.monthly) {
          ctx.addIssue({ code: 'custom', path: ['daily'], message: `daily (${b.daily} B) exceeds monthly (${b.monthly} B): contradictory limits` });
        }
        const cap = b.monthly ?? b.daily;
        if (cap !== undefined && b.control_reserve + b.bulk_reserve >= cap) {
          ctx.addIssue({
            code: 'custom',
            path: ['control_reserve'],
            message: `control_reserve + bulk_reserve (${b.control_reserve + b.bulk_reserve} B) leave nothing of the ${cap} B cap: contradictory limits`,
          });
        }
        if (b.monthly === undefined && b.daily === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'a budget needs monthly or daily' });
        if (!isTimeZone(b.timezone)) {
          ctx.addIssue({ code: 'custom', path: ['timezone'], message: `unknown IANA time zone ${JSON.stringify(b.timezone)}` });
        }
      })
      .optional(),
  })
  .superRefine((g, ctx) => {
    const burst = g.bandwidth?.burst;
    if (g.bandwidth && burst !== undefined && burst < 1024) {
      ctx.addIssue({ code: 'custom', path: ['bandwidth', 'burst'], message: 'burst below 1KiB cannot carry one batch: contradictory limits' });
    }
  })
  .optional()
  .describe('Forward only when resources allow: gates, send windows, bandwidth and data budgets by priority class (docs/governor.md).');

export type GovernorConfig = NonNullable<z.output<typeof governorSchema>>;

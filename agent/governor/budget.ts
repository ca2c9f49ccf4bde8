/**
 * Data budgets per billing cycle and per day, by priority class, kept to the byte and across kill -9, power
 * cuts and clock jumps.
 *
 * What is counted: every byte on the wire in both directions (the sockets', `wire`), and where the link is
 * dedicated the interface's own counters too; the larger total is enforced. Payload bytes are attributed to
 * classes as they are sent (`charge`); what the totals hold beyond them (handshakes, keepalives, acks, TLS,
 * the control connection) is the control class's.
 *
 * The rules (docs/governor.md): critical sends while its own sub-cap lasts, exempt from the rest; control
 * may use everything up to the caps; normal is paced (a daily allowance that covers the rest of the cycle,
 * reserves kept); bulk only while more than `bulk_reserve` of the pool is left.
 *
 * Durability: the counters are written ahead: the file holds at least what was spent, rounded up by a step
 * (at least `persist_step`, larger when bytes come fast, so a write is rare), fsynced and renamed into place.
 * After a kill the agent resumes from the file: it may count up to one step too many, never one too few.
 *
 * A file that cannot be read back (corrupt, not a budget file) is set aside and the current cycle and day
 * are taken as spent down to the reserves: normal and bulk wait for the next day or cycle, while critical
 * keeps its sub-cap and control its reserve, so alarms still go out and the device stays reachable for the
 * operator. Counting nothing as spent could overrun a data plan by a whole cycle; this way the overrun is at
 * most the two reserves, and only if the lost file had held a fully spent cycle.
 */
import { readFileSync, renameSync } from 'node:fs';
import type { GovernorConfig, PriorityClass } from '../config/governor-schema.ts';
import { AgentError, isAgentError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { type ClockMark, GovernedClock, type ClockSource } from './clock.ts';
import { periodsAt, type Periods } from './cycle.ts';

type BudgetConfig = NonNullable<GovernorConfig['budget']>;

interface Counts {
  /** Socket bytes, both directions. */
  wire: number;
  /** Interface bytes (a dedicated link), both directions. */
  iface: number;
  critical: number;
  /** normal + bulk payload */
  general: number;
}

export interface BudgetState {
  version: 1;
  clock: ClockMark;
  cycleKey: string;
  dayKey: string;
  cycle: Counts;
  day: Counts;
  /** General (normal + bulk) bytes allowed today, fixed at the day's start. */
  dayAllowance: number;
}

const zero = (): Counts => ({ wire: 0, iface: 0, critical: 0, general: 0 });

export class Budget {
  private readonly config: BudgetConfig;
  private readonly path: string;
  readonly clock: GovernedClock;
  private state: BudgetState;
  private periods: Periods;
  /** The cycle total the file vouches for; a write is due once the count passes it. */
  private persistedAhead = 0;
  private lastWriteUptime = Number.NEGATIVE_INFINITY;
  private readonly source: ClockSource;
  writes = 0;
  /** Set when the counters file could not be read: why, and where the unreadable file was moved. */
  readonly unreadable: { error: AgentError; setAsideAs: string } | undefined;

  constructor(config: BudgetConfig, path: string, source: ClockSource) {
    this.config = config;
    this.path = path;
    this.source = source;
    let loaded: BudgetState | undefined;
    try {
      loaded = readState(path);
    } catch (err) {
      if (!isAgentError(err, 'GOVERNOR_STATE_INVALID')) throw err;
      const setAsideAs = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(path, setAsideAs);
      this.unreadable = { error: err, setAsideAs };
    }
    this.clock = new GovernedClock(source, loaded?.clock);
    const now = this.clock.now();
    this.periods = periodsAt(now, config.timezone, config.cycle_start_day);
    this.state = loaded ?? { version: 1, clock: this.clock.mark(), cycleKey: '', dayKey: '', cycle: zero(), day: zero(), dayAllowance: 0 };
    this.roll();
    if (this.unreadable) this.takeAsSpent();
    this.persistedAhead = this.total('cycle');
    if (!loaded) this.persist(0);
  }

  /** The current cycle and day counted as spent down to the critical sub-cap and the control reserve. */
  private takeAsSpent(): void {
    const { monthly, daily, critical_cap, control_reserve } = this.config;
    const reserves = critical_cap + control_reserve;
    const spent = (cap: number | undefined): Counts => {
      const general = cap === undefined ? 0 : Math.max(0, cap - reserves);
      return { wire: general, iface: 0, critical: 0, general };
    };
    this.state.cycle = spent(monthly);
    this.state.day = spent(daily);
    this.state.dayAllowance = this.state.day.general;
  }

  /** The enforced total of a period: the larger of the sockets' and the interface's counts. */
  total(period: 'cycle' | 'day'): number {
    const c = this.state[period];
    return Math.max(c.wire, c.iface);
  }

  snapshot(): Readonly<BudgetState> & { periods: Periods } {
    return { ...structuredClone(this.state), periods: this.periods };
  }

  /** Moves into a new day or cycle when governed time has reached it (never back: governed time does not go back). */
  private roll(): void {
    const p = this.periods;
    if (this.state.cycleKey !== p.cycleKey) {
      // A key only changes forward: governed time never goes back, so a spent period never reopens.
      if (this.state.cycleKey === '' || p.cycleKey > this.state.cycleKey) {
        this.state.cycleKey = p.cycleKey;
        this.state.cycle = zero();
        this.persistedAhead = 0;
      }
    }
    if (this.state.dayKey !== p.dayKey && (this.state.dayKey === '' || p.dayKey > this.state.dayKey)) {
      this.state.dayKey = p.dayKey;
      this.state.day = zero();
      this.state.dayAllowance = this.allowanceForToday();
    }
  }

  private allowanceForToday(): number {
    const { monthly, daily, critical_cap, control_reserve } = this.config;
    const days = Math.max(1, this.periods.daysLeft);
    const pool = monthly === undefined ? Number.POSITIVE_INFINITY : Math.max(0, this.poolLeft());
    // Of a daily cap, the shares critical and control may need on an average day are kept for them.
    const dailyShare = daily === undefined ? Number.POSITIVE_INFINITY : Math.max(0, daily - (critical_cap + control_reserve) / 30);
    return Math.floor(Math.min(dailyShare, pool / days));
  }

  /** General bytes the cycle has left once the unspent critical sub-cap and the control reserve are kept. */
  private poolLeft(): number {
    const { monthly, critical_cap, control_reserve } = this.config;
    if (monthly === undefined) return Number.POSITIVE_INFINITY;
    const c = this.state.cycle;
    const controlUsed = Math.max(0, this.total('cycle') - c.critical - c.general);
    return monthly - this.total('cycle') - Math.max(0, critical_cap - c.critical) - Math.max(0, control_reserve - controlUsed);
  }

  /** Advances time; rolls periods; writes the file when due. Call it often (every check and send). */
  tick(): void {
    // Governed time never goes back, so the periods change only once it reaches the day's end (time-zone
    // arithmetic is not cheap, and this runs at every send).
    const now = this.clock.now();
    if (now >= this.periods.dayEnd) {
      this.periods = periodsAt(now, this.config.timezone, this.config.cycle_start_day);
      this.roll();
    }
    if (this.total('cycle') > this.persistedAhead) this.persist(this.stepAhead());
  }

  private stepAhead(): number {
    // Bytes coming fast: a larger step, so the file is written about once a second at most.
    const uptime = this.source.uptimeMs();
    const quick = uptime - this.lastWriteUptime < 1_000;
    return quick ? Math.max(this.config.persist_step, 4 * this.config.persist_step) : this.config.persist_step;
  }

  /** Bytes on the wire (sockets). */
  addWire(bytes: number): void {
    this.state.cycle.wire += bytes;
    this.state.day.wire += bytes;
    this.tick();
  }

  /** Bytes the dedicated interface moved. */
  addInterface(bytes: number): void {
    this.state.cycle.iface += bytes;
    this.state.day.iface += bytes;
    this.tick();
  }

  /** Attributes sent payload to its class. */
  charge(cls: PriorityClass, bytes: number): void {
    if (cls === 'critical') this.state.cycle.critical += bytes;
    else if (cls === 'normal' || cls === 'bulk') {
      this.state.cycle.general += bytes;
      this.state.day.general += bytes;
    }
  }

  /**
   * Undefined when `cls` may send `size` bytes now; otherwise why not. `unseen`: bytes already admitted and
   * not yet seen on a socket (they count against the totals, not again against the class).
   */
  holds(cls: PriorityClass, size = 0, unseen = 0): string | undefined {
    const bytes = Math.max(1, size); // whatever is sent next has at least one byte
    const { monthly, daily, critical_cap, bulk_reserve } = this.config;
    const cycleTotal = this.total('cycle') + unseen;
    const dayTotal = this.total('day') + unseen;
    if (cls === 'critical' && this.state.cycle.critical + bytes <= critical_cap) return undefined;
    if (monthly !== undefined && cycleTotal + bytes > monthly) return `cycle budget spent (${cycleTotal} of ${monthly} B)`;
    if (daily !== undefined && dayTotal + bytes > daily) return `daily budget spent (${dayTotal} of ${daily} B)`;
    if (cls === 'control') return undefined;
    const pool = this.poolLeft();
    if (bytes > pool || pool <= 0) return 'cycle budget left is reserved for alarms and control';
    if (cls !== 'critical' && this.state.day.general + bytes > this.state.dayAllowance) {
      return `today's paced allowance spent (${this.state.day.general} of ${this.state.dayAllowance} B)`;
    }
    if (cls === 'bulk' && pool - bytes < bulk_reserve) return `bulk waits: the cycle has no more than bulk_reserve left`;
    return undefined;
  }

  /** The most bytes `cls` may send now (what `holds` would let through), `unseen` counted as spent. */
  room(cls: PriorityClass, unseen = 0): number {
    const { monthly, daily, critical_cap, bulk_reserve } = this.config;
    let room = Math.min(
      monthly === undefined ? Number.POSITIVE_INFINITY : monthly - this.total('cycle') - unseen,
      daily === undefined ? Number.POSITIVE_INFINITY : daily - this.total('day') - unseen,
    );
    if (cls !== 'control') room = Math.min(room, this.poolLeft());
    if (cls === 'normal' || cls === 'bulk') room = Math.min(room, this.state.dayAllowance - this.state.day.general);
    if (cls === 'bulk') room = Math.min(room, this.poolLeft() - bulk_reserve);
    if (cls === 'critical') room = Math.max(room, critical_cap - this.state.cycle.critical);
    return Math.max(0, room);
  }

  /** Writes the counters, `ahead` bytes above what was spent (0 at a clean stop: exact). */
  persist(ahead: number): void {
    this.state.clock = this.clock.mark();
    const written: BudgetState = structuredClone(this.state);
    if (ahead > 0) {
      for (const c of [written.cycle, written.day]) {
        c.wire += ahead;
        c.iface = c.iface > 0 ? c.iface + ahead : 0;
      }
    }
    writeFileAtomic(this.path, `${JSON.stringify(written)}\n`);
    this.writes++;
    this.lastWriteUptime = this.source.uptimeMs();
    this.persistedAhead = this.total('cycle') + ahead;
  }
}

function readState(path: string): BudgetState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // A file that cannot be read back is not taken as "nothing spent": that would reopen a spent budget.
  let state: BudgetState;
  try {
    state = JSON.parse(text) as BudgetState;
  } catch (cause) {
    throw new AgentError('GOVERNOR_STATE_INVALID', `${path}: budget counters unreadable`, { cause });
  }
  if (state?.version !== 1 || typeof state.cycleKey !== 'string' || typeof state.cycle?.wire !== 'number' || typeof state.day?.wire !== 'number') {
    throw new AgentError('GOVERNOR_STATE_INVALID', `${path}: not a governor budget file`);
  }
  return state;
}

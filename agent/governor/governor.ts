/**
 * The governor: whether, and how much, the sender may forward now. It holds the gates, the send windows, the
 * bandwidth bucket and the budget, answers the sender by stream (through its priority class), and reports
 * its state into the telemetry registry. Held data waits in the queue (or expires there by its max_age,
 * counted by the queue as `expired`): the governor never drops anything.
 */
import { join } from 'node:path';
import type { GovernorConfig, PriorityClass } from '../config/governor-schema.ts';
import type { Logger } from '../log.ts';
import type { Counter, Telemetry } from '../telemetry/registry.ts';
import { TokenBucket } from './bucket.ts';
import { Budget } from './budget.ts';
import type { ClockSource } from './clock.ts';
import { buildGates, CentreGate, type Gate, type GateState } from './gates.ts';
import { MachineProbes } from './probes.ts';
import { SendWindows } from './windows.ts';
import { LINK_BYTES, LINK_BYTES_HELP, SocketMeter } from './wire-meter.ts';

/**
 * Bytes a sealed batch may have beyond its stored body and its stream's name: the envelope's fixed header,
 * nonce, tag and a device id of up to 170 bytes (docs/wire-format.md).
 */
const ENVELOPE_HEADROOM = 256;

/** Why the sender may not send a stream now; undefined: it may. */
export type Hold = { reason: string; detail: string } | undefined;

export interface GovernorOptions {
  dataDir: string;
  telemetry: Telemetry;
  log: Logger;
  /** The clock budgets are kept in (tests inject one); default: the system's wall clock and uptime. */
  clock?: ClockSource;
  /** The queue's disk watermark: shown as a gate; it holds no sending (sending frees the disk). */
  diskLow?: () => boolean;
}

/** The system clock: the wall clock, and uptime from /proc once, then the process's monotonic clock. */
export function systemClock(probes: MachineProbes): ClockSource {
  const uptime0 = probes.uptimeMs() ?? 0;
  const perf0 = performance.now();
  const boot = probes.bootId() ?? `process-${process.pid}-${Date.now()}`;
  return { wallMs: () => Date.now(), uptimeMs: () => uptime0 + (performance.now() - perf0), bootId: () => boot };
}

export class Governor {
  private readonly config: GovernorConfig;
  private readonly probes: MachineProbes;
  private readonly gates: Gate[];
  private gateStates: GateState[] = [];
  private readonly windows: SendWindows;
  private readonly bucket: TokenBucket | undefined;
  readonly budget: Budget | undefined;
  private readonly clock: ClockSource;
  private readonly log: Logger;
  private readonly diskLow: (() => boolean) | undefined;
  /** Counts the sink's sockets; hand it to the sink driver (DriverEnv.wire). */
  readonly sinkWire: SocketMeter;
  /** Counts the control connection's sockets. */
  readonly controlWire: SocketMeter;
  private readonly deferred: Counter;
  private readonly classBytes: Counter;
  private readonly expiredHeld: Counter;
  private unfollowExpiry: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastIface: number | undefined;
  private readonly listeners = new Set<() => void>();
  private stopped = false;
  private lastHeld = new Map<string, string>();
  /**
   * Bytes admitted and not yet seen on a socket: the envelopes alone, a lower bound of what each publish puts
   * on the wire, so the sockets' counts always catch up with it (framing, acknowledgements and TLS are taken
   * from the bucket and counted in the budget as the sockets report them).
   */
  private estimated = 0;
  /** The size of the last batch the budget refused, by class: the class waits until it fits (a new day, a new cycle). */
  private readonly refused = new Map<PriorityClass, number>();
  private refusedDay = '';

  constructor(config: GovernorConfig, opts: GovernorOptions) {
    this.config = config;
    this.log = opts.log;
    this.diskLow = opts.diskLow;
    this.probes = new MachineProbes(config.proc_root, config.sys_root);
    this.clock = opts.clock ?? systemClock(this.probes);
    this.gates = buildGates(config, this.probes);
    this.windows = new SendWindows(config.windows);
    const bw = config.bandwidth;
    if (bw) this.bucket = new TokenBucket(bw.bytes_per_second, bw.burst ?? 2 * bw.bytes_per_second, this.clock.uptimeMs());
    if (config.budget) {
      this.budget = new Budget(config.budget, join(opts.dataDir, config.budget.state_file), this.clock);
      const unreadable = this.budget.unreadable;
      if (unreadable) {
        this.log.error(
          { code: unreadable.error.code, err: unreadable.error.message, setAsideAs: unreadable.setAsideAs },
          'budget counters unreadable: the file was set aside and this cycle and day are counted as spent down to the reserves (normal and bulk wait for the next day or cycle; critical and control go on); restore the file or remove the new one to start from zero',
        );
      }
    }
    const t = opts.telemetry;
    const linkBytes = t.counter(LINK_BYTES, LINK_BYTES_HELP, ['direction', 'connection']);
    const onBytes = (i: number, o: number) => {
      // A socket that outlives this governor (the control connection's, after a new config) no longer
      // writes the budget file: the next governor owns it.
      if (this.stopped) return;
      this.budget?.addWire(i + o);
      this.reconcileBucket(i + o);
    };
    this.sinkWire = new SocketMeter(linkBytes, 'sink', onBytes);
    this.controlWire = new SocketMeter(linkBytes, 'control', onBytes);
    this.deferred = t.counter('edge_governor_deferred_total', 'Sends the governor deferred (the data waits in the queue), by class and reason', [
      'class',
      'reason',
    ]);
    this.expiredHeld = t.counter(
      'edge_governor_expired_records_total',
      "Records that expired (the queue's max_age) while the governor held their class, by class and the holding reason",
      ['class', 'reason'],
    );
    this.classBytes = t.counter('edge_governor_class_bytes_total', 'Envelope bytes sent, by priority class', ['class']);
    t.gauge(
      'edge_forwarding_held',
      'Forwarding held on purpose (1) by a gate (cpu, memory, power, centre), a send window or the budget, by reason',
      ['reason'],
      (g) => {
        for (const reason of ['cpu', 'memory', 'power', 'centre', 'window', 'budget']) g.set({ reason }, this.heldReasons().has(reason) ? 1 : 0);
      },
    );
    t.gauge('edge_governor_gate_open', 'Whether each gate is open (1) or closed (0)', ['gate'], (g) => {
      for (const s of this.gateStates) g.set({ gate: s.name }, s.open ? 1 : 0);
      if (this.diskLow) g.set({ gate: 'disk' }, this.diskLow() ? 0 : 1);
    });
    if (this.budget) {
      const budget = this.budget;
      t.gauge('edge_governor_budget_used_bytes', 'Bytes counted in the current period (the larger of socket and interface counts)', ['period'], (g) => {
        budget.tick();
        g.set({ period: 'cycle' }, budget.total('cycle'));
        g.set({ period: 'day' }, budget.total('day'));
      });
    }
  }

  /** Socket bytes replace the estimate taken at admission; bytes beyond it (acks, keepalives, TLS) are taken too. */
  private reconcileBucket(bytes: number): void {
    const beyond = bytes - this.estimated;
    this.estimated = Math.max(0, this.estimated - bytes);
    if (beyond > 0) this.bucket?.take(beyond, this.clock.uptimeMs());
  }

  /** With `gates.centre`: hand it to the sink (DriverEnv.centreOnline); every change is checked at once. */
  get centreOnline(): ((online: boolean) => void) | undefined {
    const gate = this.gates.find((g): g is CentreGate => g instanceof CentreGate);
    if (!gate) return undefined;
    return (online) => {
      gate.set(online);
      if (!this.stopped) this.check();
    };
  }

  get reconnectFloorMs(): number | undefined {
    return this.config.gates.metered?.reconnect_floor;
  }

  classOf(stream: string): PriorityClass {
    return this.config.classes[stream] ?? 'normal';
  }

  /** Reads the gates (and the interface counters); run every check_interval once started. */
  check(): void {
    this.gateStates = this.gates.map((g) => g.check());
    this.sinkWire.sample();
    this.controlWire.sample();
    const ifName = this.config.budget?.interface;
    if (ifName && this.budget) {
      const c = this.probes.interfaceBytes(ifName);
      if (c) {
        const total = c.rx + c.tx;
        // A counter that went down was reset (interface re-created): count it from zero.
        if (this.lastIface !== undefined) this.budget.addInterface(total >= this.lastIface ? total - this.lastIface : total);
        this.lastIface = total;
      }
    }
    this.budget?.tick();
    const day = this.budget?.snapshot().dayKey ?? '';
    if (day !== this.refusedDay) {
      this.refused.clear(); // a new day (or cycle): every class may try its batch again
      this.refusedDay = day;
    }
    this.logChanges();
    for (const l of this.listeners) l();
  }

  private logChanges(): void {
    const now = new Map<string, string>();
    for (const s of this.gateStates) if (!s.open) now.set(s.name, s.detail);
    for (const [name, detail] of now) if (!this.lastHeld.has(name)) this.log.info({ gate: name, detail }, 'gate closed; its classes wait');
    for (const name of this.lastHeld.keys()) if (!now.has(name)) this.log.info({ gate: name }, 'gate open again');
    this.lastHeld = now;
  }

  /** Why `cls` (of `stream`) may not send `bytes` now; undefined when it may. */
  hold(stream: string, bytes = 0): Hold {
    const cls = this.classOf(stream);
    for (const s of this.gateStates) if (!s.open && s.holds.includes(cls)) return { reason: s.reason, detail: s.detail };
    const inWindow = this.windows.allows(stream, cls, this.budget?.clock.now() ?? this.clock.wallMs());
    if (inWindow === false) return { reason: 'window', detail: `${stream} (${cls}) sends only inside its send windows` };
    // Bytes admitted but not yet seen on a socket count as spent: the budget holds to the byte.
    const why = this.budget?.holds(cls, Math.max(bytes, this.refused.get(cls) ?? 0), this.estimated);
    if (why) return { reason: 'budget', detail: why };
    if (this.bucket && cls !== 'critical' && this.bucket.available(this.clock.uptimeMs()) <= 0) return { reason: 'bandwidth', detail: 'bandwidth cap' };
    return undefined;
  }

  /** A filter for the queue: the streams that may send now. */
  allows(): (stream: string) => boolean {
    this.sinkWire.sample();
    this.budget?.tick();
    return (stream) => this.hold(stream) === undefined;
  }

  /**
   * A sealed batch of `bytes` for `stream` is about to go: true and charged when it fits; false when it
   * must wait (counted by reason), and the sender hands it back to the queue.
   */
  admit(stream: string, bytes: number): boolean {
    const why = this.hold(stream, bytes);
    const cls = this.classOf(stream);
    if (why && why.reason !== 'bandwidth') {
      this.deferred.inc({ class: cls, reason: why.reason });
      if (why.reason === 'budget') this.refused.set(cls, bytes);
      return false;
    }
    this.budget?.charge(cls, bytes);
    this.bucket?.take(bytes, this.clock.uptimeMs());
    this.estimated += bytes;
    this.classBytes.inc({ class: cls }, bytes);
    return true;
  }

  /**
   * For the queue (`nextBatch`'s `maxBytes`): the stored bytes a stream's next batches may hold so they can be
   * admitted now: what its class's budget has left (today's allowance, the pool, the caps) and the bucket's
   * burst, less room for the envelope's header and tag. The queue takes at least one chunk whatever it says.
   */
  batchBytes(): (stream: string) => number {
    return (stream) => {
      const cls = this.classOf(stream);
      let room = this.budget?.room(cls, this.estimated) ?? Number.POSITIVE_INFINITY;
      if (this.bucket && cls !== 'critical') room = Math.min(room, this.bucket.burst);
      return room - ENVELOPE_HEADROOM - Buffer.byteLength(stream);
    };
  }

  /**
   * Counts the queue's expiry while a class is held, with the holding reason (the queue counts every expired
   * record as `expired` too). `queue` is the queue's `onDropped`; stopped with the governor.
   */
  followExpiry(onDropped: (listener: (drop: { stream: string; reason: string; records: number }) => void) => () => void): void {
    this.unfollowExpiry = onDropped((drop) => {
      if (drop.reason !== 'expired' || this.stopped) return;
      const why = this.hold(drop.stream);
      if (why) this.expiredHeld.inc({ class: this.classOf(drop.stream), reason: why.reason }, drop.records);
    });
  }

  /** Bytes on the wire the sender may still put out now before the bucket is empty (Infinity: no cap). */
  room(): number {
    return this.bucket ? Math.max(0, this.bucket.available(this.clock.uptimeMs())) : Number.POSITIVE_INFINITY;
  }

  /** How long the sender should wait before asking again when nothing may send (the next check, or a refill). */
  retryInMs(): number {
    const refill = this.bucket ? this.bucket.waitFor(1, this.clock.uptimeMs()) : Number.POSITIVE_INFINITY;
    return Math.max(5, Math.min(this.config.check_interval, refill > 0 ? refill : this.config.check_interval));
  }

  /** Calls `listener` after every check (the sender wakes and asks again). */
  onCheck(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The reasons currently holding some class (cpu, memory, power, window, budget). */
  heldReasons(): Set<string> {
    const reasons = new Set<string>();
    for (const s of this.gateStates) if (!s.open && s.holds.length > 0) reasons.add(s.reason);
    const now = this.budget?.clock.now() ?? this.clock.wallMs();
    for (const cls of ['critical', 'control', 'normal', 'bulk'] as const) {
      if (this.windows.classOpen(cls, now) === false) reasons.add('window');
      if (this.budget?.holds(cls) !== undefined) reasons.add('budget');
    }
    return reasons;
  }

  status(): { gates: GateState[]; held: string[]; budget: ReturnType<Budget['snapshot']> | undefined } {
    return { gates: this.gateStates, held: [...this.heldReasons()], budget: this.budget?.snapshot() };
  }

  start(): void {
    this.check();
    this.timer ??= setInterval(() => this.check(), this.config.check_interval);
    this.timer.unref();
  }

  /** Stops checking and writes the counters exactly. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unfollowExpiry?.();
    this.sinkWire.sample();
    this.controlWire.sample();
    this.budget?.persist(0);
    this.stopped = true;
  }
}

/**
 * The retained status: a birth on every (re)connect, every minute, and when something an operator would act
 * on changed (checked every 5 s); the will says `{online:false, session}`. A will left by an older connection
 * (a session at or below ours) that shows up on our own topic while we are connected is answered with a new
 * birth, so a stale "offline" never stays the last word.
 */
import type { LastExit } from './state-files.ts';
import type { ApplyReport } from './seams.ts';

export interface StatusInputs {
  device: string;
  session: number;
  version: string;
  started: string;
  groups: readonly string[];
  lastExit: LastExit | undefined;
  agent(): {
    queue: { records: number; bytes: number; oldest_age_s: number };
    sources: Record<string, string>;
    sink: { state: string };
  };
  config(): { version: string; layers: unknown[]; last_apply: ApplyReport | undefined };
  refused(): Record<string, number>;
  lastError(): string | undefined;
  /** Self-update: release, committed, trial, last result (agent/update/status.ts); absent outside a release layout. */
  update?(): unknown;
  /** What parts beside remote control add (the self-update delivery's `update_delivery`). */
  extra?(): Record<string, unknown>;
}

export type Publish = (topic: string, payload: string, retain: boolean) => Promise<void>;

const PERIOD_MS = 60_000;
const CHANGE_CHECK_MS = 5_000;

export class StatusReporter {
  private readonly inputs: StatusInputs;
  private readonly topic: string;
  private readonly publish: Publish;
  private readonly isConnected: () => boolean;
  private periodic: NodeJS.Timeout | undefined;
  private changeCheck: NodeJS.Timeout | undefined;
  private lastShape = '';
  private stopped = false;
  /** Births sent because a stale will showed up (tests and status read it). */
  reasserted = 0;

  constructor(inputs: StatusInputs, topic: string, publish: Publish, isConnected: () => boolean) {
    this.inputs = inputs;
    this.topic = topic;
    this.publish = publish;
    this.isConnected = isConnected;
  }

  will(): string {
    return JSON.stringify({ online: false, session: this.inputs.session, device: this.inputs.device });
  }

  /** The offline status a clean stop leaves (a will is only for unclean ends). */
  offline(): string {
    return this.will();
  }

  birth(): Record<string, unknown> {
    const i = this.inputs;
    const agent = i.agent();
    const lastError = i.lastError();
    const update = i.update?.();
    return {
      online: true,
      session: i.session,
      device: i.device,
      version: i.version,
      started: i.started,
      groups: i.groups,
      config: i.config(),
      queue: agent.queue,
      sources: agent.sources,
      sink: agent.sink,
      ...(lastError === undefined ? {} : { last_error: lastError }),
      ...(i.lastExit ? { last_exit: i.lastExit } : {}),
      ...(update === undefined ? {} : { update }),
      refused: i.refused(),
      ...i.extra?.(),
      at: new Date().toISOString(),
    };
  }

  start(): void {
    this.periodic = setInterval(() => void this.publishBirth(), PERIOD_MS).unref();
    this.changeCheck = setInterval(() => {
      if (this.shape(this.birth()) !== this.lastShape) void this.publishBirth();
    }, CHANGE_CHECK_MS).unref();
  }

  /** What a change worth a new birth is: states and config, not queue numbers that move all the time. */
  private shape(birth: Record<string, unknown>): string {
    const { sources, sink, config, last_error, refused, update, update_delivery } = birth;
    const delivery = update_delivery as { bytes?: unknown } | undefined;
    // Download progress is in every status sent, but is no reason to send one.
    return JSON.stringify({ sources, sink, config, last_error, refused, update, delivery: delivery ? { ...delivery, bytes: undefined } : undefined });
  }

  async publishBirth(): Promise<void> {
    if (!this.isConnected() || this.stopped) return;
    const birth = this.birth();
    this.lastShape = this.shape(birth);
    await this.publish(this.topic, JSON.stringify(birth), true);
  }

  /** Our own retained status, as the broker delivers it (at subscribe, and whenever a will is published). */
  seen(payload: Buffer): void {
    let status: unknown;
    try {
      status = JSON.parse(payload.toString('utf8'));
    } catch {
      status = undefined;
    }
    const s = status as { online?: unknown; session?: unknown } | undefined;
    // Anything but our own online birth (a stale will, garbage someone else published, an empty retained
    // message) is replaced by our birth.
    const ours = s !== undefined && s !== null && s.online === true && s.session === this.inputs.session;
    if (ours || !this.isConnected()) return;
    if (s?.online === false && typeof s.session === 'number' && s.session > this.inputs.session) return; // a newer run of us?
    this.reasserted++;
    void this.publishBirth();
  }

  stop(): void {
    // Our own offline status, published on the way out, comes back to us: it must not be answered.
    this.stopped = true;
    clearInterval(this.periodic);
    clearInterval(this.changeCheck);
  }
}

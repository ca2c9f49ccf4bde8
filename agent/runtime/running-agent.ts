/** What a running agent is, as its callers see it (agent.ts starts one; live-agent.ts is it). */
import type { SourceRunner } from './source-runner.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { Queue, QueueStats } from '../queue/queue.ts';
import type { RecoveryReport } from '../queue/recovery.ts';
import type { RunningReceiver } from '../receiver/start.ts';
import type { Governor } from '../governor/governor.ts';
import type { Sender, SenderStats } from './sender.ts';
import type { Telemetry } from '../telemetry/registry.ts';
import type { HealthResult } from './health.ts';

export interface AgentStatus {
  queue: QueueStats;
  /** Set when the queue file found at start was unusable and was replaced (quarantined and salvaged). */
  recovery: RecoveryReport | undefined;
  sender: SenderStats;
  sink: { connected: boolean };
  sources: Record<string, { state: string; counters: Record<string, number> }>;
  /** Gates, what is held and why, the budget's counters (docs/governor.md); present with a `governor:` section. */
  governor?: ReturnType<Governor['status']>;
}

/** What an apply restarted: the named sources, the sender and sink, or everything. */
export interface ApplyResult {
  restarted: { sources: string[]; sink: boolean; whole: boolean };
}

/**
 * A running agent: sources → queue → sender → sink, and optionally the embedded broker and receiver. `queue`,
 * `sender` and `receiver` are the ones running now: a whole restart (`apply`) replaces them.
 */
export interface RunningAgent {
  readonly queue: Queue;
  readonly sender: Sender;
  /** The governor of the delivery running now (docs/governor.md); absent without a `governor:` section. */
  readonly governor?: Governor | undefined;
  readonly receiver: RunningReceiver | undefined;
  /** The registry every part of this agent reports into (the same one across applies). */
  readonly telemetry: Telemetry;
  /** The configuration running now. */
  readonly loaded: LoadedConfig;
  status(): AgentStatus;
  /** The runner of the source named `name` now (remote control pauses and resumes it). */
  source(name: string): SourceRunner | undefined;
  /**
   * Runs `next` live: a changed, added or removed source restarts alone; a changed sink or sender settings
   * restart the sender and sink (queued records stay, batches in flight go again); device, keys, queue,
   * batch, streams, data_dir, broker or receiver changes restart everything in process. Log level changes
   * apply in place. Rejects (code APPLY_FAILED) when a part cannot start; what could not start is started by
   * the next apply.
   */
  apply(next: LoadedConfig): Promise<ApplyResult>;
  /**
   * Resolves `{ok: true}` once every source runs, the sink is connected and a batch was acknowledged after
   * `sinceMs` (a canary record is queued on stream `_canary` if nothing else waits to go), or the first
   * check that still fails after `deadlineMs` milliseconds. `label` goes into the canary record.
   */
  health(sinceMs: number, deadlineMs: number, label?: string): Promise<HealthResult>;
  stop(): Promise<void>;
}

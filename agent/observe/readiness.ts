/**
 * /livez and /readyz, written down (docs/observability.md "Health"):
 *
 * - live: the event loop answers. The handler itself is the proof; it reads nothing.
 * - ready: both checks pass.
 *   - sink: the sink is connected, or it was connected (or the endpoint started) less than
 *     `ready_sink_grace` ago: a reconnect inside the grace is not an outage.
 *   - backlog: the oldest record not yet delivered is younger than `ready_max_oldest_age`, unless something
 *     holds forwarding on purpose (`edge_forwarding_held{reason} = 1`: the governor's closed send window, an
 *     operator's pause). A held agent is "held, not stuck": the age is reported, the check passes.
 *
 * Fluent Bit and Vector users report health checks that stay green while nothing is delivered: the backlog
 * check is the one that turns a sink that connects but never acknowledges red.
 */
import type { Telemetry } from '../telemetry/registry.ts';

export const HELD_GAUGE = 'edge_forwarding_held';
export const HELD_HELP = '1 while forwarding is held on purpose, by reason (a closed send window, an operator pause)';
const OLDEST_GAUGE = 'edge_queue_oldest_record_age_seconds';

export interface ReadinessSettings {
  sinkGraceMs: number;
  maxOldestAgeMs: number;
}

export interface Readiness {
  ready: boolean;
  sink: { ok: boolean; connected: boolean; detail: string };
  backlog: { ok: boolean; oldestAgeSeconds: number; held: string[]; detail: string };
}

/**
 * Whether the sink is connected now (read live), and when it was last seen connected: looked at on every
 * read and by the endpoint once a second, so a disconnection is dated to within a second.
 */
export class SinkWatch {
  lastConnectedAt: number;
  private readonly read: () => boolean;

  constructor(read: () => boolean, now = Date.now()) {
    this.read = read;
    // The endpoint's start counts as "connected": a sink still connecting at start-up gets the grace too.
    this.lastConnectedAt = now;
  }

  get connected(): boolean {
    const connected = this.read();
    if (connected) this.lastConnectedAt = Date.now();
    return connected;
  }
}

/** The reasons forwarding is held for now (gauge value 1), read from the registry. */
export function heldReasons(telemetry: Telemetry): string[] {
  const gauge = telemetry.get(HELD_GAUGE);
  if (gauge?.type !== 'gauge') return [];
  return gauge
    .samples()
    .filter((s) => 'value' in s && s.value > 0)
    .map((s) => s.labels.reason ?? 'held');
}

/** The oldest age over every stream, seconds. */
export function oldestAgeSeconds(telemetry: Telemetry): number {
  const gauge = telemetry.get(OLDEST_GAUGE);
  if (gauge?.type !== 'gauge') return 0;
  let oldest = 0;
  for (const s of gauge.samples()) if ('value' in s && s.value > oldest) oldest = s.value;
  return oldest;
}

export function readiness(telemetry: Telemetry, sink: SinkWatch, settings: ReadinessSettings, now = Date.now()): Readiness {
  const connected = sink.connected;
  const awayMs = connected ? 0 : now - sink.lastConnectedAt;
  const sinkOk = connected || awayMs < settings.sinkGraceMs;
  const held = heldReasons(telemetry);
  const oldest = oldestAgeSeconds(telemetry);
  const tooOld = oldest * 1000 > settings.maxOldestAgeMs;
  const backlogOk = !tooOld || held.length > 0;
  const maxS = settings.maxOldestAgeMs / 1000;
  return {
    ready: sinkOk && backlogOk,
    sink: {
      ok: sinkOk,
      connected,
      detail: connected ? 'connected' : `not connected for ${Math.round(awayMs / 1000)} s (grace ${Math.round(settings.sinkGraceMs / 1000)} s)`,
    },
    backlog: {
      ok: backlogOk,
      oldestAgeSeconds: oldest,
      held,
      detail:
        held.length > 0
          ? `forwarding held on purpose (${held.join(', ')}); oldest record ${oldest.toFixed(1)} s old`
          : `oldest undelivered record ${oldest.toFixed(1)} s old (limit ${maxS} s)`,
    },
  };
}

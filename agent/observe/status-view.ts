/**
 * One snapshot of the running agent for people: the status page, `/api/status` and `edge-agent status` all
 * show this. It names things (streams, sources, the sink's type) and counts them; it never carries a
 * setting's value, so no secret of the configuration can reach it. Recent problems are log lines, which the
 * logger has already redacted.
 */
import { recentProblems } from '../log.ts';
import type { RunningAgent } from '../runtime/running-agent.ts';
import { VERSION } from '../version.ts';
import type { History } from './history.ts';
import { type Readiness, readiness, type ReadinessSettings, type SinkWatch } from './readiness.ts';

export interface StatusSnapshot {
  version: string;
  device: string;
  time: string;
  uptimeSeconds: number;
  lastExit: string;
  ready: Readiness;
  forwarding: { paused: boolean; held: string[] };
  sink: { type: string; connected: boolean; reconnects: number };
  sources: { name: string; stream: string; state: string; records: number }[];
  queue: {
    records: number;
    bytes: number;
    streams: { name: string; records: number; bytes: number; oldestAgeSeconds: number }[];
    dropped: Record<string, Record<string, number>>;
  };
  sent: { records: number; batches: number; bytes: number; retries: number; rejected: number; inFlight: number };
  rates: { inPerSecond: number; outPerSecond: number };
  lastErrors: { time: string; level: string; message: string }[];
}

export interface StatusContext {
  agent: RunningAgent;
  sink: SinkWatch;
  settings: ReadinessSettings;
  history: History;
  startedAt: number;
  lastExit: string;
}

export function statusSnapshot(ctx: StatusContext, now = Date.now()): StatusSnapshot {
  const { agent } = ctx;
  const status = agent.status();
  const config = agent.loaded.config;
  const ready = readiness(agent.telemetry, ctx.sink, ctx.settings, now);
  const oldest = agent.telemetry.get('edge_queue_oldest_record_age_seconds');
  const ages = new Map<string, number>();
  for (const s of oldest?.samples() ?? []) if ('value' in s) ages.set(s.labels.stream ?? '', s.value);
  const sinkEvents = agent.telemetry.get('edge_sink_events_total');
  let reconnects = 0;
  for (const s of sinkEvents?.samples() ?? []) if ('value' in s && s.labels.event === 'reconnects') reconnects += s.value;
  const series = ctx.history.series();
  const last = series.time.length - 1;
  return {
    version: VERSION,
    device: config.device?.id ?? '',
    time: new Date(now).toISOString(),
    uptimeSeconds: Math.round((now - ctx.startedAt) / 1000),
    lastExit: ctx.lastExit,
    ready,
    forwarding: { paused: agent.sender.paused, held: ready.backlog.held },
    sink: { type: config.sink?.type ?? '', connected: ready.sink.connected, reconnects },
    sources: config.sources.map((s) => ({
      name: s.name,
      stream: s.stream ?? s.name,
      state: status.sources[s.name]?.state ?? 'not started',
      records: status.sources[s.name]?.counters.records ?? 0,
    })),
    queue: {
      records: status.queue.records,
      bytes: status.queue.bytes,
      streams: Object.entries(status.queue.streams).map(([name, s]) => ({ name, records: s.records, bytes: s.bytes, oldestAgeSeconds: ages.get(name) ?? 0 })),
      dropped: status.queue.drops as Record<string, Record<string, number>>,
    },
    sent: {
      records: status.sender.recordsSent,
      batches: status.sender.batchesSent,
      bytes: status.sender.bytesSent,
      retries: status.sender.retries,
      rejected: status.sender.rejected,
      inFlight: status.sender.inFlight,
    },
    rates: { inPerSecond: last >= 0 ? series.inRate[last]! : 0, outPerSecond: last >= 0 ? series.outRate[last]! : 0 },
    lastErrors: recentProblems().map(problemLine).reverse(),
  };
}

function problemLine(line: string): { time: string; level: string; message: string } {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const err = typeof entry.err === 'string' ? `: ${entry.err}` : '';
    return { time: String(entry.time ?? ''), level: String(entry.level ?? ''), message: `${String(entry.msg ?? '')}${err}`.slice(0, 300) };
  } catch {
    return { time: '', level: 'warn', message: line.slice(0, 300) };
  }
}

/**
 * Scenarios run on the shipped executable (see executable.ts): full-rate end to end, fixed-rate write
 * amplification, RSS with a backlog queued and the sink unreachable, and draining a backlog. Each returns
 * plain figures; run.ts formats them. The subscriber counts records from the envelope headers, per device,
 * and every run uses a device id of its own.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AgentProcess, writeAgentConfig, type AgentConfig } from './executable.ts';
import { ioDelta, type IoCounters } from './proc.ts';
import type { Subscriber } from './subscriber.ts';

export interface ExeContext {
  executable: string;
  core: string;
  workDir: string;
  /** The bench broker's URL and its counting subscriber, (re)started if something stopped it. */
  broker: () => Promise<{ url: string; subscriber: Subscriber }>;
}

export interface ExeResult {
  kind: 'exe';
  scenario: string;
  device: string;
  records: number;
  complete: boolean;
  seconds: number;
  recordsPerSecond: number;
  /** From the first batch's arrival to the last: start-up (the executable's start, queue open) left out. */
  recordsPerSecondAfterFirst: number;
  cpuSeconds: number;
  peakRss: number;
  peakAnon: number;
  peakFile: number;
  rssAtEnd: number;
  rssAnonAtEnd: number;
  rssFileAtEnd: number;
  io: IoCounters;
  writeBytesPerRecord: number;
  wcharPerRecord: number;
  batches: number;
  envelopeBytesPerRecord: number;
  settings: AgentConfig & { heapEnv: Record<string, string> };
}

let runs = 0;
const nextDevice = (label: string) => `bench-${label}-${process.pid}-${++runs}`;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `written()` (write_bytes of the processes measured) stops moving for `quietMs` (the last deletions committed), at most `maxMs`. */
export async function settleWrites(written: () => number, quietMs = 300, maxMs = 3_000): Promise<void> {
  const end = performance.now() + maxMs;
  let last = written();
  let since = performance.now();
  while (performance.now() < end) {
    await wait(50);
    const now = written();
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) return;
  }
}

function result(
  scenario: string,
  agent: AgentProcess,
  c: AgentConfig,
  heapEnv: Record<string, string>,
  m: { records: number; complete: boolean; seconds: number; afterFirst: number; io: IoCounters; batches: number; envelopeBytes: number },
): ExeResult {
  const mem = agent.memory();
  return {
    kind: 'exe',
    scenario,
    device: c.device,
    records: m.records,
    complete: m.complete,
    seconds: m.seconds,
    recordsPerSecond: m.records / m.seconds,
    recordsPerSecondAfterFirst: m.afterFirst,
    cpuSeconds: agent.cpuSeconds(),
    peakRss: mem.hwm,
    peakAnon: agent.peakAnon,
    peakFile: agent.peakFile,
    rssAtEnd: mem.rss,
    rssAnonAtEnd: mem.anon,
    rssFileAtEnd: mem.file,
    io: m.io,
    writeBytesPerRecord: m.io.write_bytes / Math.max(1, m.records),
    wcharPerRecord: m.io.wchar / Math.max(1, m.records),
    batches: m.batches,
    envelopeBytesPerRecord: m.envelopeBytes / Math.max(1, m.records),
    settings: { ...c, heapEnv },
  };
}

/**
 * `count: records, rate: 0`: the clock runs from spawn until the subscriber has counted every record. Disk
 * bytes: the process's whole write_bytes once the writes settled (the deletions after the last acks included).
 */
export async function fullRate(
  ctx: ExeContext,
  o: { records: number; commitInterval?: string; batch?: number; maxPending?: number; heapEnv?: Record<string, string>; timeoutMs?: number },
): Promise<ExeResult> {
  const { url, subscriber } = await ctx.broker();
  const c: AgentConfig = {
    device: nextDevice('full'),
    url,
    rate: 0,
    count: o.records,
    commitInterval: o.commitInterval,
    batch: o.batch,
    maxPending: o.maxPending,
  };
  const dir = mkdtempSync(join(ctx.workDir, 'exe-'));
  const agent = new AgentProcess(ctx.executable, writeAgentConfig(dir, c), ctx.core, o.heapEnv ?? {});
  try {
    const io0 = agent.io();
    const complete = await subscriber.until(
      () => subscriber.device(c.device).records >= o.records,
      o.timeoutMs ?? 120_000,
      () => !agent.running,
    );
    const tDone = performance.now();
    if (!agent.running) throw new Error(`the executable exited during the run (${agent.failure})`);
    await settleWrites(() => agent.io().write_bytes);
    const a = subscriber.device(c.device);
    const afterFirst = a.messages > 1 ? (a.records - a.records / a.messages) / ((a.last - a.first) / 1000) : 0;
    return result('full rate', agent, c, o.heapEnv ?? {}, {
      records: a.records,
      complete,
      seconds: (tDone - agent.spawnedAt) / 1000,
      afterFirst,
      io: ioDelta(io0, agent.io()),
      batches: a.messages,
      envelopeBytes: a.bytes,
    });
  } finally {
    await agent.stop();
  }
}

/**
 * A fixed `rate` for `warmupS + seconds`: disk bytes and records (as counted by the subscriber) over the
 * last `seconds` only, so start-up (keys, schema) does not count.
 */
export async function fixedRate(ctx: ExeContext, o: { rate: number; seconds: number; warmupS?: number; commitInterval?: string }): Promise<ExeResult> {
  const { url, subscriber } = await ctx.broker();
  const c: AgentConfig = { device: nextDevice(`r${o.rate}`), url, rate: o.rate, count: 0, commitInterval: o.commitInterval };
  const dir = mkdtempSync(join(ctx.workDir, 'exe-'));
  const agent = new AgentProcess(ctx.executable, writeAgentConfig(dir, c), ctx.core);
  try {
    await wait((o.warmupS ?? 3) * 1000);
    if (!agent.running) throw new Error(`the executable exited during warm-up (${agent.failure})`);
    const io0 = agent.io();
    const a0 = subscriber.device(c.device);
    const t0 = performance.now();
    await wait(o.seconds * 1000);
    const io1 = agent.io();
    const a1 = subscriber.device(c.device);
    const seconds = (performance.now() - t0) / 1000;
    if (!agent.running) throw new Error(`the executable exited during the run (${agent.failure})`);
    const records = a1.records - a0.records;
    return result(
      `${o.rate} rec/s`,
      agent,
      c,
      {},
      {
        records,
        complete: true,
        seconds,
        afterFirst: records / seconds,
        io: ioDelta(io0, io1),
        batches: a1.messages - a0.messages,
        envelopeBytes: a1.bytes - a0.bytes,
      },
    );
  } finally {
    await agent.stop();
  }
}

/** Records in a queue file that no process has open (the agent stopped cleanly). */
export function queuedRecords(queueFile: string): number {
  const db = new Database(queueFile, { readonly: true });
  try {
    return (db.prepare('SELECT coalesce(sum(count), 0) AS n FROM chunks').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

export interface BacklogRssResult {
  kind: 'backlog-rss';
  queuedAtStart: number;
  queuedAtEnd: number;
  seconds: number;
  peakRss: number;
  peakAnon: number;
  rssAtEnd: number;
  rssAnonAtEnd: number;
  rssFileAtEnd: number;
}

/**
 * The agent started on `dataDir`/queue.db (already holding `queuedAtStart` records) with the synthetic
 * source at `rate` and the sink unreachable (a port nothing listens on): memory after `seconds`.
 */
export async function backlogRss(ctx: ExeContext, o: { dir: string; rate: number; seconds: number; unreachableUrl: string }): Promise<BacklogRssResult> {
  const queueFile = join(o.dir, 'data', 'queue.db');
  const c: AgentConfig = { device: nextDevice('backlog'), url: o.unreachableUrl, rate: o.rate, count: 0 };
  const config = writeAgentConfig(o.dir, c);
  const queuedAtStart = queuedRecordsIfAny(queueFile);
  const agent = new AgentProcess(ctx.executable, config, ctx.core);
  let m: ReturnType<AgentProcess['memory']>;
  try {
    await wait(o.seconds * 1000);
    if (!agent.running) throw new Error(`the executable exited during the run (${agent.failure})`);
    m = agent.memory();
  } finally {
    await agent.stop();
  }
  return {
    kind: 'backlog-rss',
    queuedAtStart,
    queuedAtEnd: queuedRecords(queueFile),
    seconds: o.seconds,
    peakRss: m.hwm,
    peakAnon: agent.peakAnon,
    rssAtEnd: m.rss,
    rssAnonAtEnd: m.anon,
    rssFileAtEnd: m.file,
  };
}

function queuedRecordsIfAny(queueFile: string): number {
  try {
    return queuedRecords(queueFile);
  } catch {
    return 0; // no queue yet
  }
}

export interface DrainResult {
  kind: 'drain';
  backlog: number;
  complete: boolean;
  /** Spawn until the subscriber counted `backlog` records (start-up included). */
  seconds: number;
  recordsPerSecond: number;
  /** First arrival until `backlog` records arrived. */
  recordsPerSecondAfterFirst: number;
  peakRss: number;
  peakAnon: number;
  rssAnonAtEnd: number;
  cpuSeconds: number;
  writeBytesPerRecord: number;
  queuedAtEnd: number;
}

/**
 * The agent started on a queue holding `backlog` records, sink reachable, synthetic source at `rate`
 * continuing: the time until `backlog` records have arrived (the queue is FIFO within the one stream, so the
 * backlog leaves before what is ingested meanwhile).
 */
export async function drain(ctx: ExeContext, o: { dir: string; rate: number; timeoutMs?: number }): Promise<DrainResult> {
  const { url, subscriber } = await ctx.broker();
  const queueFile = join(o.dir, 'data', 'queue.db');
  const backlog = queuedRecords(queueFile);
  const c: AgentConfig = { device: nextDevice('drain'), url, rate: o.rate, count: 0 };
  const agent = new AgentProcess(ctx.executable, writeAgentConfig(o.dir, c), ctx.core);
  let r: DrainResult;
  try {
    const io0 = agent.io();
    const complete = await subscriber.until(
      () => subscriber.device(c.device).records >= backlog,
      o.timeoutMs ?? 120_000,
      () => !agent.running,
    );
    const tDone = performance.now();
    if (!agent.running) throw new Error(`the executable exited during the drain (${agent.failure})`);
    const a = subscriber.device(c.device);
    const m = agent.memory();
    const seconds = (tDone - agent.spawnedAt) / 1000;
    r = {
      kind: 'drain',
      backlog,
      complete,
      seconds,
      recordsPerSecond: a.records / seconds,
      recordsPerSecondAfterFirst: a.messages > 1 ? (a.records - a.records / a.messages) / ((a.last - a.first) / 1000) : 0,
      peakRss: m.hwm,
      peakAnon: agent.peakAnon,
      rssAnonAtEnd: m.anon,
      cpuSeconds: agent.cpuSeconds(),
      writeBytesPerRecord: ioDelta(io0, agent.io()).write_bytes / Math.max(1, a.records),
      queuedAtEnd: 0,
    };
  } finally {
    await agent.stop();
  }
  r.queuedAtEnd = queuedRecords(queueFile);
  return r;
}

/** The bench's printed report: tables of what run.ts measured, with the product goals beside the figures. */
import type { BacklogRssResult, DrainResult, ExeResult } from './executable-scenarios.ts';
import { parseConfig } from '../../agent/app.ts';
import { fmtB, fmtInt, fmtK, fmtMiB, fmtMiBn, fmtMs, median, mid, spread, table } from './format.ts';
import type { ProfileSummary } from './profile.ts';
import type { Scenario } from './run.ts';

export const GOALS = {
  ingest: 300_000,
  e2e: 200_000,
  rss: 80 * 1024 * 1024,
  rssBacklog: 64 * 1024 * 1024,
  drain: 150_000,
  wire: 16,
};

export type WorkerResult = Record<string, unknown> & {
  kind: 'ingest' | 'e2e';
  records: number;
  complete: boolean;
  seconds: number;
  recordsPerSecond: number;
  cpuSeconds: number;
  peakRss: number;
  writeBytesPerRecord: number;
  wcharPerRecord: number;
  commits: number;
  node: string;
  sqlite: string;
  execArgv: string[];
  settings: Record<string, unknown>;
};

export interface FsyncResult {
  when: string;
  at: string;
  p50: number;
  p90: number;
  p99: number;
  perSecond: number;
}

export interface BenchResults {
  info: Record<string, string | number>;
  records: number;
  repeat: number;
  cap: number;
  scenarios: Scenario[];
  executable: string;
  workers: Map<string, WorkerResult[]>;
  arrivals: Map<string, { records: number; messages: number; bytes: number }[]>;
  exe: Map<string, ExeResult[]>;
  writeAmplification: ExeResult[];
  backlogRss: BacklogRssResult[];
  drains: DrainResult[];
  fsync: FsyncResult[];
  profile?: ProfileSummary;
  notes: string[];
}

/** queue.commit_interval as the config schema defaults it: its full-rate row is the main executable run. */
const DEFAULT_COMMIT_INTERVAL = `${parseConfig('{}', '(defaults)', '/').config.queue.commit_interval}ms`;

export function render(out: BenchResults, heapFlags: string[], measuredCore: string, otherCore: string): string {
  const get = (id: string) => out.workers.get(id) ?? [];
  const exe = out.exe.get('exe') ?? [];
  const first = get('ingest')[0] ?? get('e2e')[0];
  const json = median(get('ingest').map((r) => r.jsonBytesPerRecord as number)) || 76;
  const rate = (rs: { recordsPerSecond: number }[]) =>
    spread(
      rs.map((r) => r.recordsPerSecond),
      fmtK,
    );
  const cpuCeiling = (rs: { records: number; cpuSeconds: number }[]) =>
    mid(
      rs.filter((r) => r.cpuSeconds > 0).map((r) => r.records / r.cpuSeconds),
      fmtK,
    );
  const rss = (rs: { peakRss: number }[]) =>
    spread(
      rs.map((r) => r.peakRss),
      fmtMiBn,
      ' MiB',
    );
  const disk = (rs: { writeBytesPerRecord: number }[]) =>
    mid(
      rs.map((r) => r.writeBytesPerRecord),
      fmtB,
    );
  const times = (rs: { writeBytesPerRecord: number }[]) =>
    mid(
      rs.map((r) => r.writeBytesPerRecord / json),
      (n) => `${n.toFixed(2)}×`,
    );
  const workerWire = (rs: WorkerResult[]) =>
    rs[0]?.kind === 'e2e'
      ? mid(
          rs.map((r) => r.envelopeBytesPerRecord as number),
          (n) => n.toFixed(2),
        )
      : '–';

  const lines: string[] = [''];
  const { info } = out;
  lines.push(`Code: ${info.revision}; executable ${out.executable}`);
  lines.push(
    `Machine: ${info.cpu}, ${info.cores} cores, Linux ${info.kernel}; load average at start ${info.load}; queue files in ${info.tmpdir} (${info.filesystem})`,
  );
  if (first)
    lines.push(`Node ${first.node}, SQLite ${first.sqlite}, ${info.mosquitto} (pinned to core ${otherCore} with this process and the counting subscriber)`);
  lines.push(
    `Measured on core ${measuredCore}: taskset -c ${measuredCore} ${out.executable} run --config FILE (heap caps by its own re-exec) and taskset -c ${measuredCore} ${info.nodePath} [${heapFlags.join(' ')}] scripts/bench/<ingest|e2e>-worker.ts …`,
  );
  if (first) {
    const qs = first.settings;
    const src = qs.source as Record<string, unknown>;
    lines.push(
      `Queue: synchronous=${qs.synchronous}, group commit at ${qs.commitEveryRecords} records or ${qs.commitIntervalMs} ms, cache ${fmtMiB(qs.cacheBytes as number)}; batch ≤${qs.batchMaxRecords} records / ${(qs.batchMaxBytes as number) / 1024} KiB CBOR, ${qs.compression} level ${qs.level ?? 'default (1)'}; sender window ${qs.maxInFlight}; QoS 1, MQTT 5, XChaCha20-Poly1305.`,
    );
    lines.push(
      `Source: synthetic, ${src.batch} records per emit, ${src.max_pending} emits awaiting their commit; record {n, ts, sensor, value, unit}, ${json.toFixed(1)} B as JSON (sampled).`,
    );
  }
  lines.push(
    `fsync probe (1000 × 8 KiB append + fdatasync): ${out.fsync.map((f) => `${f.when} (${f.at}) p50 ${fmtMs(f.p50)} ms, p90 ${fmtMs(f.p90)} ms, p99 ${fmtMs(f.p99)} ms`).join('; ')}`,
  );

  // ---- goals -------------------------------------------------------------------------------------------
  const nocaps = out.exe.get('exe-nocaps') ?? [];
  lines.push('');
  lines.push(
    table([
      ['figure (1 core)', 'goal', 'shipped executable', 'node worker (.ts)'],
      ['durable ingest, records/s', `≥ ${fmtK(GOALS.ingest)}`, '–', rate(get('ingest'))],
      ['end to end, records/s (from spawn / start)', `≥ ${fmtK(GOALS.e2e)}`, rate(exe), rate(get('e2e'))],
      [
        'end to end, records/s after the first batch arrived',
        `≥ ${fmtK(GOALS.e2e)}`,
        spread(
          exe.map((r) => r.recordsPerSecondAfterFirst),
          fmtK,
        ),
        '–',
      ],
      ['peak RSS (VmHWM), end to end at full speed', `≤ ${fmtMiB(GOALS.rss)}`, rss(exe), rss(get('e2e'))],
      [
        '  of which anonymous (peak RssAnon)',
        '',
        spread(
          exe.map((r) => r.peakAnon),
          fmtMiBn,
          ' MiB',
        ),
        mid(
          get('e2e').map((r) => r.rssAnonAtEnd as number),
          fmtMiBn,
          ' MiB (at end)',
        ),
      ],
      [
        '  of which file-backed (peak RssFile)',
        '',
        spread(
          exe.map((r) => r.peakFile),
          fmtMiBn,
          ' MiB',
        ),
        '–',
      ],
      ['peak RSS, ingest only', `≤ ${fmtMiB(GOALS.rss)}`, '–', rss(get('ingest'))],
      ['peak RSS, end to end, no heap caps', `≤ ${fmtMiB(GOALS.rss)}`, rss(nocaps), rss(get('e2e-noflags'))],
      ['disk write_bytes per record, end to end', `≤ ${json.toFixed(0)} (JSON)`, `${disk(exe)} (${times(exe)})`, `${disk(get('e2e'))} (${times(get('e2e'))})`],
      ['disk write_bytes per record, ingest only', `≤ ${json.toFixed(0)} (JSON)`, '–', `${disk(get('ingest'))} (${times(get('ingest'))})`],
      [
        'wire bytes per record (envelopes)',
        `≤ ${GOALS.wire}`,
        mid(
          exe.map((r) => r.envelopeBytesPerRecord),
          (n) => n.toFixed(2),
        ),
        workerWire(get('e2e')),
      ],
      [
        'wire bytes per record (MQTT socket)',
        `≤ ${GOALS.wire}`,
        '–',
        mid(
          get('e2e').map((r) => r.socketBytesPerRecord as number),
          (n) => n.toFixed(2),
        ),
      ],
    ]),
  );

  // ---- every scenario ------------------------------------------------------------------------------------
  const rows = [['scenario (1 core)', 'runs', 'records/s', 'CPU-bound rec/s', 'peak RSS', 'RssAnon', 'disk write_bytes/rec', 'records/txn*', 'envelope B/rec']];
  const partial = (rs: { complete: boolean }[]) => (rs.some((r) => !r.complete) ? ` (stopped at ${out.cap} s)` : '');
  const exeRows = () => {
    for (const [id, title] of [
      ['exe', 'end to end, shipped executable'],
      ['exe-nocaps', 'end to end, shipped executable, no heap caps'],
    ] as const) {
      const es = out.exe.get(id) ?? [];
      if (es.length > 0)
        rows.push([
          title,
          String(es.length),
          rate(es),
          cpuCeiling(es),
          rss(es),
          spread(
            es.map((r) => r.peakAnon),
            fmtMiBn,
            ' MiB (peak)',
          ),
          disk(es),
          '–',
          mid(
            es.map((r) => r.envelopeBytesPerRecord),
            (n) => n.toFixed(2),
          ),
        ]);
    }
  };
  for (const s of out.scenarios) {
    const rs = get(s.id);
    if (rs.length > 0) {
      const perTxn = mid(
        rs.map((r) => r.records / Math.max(1, r.commits + ((r.batches as number | undefined) ?? 0))),
        (n) => n.toFixed(0),
      );
      rows.push([
        `${s.title}${partial(rs)}`,
        String(rs.length),
        rate(rs),
        cpuCeiling(rs),
        rss(rs),
        mid(
          rs.map((r) => r.rssAnonAtEnd as number),
          fmtMiBn,
          ' MiB (end)',
        ),
        disk(rs),
        perTxn,
        workerWire(rs),
      ]);
    }
    if (s.id === 'e2e') exeRows();
  }
  lines.push('');
  lines.push(table(rows));
  lines.push(
    '* records per write transaction (one fsync each under synchronous=full): group commits plus, end to end, the transactions that record batches before they are sent (each batch counted as one: a lower bound of records per transaction now that the window’s batches share one).',
  );
  lines.push('  "CPU-bound rec/s": records / CPU seconds of the measured process: the rate if waiting on fsync cost nothing.');
  lines.push('  Several runs: median (min–max) for records/s and peak RSS, the median elsewhere.');

  // ---- write amplification ---------------------------------------------------------------------------------
  if (out.writeAmplification.length > 0) {
    const wa = [
      [
        'ingest rate (shipped executable, end to end)',
        'commit_interval',
        'records measured',
        'disk write_bytes/rec',
        '× record JSON (goal ≤ 1×)',
        'wchar/rec',
        'records/batch sent',
      ],
    ];
    const row = (label: string, interval: string, rs: ExeResult[]) =>
      wa.push([
        label,
        interval,
        mid(
          rs.map((r) => r.records),
          fmtInt,
        ),
        disk(rs),
        times(rs),
        mid(
          rs.map((r) => r.wcharPerRecord),
          fmtB,
        ),
        mid(
          rs.map((r) => r.records / Math.max(1, r.batches)),
          (n) => n.toFixed(0),
        ),
      ]);
    const intervals = [...new Set(out.writeAmplification.map((x) => x.settings.commitInterval ?? DEFAULT_COMMIT_INTERVAL))];
    for (const interval of intervals) {
      for (const r of out.writeAmplification.filter((x) => (x.settings.commitInterval ?? DEFAULT_COMMIT_INTERVAL) === interval && x.settings.rate > 0))
        row(`${fmtK(r.settings.rate)} rec/s`, interval, [r]);
      const fullRuns =
        interval === DEFAULT_COMMIT_INTERVAL ? exe : out.writeAmplification.filter((x) => x.settings.commitInterval === interval && x.settings.rate === 0);
      if (fullRuns.length > 0) row(`full rate (${rate(fullRuns)} rec/s)`, interval, fullRuns);
    }
    lines.push('');
    lines.push(table(wa));
    lines.push(
      `Fixed rates: write_bytes of the process over ${out.writeAmplification[0]?.seconds.toFixed(0)} s after a 3 s warm-up, divided by the records the subscriber counted in that window. Full rate: the whole run.`,
    );
  }

  // ---- backlog -------------------------------------------------------------------------------------------
  if (out.backlogRss.length > 0) {
    const br = [
      ['records queued at start', 'records queued at end', `VmHWM after ${out.backlogRss[0]!.seconds} s`, 'RssAnon (end / peak)', 'RssFile', `goal (1k rec/s)`],
    ];
    for (const r of out.backlogRss)
      br.push([
        fmtInt(r.queuedAtStart),
        fmtInt(r.queuedAtEnd),
        fmtMiB(r.peakRss),
        `${fmtMiBn(r.rssAnonAtEnd)} / ${fmtMiBn(r.peakAnon)} MiB`,
        fmtMiB(r.rssFileAtEnd),
        `flat, ≤ ${fmtMiB(GOALS.rssBacklog)}`,
      ]);
    lines.push('');
    lines.push('Shipped executable started on a queue holding a backlog, synthetic source at 1k rec/s, sink unreachable:');
    lines.push(table(br));
    const builds = [...out.workers.entries()]
      .filter(([id]) => id.startsWith('backlog-'))
      .map(([id, rs]) => `${fmtInt(Number(id.slice(8)))} records at ${fmtK(rs[0]!.recordsPerSecond)} rec/s (${fmtMiBn(rs[0]!.dbBytes as number)} MiB file)`);
    if (builds.length > 0) lines.push(`Backlogs built by the ingest worker: ${builds.join('; ')}.`);
  }
  for (const d of out.drains) {
    lines.push('');
    lines.push(
      table([
        ['drain (shipped executable, 1k rec/s ingest continuing)', 'goal', 'measured'],
        [`${fmtInt(d.backlog)} records, from spawn`, `≥ ${fmtK(GOALS.drain)} rec/s`, `${fmtK(d.recordsPerSecond)} rec/s (${d.seconds.toFixed(1)} s)`],
        ["  from the first batch's arrival", `≥ ${fmtK(GOALS.drain)} rec/s`, `${fmtK(d.recordsPerSecondAfterFirst)} rec/s`],
        ['  CPU-bound (records / CPU s)', '', `${fmtK(d.backlog / d.cpuSeconds)} rec/s`],
        ['  peak RSS / peak RssAnon', `≤ ${fmtMiB(GOALS.rss)}`, `${fmtMiB(d.peakRss)} / ${fmtMiB(d.peakAnon)}`],
        ['  disk write_bytes per record drained', '', fmtB(d.writeBytesPerRecord)],
        ['  records queued after stop', '', fmtInt(d.queuedAtEnd)],
      ]),
    );
  }

  // ---- wire details, checks, profile ----------------------------------------------------------------------
  const e2e = get('e2e');
  if (e2e.length > 0) {
    const framing = e2e.map((r) => ((r.socketBytesWritten as number) - (r.envelopeBytes as number)) / (r.batches as number));
    lines.push('');
    lines.push(
      `MQTT framing: ${fmtB(median(framing))} B per ${fmtB(median(e2e.map((r) => r.envelopeBytesPerBatch as number)))}-byte batch of ${mid(
        e2e.map((r) => r.recordsPerBatch as number),
        (n) => n.toFixed(0),
      )} records.`,
    );
  }
  for (const [id, list] of out.arrivals) {
    const rs = get(id);
    const ok = list.every((a, i) => a.records >= (rs[i]?.records ?? 0));
    lines.push(
      `Subscriber, ${id}: ${list.map((a) => `${fmtInt(a.records)} records in ${fmtInt(a.messages)} batches`).join('; ')}${ok ? ' (every acknowledged record arrived)' : ' (FEWER than acknowledged)'}`,
    );
  }
  if (exe.length > 0)
    lines.push(`Subscriber, shipped executable: ${exe.map((r) => `${fmtInt(r.records)} records in ${fmtInt(r.batches)} batches`).join('; ')}`);
  const startup = [...get('e2e'), ...get('e2e-noflags')].map((r) => r.startupSeconds as number);
  if (startup.length > 0)
    lines.push(
      `Node worker end-to-end clock includes start-up (startAgent: ${spread(startup, (n) => `${(n * 1000).toFixed(0)} ms`)}); the executable's clock runs from spawn (one executable start: its heap caps are baked in).`,
    );
  if (out.profile) {
    lines.push('');
    lines.push(
      `CPU profile of one end-to-end worker run (self time, ${(out.profile.totalMs / 1000).toFixed(1)} s sampled; blocking syscalls such as fsync count as the calling function):`,
    );
    for (const e of out.profile.top) {
      lines.push(`  ${e.selfMs.toFixed(0).padStart(6)} ms ${(e.share * 100).toFixed(1).padStart(5)} %  ${e.name}  ${e.where}`);
      for (const c of e.callers.slice(0, 2))
        if (e.callers.length > 1 || e.share > 0.05) lines.push(`  ${''.padStart(16)}  ${c.selfMs.toFixed(0).padStart(6)} ms from ${c.name}`);
    }
    lines.push(
      `  by area: ${out.profile.byArea
        .slice(0, 8)
        .map((a) => `${a.area} ${(a.share * 100).toFixed(0)} %`)
        .join(', ')}`,
    );
  }
  for (const note of out.notes) lines.push(`Note: ${note}.`);
  return lines.join('\n');
}

/**
 * Durable ingest: the synthetic source's records go into the queue (SQLite WAL, synchronous=FULL by default)
 * as fast as the queue takes them; a record counts once the commit that holds it resolved. Run pinned to one
 * core by scripts/bench/run.ts. Prints one JSON line.
 *
 *   node scripts/bench/ingest-worker.ts --records 1000000 [--seconds 20] [--batch 500] [--max-pending 16]
 *        [--commit-every 1000] [--commit-interval 100ms] [--synchronous full] [--queue FILE]
 *
 * --queue FILE writes the queue there and keeps it (a backlog for the agent to start on); without it the
 * queue lives in a temporary directory that is removed at the end.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../agent/log.ts';
import { Queue } from '../../agent/queue/queue.ts';
import type { AgentRecord, Cursor, ServiceSource, SourceContext } from '../../agent/sdk/index.ts';
import { syntheticSource } from '../../drivers/sources/synthetic/index.ts';
import { ioDelta, numberArg, parseArgs, readIo, readMemory, report } from './proc.ts';
import { describeSettings, JsonSizeSampler, parseBenchConfig, queueOptions, sqliteVersion } from './settings.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';

const args = parseArgs(process.argv.slice(2));
const records = numberArg(args, 'records', 1_000_000);
const seconds = numberArg(args, 'seconds', 30);
const sourceOptions = syntheticSource.options.parse({
  rate: 0,
  count: records,
  ...(args.has('batch') ? { batch: numberArg(args, 'batch', 500) } : {}),
  ...(args.has('max-pending') ? { max_pending: numberArg(args, 'max-pending', 16) } : {}),
});

const keptQueue = args.get('queue');
const dir = keptQueue === undefined ? mkdtempSync(join(args.get('dir') ?? tmpdir(), 'edge-bench-ingest-')) : dirname(resolve(keptQueue));
const queueYaml = [
  'queue:',
  ...(args.has('synchronous') ? [`  synchronous: ${args.get('synchronous')}`] : []),
  ...(args.has('commit-every') ? [`  commit_every_records: ${args.get('commit-every')}`] : []),
  ...(args.has('commit-interval') ? [`  commit_interval: ${args.get('commit-interval')}`] : []),
  '  path: queue.db',
].join('\n');
const loaded = parseBenchConfig(`data_dir: .\n${queueYaml}\n`, dir);
const dbPath = keptQueue === undefined ? join(dir, 'queue.db') : resolve(keptQueue);

try {
  const queue = Queue.open(queueOptions(loaded, dbPath, silentLogger));
  const source = (await syntheticSource.create(
    { ...sourceOptions, name: 'synthetic', interval: 10_000, on_start_error: 'fail' } as never,
    driverEnv({ log: silentLogger, baseDir: dir }),
  )) as ServiceSource;
  const json = new JsonSizeSampler();
  let committed = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const abort = new AbortController();
  const ctx: SourceContext = {
    name: 'synthetic',
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: { add() {} },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: (batch: AgentRecord[], cursor?: Cursor) => {
      json.sample(batch);
      const n = batch.length;
      return queue.enqueue('synthetic', batch, cursor === undefined ? undefined : { source: 'synthetic', value: cursor }).then(() => {
        committed += n;
        if (committed >= records) finish();
      });
    },
    fail: (err) => {
      throw err;
    },
  };

  const io0 = readIo();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const deadline = setTimeout(finish, seconds * 1000);
  await source.start(ctx);
  await finished;
  const elapsed = (performance.now() - t0) / 1000;
  clearTimeout(deadline);
  const measured = committed;
  const io1 = readIo();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const mem = readMemory();
  const stats = queue.stats();
  const walBytes = statSync(`${dbPath}-wal`, { throwIfNoEntry: false })?.size ?? 0;
  abort.abort();
  await source.stop();
  queue.close();
  const io2 = readIo();
  const dbBytes = statSync(dbPath).size;

  const during = ioDelta(io0, io1);
  const withClose = ioDelta(io0, io2);
  report({
    kind: 'ingest',
    records: measured,
    requested: records,
    complete: measured >= records,
    seconds: elapsed,
    recordsPerSecond: measured / elapsed,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    cpuUser: cpu.user / 1e6,
    cpuSystem: cpu.system / 1e6,
    eventLoopUtilization: elu.utilization,
    commits: stats.commits,
    recordsPerCommit: stats.commits ? stats.committed / stats.commits : 0,
    peakRss: mem.hwm,
    rssAtEnd: mem.rss,
    rssAnonAtEnd: mem.anon,
    jsonBytesPerRecord: json.mean,
    queuedBytesPerRecord: stats.records ? stats.bytes / stats.records : 0,
    io: during,
    ioWithClose: withClose,
    writeBytesPerRecord: during.write_bytes / measured,
    wcharPerRecord: during.wchar / measured,
    writeBytesPerRecordWithClose: withClose.write_bytes / measured,
    walBytes,
    dbBytes,
    settings: describeSettings(loaded, { type: 'synthetic', ...sourceOptions }),
    node: process.version,
    sqlite: sqliteVersion(),
    execArgv: process.execArgv,
  });
} finally {
  if (keptQueue === undefined) rmSync(dir, { recursive: true, force: true });
}

/**
 * End to end: the real agent (startAgent from a YAML config) with the synthetic source (count N, rate 0)
 * and the MQTT sink (CBOR ▸ zstd ▸ XChaCha20-Poly1305, QoS 1) publishing to the broker at --url. The clock
 * runs from the startAgent call until every record is acknowledged: all N committed, the queue empty (the
 * acks' deletions committed too) and nothing in flight. Run pinned to one core by scripts/bench/run.ts.
 * Prints one JSON line.
 *
 *   node scripts/bench/e2e-worker.ts --url mqtt://127.0.0.1:1883 --records 1000000 [--seconds 60]
 *        [--batch 500] [--max-pending 16] [--commit-every 1000] [--commit-interval 100ms] [--max-in-flight 16]
 *        [--shape classic|realistic] [--record-bytes 120] [--sensors N]
 *        [--sqlite FILE --table NAME [--json-columns a,b]]   read the records from a SQLite table instead
 *
 * With --sqlite the source is the sqlite driver polling the table (made by scripts/bench/cpu-bench.ts) every
 * 50 ms; --records must then be the table's row count.
 */
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../../agent/log.ts';
import { startAgent } from '../../agent/runtime/agent.ts';
import { e2eConfigYaml } from './e2e-config.ts';
import { ioDelta, numberArg, parseArgs, readIo, readMemory, report } from './proc.ts';
import { describeSettings, parseBenchConfig, sqliteVersion } from './settings.ts';

const args = parseArgs(process.argv.slice(2));
const url = args.get('url');
if (!url) throw new Error('--url mqtt://host:port is required');
const records = numberArg(args, 'records', 1_000_000);
const seconds = numberArg(args, 'seconds', 60);
const device = args.get('device') ?? 'bench';

const dir = mkdtempSync(join(args.get('dir') ?? tmpdir(), 'edge-bench-e2e-'));
const yaml = e2eConfigYaml(args, { device, url, records });

// Every TCP client socket the agent opens (the MQTT connection): its byte counts are the MQTT-level wire bytes.
const sockets: Socket[] = [];
diagnostics.subscribe('net.client.socket', (message) => sockets.push((message as { socket: Socket }).socket));

try {
  const loaded = parseBenchConfig(yaml, dir);
  const log = createLogger('warn');
  const io0 = readIo();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const agent = await startAgent(loaded, log);
  const tStarted = performance.now();
  const elu0 = performance.eventLoopUtilization();

  // The steady state: CPU from the moment a tenth of the records was acknowledged (start-up, key loading and
  // the first compilations behind) to the end, per record acknowledged in between.
  let warm: { cpu: NodeJS.CpuUsage; acked: number } | undefined;
  // CPU at each tenth of the records acknowledged: where the warm-up ends, in CPU-s per 100k per tenth.
  const tenths: { cpu: number; acked: number }[] = [{ cpu: 0, acked: 0 }];
  const done = await new Promise<boolean>((resolve) => {
    const deadline = setTimeout(() => {
      clearInterval(poll);
      resolve(false);
    }, seconds * 1000);
    const poll = setInterval(() => {
      const { queue, sender } = agent.status();
      if (warm === undefined && sender.recordsSent >= records / 10) warm = { cpu: process.cpuUsage(), acked: sender.recordsSent };
      if (sender.recordsSent >= (records * tenths.length) / 10) {
        const used = process.cpuUsage(cpu0);
        tenths.push({ cpu: used.user + used.system, acked: sender.recordsSent });
      }
      if (queue.committed >= records && queue.records === 0 && sender.inFlight === 0) {
        clearInterval(poll);
        clearTimeout(deadline);
        resolve(true);
      }
    }, 2);
  });
  const tDone = performance.now();
  if (done) await agent.sender.idle();
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  const io1 = readIo();
  const mem = readMemory();
  const status = agent.status();
  const socketBytes = sockets.reduce((acc, s) => ({ written: acc.written + s.bytesWritten, read: acc.read + s.bytesRead }), { written: 0, read: 0 });
  await agent.stop();
  const io2 = readIo();

  const acked = status.sender.recordsSent;
  const elapsed = (tDone - t0) / 1000;
  const during = ioDelta(io0, io1);
  report({
    kind: 'e2e',
    complete: done,
    records: acked,
    requested: records,
    committed: status.queue.committed,
    seconds: elapsed,
    startupSeconds: (tStarted - t0) / 1000,
    recordsPerSecond: acked / elapsed,
    recordsPerSecondAfterStartup: acked / ((tDone - tStarted) / 1000),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    cpuSecondsPer100k: ((cpu.user + cpu.system) / 1e6 / acked) * 100_000,
    steadyCpuSecondsPer100k: warm
      ? (((cpu.user + cpu.system - (warm.cpu.user + warm.cpu.system) + (cpu0.user + cpu0.system)) / 1e6) * 100_000) / (acked - warm.acked)
      : null,
    cpuSecondsPer100kByTenth: tenths.slice(1).map((t, i) => Number(((((t.cpu - tenths[i]!.cpu) / 1e6) * 100_000) / (t.acked - tenths[i]!.acked)).toFixed(3))),
    cpuUser: cpu.user / 1e6,
    cpuSystem: cpu.system / 1e6,
    eventLoopUtilization: elu.utilization,
    commits: status.queue.commits,
    batches: status.sender.batchesSent,
    recordsPerBatch: status.sender.batchesSent ? acked / status.sender.batchesSent : 0,
    retries: status.sender.retries,
    rejected: status.sender.rejected,
    peakRss: mem.hwm,
    rssAtEnd: mem.rss,
    rssAnonAtEnd: mem.anon,
    io: during,
    ioWithStop: ioDelta(io0, io2),
    writeBytesPerRecord: during.write_bytes / acked,
    wcharPerRecord: during.wchar / acked,
    envelopeBytes: status.sender.bytesSent,
    envelopeBytesPerRecord: status.sender.bytesSent / acked,
    envelopeBytesPerBatch: status.sender.batchesSent ? status.sender.bytesSent / status.sender.batchesSent : 0,
    socketBytesWritten: socketBytes.written,
    socketBytesRead: socketBytes.read,
    socketBytesPerRecord: socketBytes.written / acked,
    settings: describeSettings(loaded, loaded.config.sources[0] as Record<string, unknown>),
    node: process.version,
    sqlite: sqliteVersion(),
    execArgv: process.execArgv,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
// Sender.stop() leaves its 5 s grace timer armed after it returned; do not wait for it to fire.
process.exit(0);

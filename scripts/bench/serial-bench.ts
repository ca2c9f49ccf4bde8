/**
 * The serial source at the pace of a 115200-baud line (8N1: 11 520 bytes/s) full of NMEA sentences: a child
 * process writes a GPS receiver's usual sentence mix into one side of a socat pty pair, paced by the clock;
 * the serial source reads the other side and commits into a real queue (SQLite, synchronous=FULL). Prints
 * the records committed per second and this process's CPU use (the writer's CPU is not counted: it is
 * another process). Figures only, no assertions.
 *
 *   node scripts/bench/serial-bench.ts [--seconds 10] [--bytes-per-second 11520]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../agent/log.ts';
import { Queue } from '../../agent/queue/queue.ts';
import type { AgentRecord, Cursor, ServiceSource, SourceContext } from '../../agent/sdk/index.ts';
import { serialSource } from '../../drivers/sources/serial/index.ts';
import { checksum } from '../../drivers/sources/serial/nmea.ts';
import { startPtyPair } from '../../test/helpers/socat.ts';
import { numberArg, parseArgs, readMemory, report } from './proc.ts';
import { parseBenchConfig, queueOptions } from './settings.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';

const args = parseArgs(process.argv.slice(2));
const seconds = numberArg(args, 'seconds', 10);
const bytesPerSecond = numberArg(args, 'bytes-per-second', 11_520);

const BODIES = [
  'GPGGA,123519.00,4807.03812,N,01131.00045,E,1,08,0.9,545.4,M,46.9,M,,',
  'GPRMC,123519.00,A,4807.03812,N,01131.00045,E,022.4,084.4,230394,003.1,W,A',
  'GPVTG,084.4,T,087.5,M,022.4,N,041.5,K,A',
  'GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1',
  'GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00',
  'GPGLL,4807.03812,N,01131.00045,E,123519.00,A,A',
  'GPZDA,123519.00,23,03,1994,00,00',
];
const block = BODIES.map((b) => `$${b}*${checksum(b).toString(16).toUpperCase().padStart(2, '0')}\r\n`).join('');

// The writer paces by the clock (bytes due = elapsed × rate), in whole blocks of sentences.
const WRITER = `
import { openSync, writeSync, constants } from 'node:fs';
const [host, rate, seconds, block] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const fd = openSync(host, constants.O_WRONLY | constants.O_NOCTTY);
const start = performance.now();
let sent = 0;
const timer = setInterval(() => {
  const elapsed = (performance.now() - start) / 1000;
  while (sent + block.length <= Math.min(elapsed, seconds) * rate) sent += writeSync(fd, block, null, 'latin1');
  if (elapsed >= seconds) { clearInterval(timer); process.stdout.write(String(sent)); }
}, 20);
`;

const dir = mkdtempSync(join(tmpdir(), 'edge-bench-serial-'));
const pair = await startPtyPair(dir, 'gps');
try {
  const loaded = parseBenchConfig('data_dir: .\nqueue:\n  path: queue.db\n', dir);
  const queue = Queue.open(queueOptions(loaded, join(dir, 'queue.db'), silentLogger));
  const config = serialSource.options.parse({ path: pair.device, baud_rate: 115200, framing: { mode: 'nmea' } });
  const source = (await serialSource.create(
    { ...config, type: 'serial', name: 'gps', stream: 'gps', interval: 10_000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: dir }),
  )) as ServiceSource;
  const counters = driverEnv({ log: silentLogger, baseDir: dir }).counters;
  let committed = 0;
  const ctx: SourceContext = {
    name: 'gps',
    log: silentLogger,
    cursor: undefined,
    signal: new AbortController().signal,
    counters,
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: (records: AgentRecord[], cursor?: Cursor) =>
      queue.enqueue('gps', records, cursor === undefined ? undefined : { source: 'gps', value: cursor }).then(() => {
        committed += records.length;
      }),
    fail: (err) => {
      throw err;
    },
  };
  await source.start(ctx);

  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  const writer = spawn(process.execPath, ['--input-type=module', '-e', WRITER, pair.host, String(bytesPerSecond), String(seconds), block], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let written = '';
  writer.stdout.on('data', (d: Buffer) => (written += d.toString()));
  await new Promise<void>((resolve) => writer.once('exit', () => resolve()));
  const sent = Number(written);
  // Wait for the last bytes to be read and committed: the source has consumed everything the writer sent.
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`serial bench: only ${counters.snapshot().bytes ?? 0} of ${sent} bytes read`)), 5000);
    const poll = setInterval(() => {
      if ((counters.snapshot().bytes ?? 0) >= sent) {
        clearTimeout(deadline);
        clearInterval(poll);
        resolve();
      }
    }, 10);
  });
  await source.stop();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpuBefore);
  queue.close();
  const c = counters.snapshot();
  report({
    bench: 'serial-nmea',
    line_bytes_per_s: bytesPerSecond,
    seconds: Math.round(wallMs) / 1000,
    bytes: c.bytes ?? 0,
    records: committed,
    records_per_s: Math.round((committed / wallMs) * 1000),
    bad_frames: c.bad_frames ?? 0,
    cpu_pct: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
    cpu_user_ms: Math.round(cpu.user / 1000),
    cpu_system_ms: Math.round(cpu.system / 1000),
    rss_mib: Math.round(readMemory().rss / 1024 / 1024),
  });
} finally {
  await pair.stop();
  rmSync(dir, { recursive: true, force: true });
}

import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { systemSource } from '../../drivers/sources/system/index.ts';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord, Cursor, PolledSource, SourceContext } from '../../agent/sdk/index.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';

// Fixture files in the kernel's own formats, so the parsers are tested against what a gateway really shows.
const STAT_1 = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 100 0 50 800 50 0 0 0 0 0
intr 1462898 20 9 0 0 0
ctxt 1990473
btime 1062191376
processes 2915
procs_running 1
procs_blocked 0
softirq 183433 0 21755 12 39 0 0 2 7 0
`;
// +300 user, +50 system, +500 idle, +50 iowait, +50 irq, +50 softirq: busy +450 of +1000 jiffies.
const STAT_2 = STAT_1.replaceAll('100 0 50 800 50 0 0 0 0 0', '400 0 100 1300 100 50 50 0 0 0');
const LOADAVG = '0.52 0.58 0.59 1/467 12345\n';
const MEMINFO = `MemTotal:        1012345 kB
MemFree:          200000 kB
MemAvailable:     500000 kB
Buffers:           10000 kB
Cached:           250000 kB
SwapCached:            0 kB
SwapTotal:        102400 kB
SwapFree:          51200 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`;
const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     789    0    0    0     0          0         0   123456     789    0    0    0     0       0          0
  eth0: 98765432  65432    1    2    0     0          0        10 12345678  54321    3    0    0     0       0          0
`;

let root: string;
let proc: string;
let sys: string;

function put(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'edge-agent-system-'));
  proc = join(root, 'proc');
  sys = join(root, 'sys');
  put(join(proc, 'stat'), STAT_1);
  put(join(proc, 'loadavg'), LOADAVG);
  put(join(proc, 'meminfo'), MEMINFO);
  put(join(proc, 'net', 'dev'), NET_DEV);
  put(join(sys, 'class/thermal/thermal_zone0/temp'), '45500\n');
  put(join(sys, 'class/thermal/thermal_zone0/type'), 'cpu-thermal\n');
  // Not a zone: the driver must only read thermal_zone* entries.
  put(join(sys, 'class/thermal/cooling_device0/type'), 'Processor\n');
  put(join(sys, 'class/hwmon/hwmon0/name'), 'coretemp\n');
  put(join(sys, 'class/hwmon/hwmon0/temp1_input'), '52000\n');
  put(join(sys, 'class/hwmon/hwmon0/temp1_label'), 'Package id 0\n');
  put(join(sys, 'class/hwmon/hwmon0/temp1_max'), '100000\n');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** The SDK surface a polled source sees, recording what it emits and counts. */
function fakeContext() {
  const emits: { records: AgentRecord[]; cursor: Cursor | undefined }[] = [];
  const counts = new Map<string, number>();
  const ctx: SourceContext = {
    name: 'sys',
    log: silentLogger,
    cursor: undefined,
    signal: new AbortController().signal,
    counters: { add: (name, n = 1) => counts.set(name, (counts.get(name) ?? 0) + n) },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (records, cursor) => {
      emits.push({ records, cursor });
    },
    fail: (err) => {
      throw new Error(`a polled source must not call fail: ${String(err)}`);
    },
  };
  return { ctx, emits, counts };
}

/** Builds the source through its options schema so the documented defaults apply. */
async function source(options: Record<string, unknown> = {}, baseDir = root): Promise<PolledSource> {
  const config = systemSource.options.parse({ proc_root: proc, sys_root: sys, include: ['cpu', 'load', 'memory', 'network', 'thermal', 'hwmon'], ...options });
  const common = { type: 'system', name: 'sys', stream: 'sys', interval: 10_000, on_start_error: 'retry' as const };
  return (await systemSource.create({ ...config, ...common }, driverEnv({ log: silentLogger, baseDir }))) as PolledSource;
}

/** One poll's records, all stamped with one time taken during the poll; the stamp is checked and removed. */
async function poll(made: PolledSource | Promise<PolledSource>, ctx: SourceContext, emits: { records: AgentRecord[] }[]): Promise<AgentRecord[]> {
  const src = await made;
  const before = Date.now();
  const n = emits.length;
  await src.gather(ctx);
  const after = Date.now();
  assert.equal(emits.length, n + 1, 'one emit per poll');
  const records = emits[n]!.records;
  const stamps = new Set(records.map((r) => r.ts));
  assert.equal(stamps.size, 1, 'one timestamp per poll');
  const [ts] = stamps;
  assert.ok(typeof ts === 'number' && ts >= before && ts <= after);
  return records.map(({ ts: _ts, ...rest }) => rest);
}

const KIB = 1024;
const EXPECTED_REST = [
  { metric: 'load', load1: 0.52, load5: 0.58, load15: 0.59 },
  { metric: 'memory', total: 1012345 * KIB, available: 500000 * KIB, swap_total: 102400 * KIB, swap_free: 51200 * KIB },
  { metric: 'network', iface: 'lo', rx_bytes: 123456, rx_packets: 789, rx_errors: 0, tx_bytes: 123456, tx_packets: 789, tx_errors: 0 },
  { metric: 'network', iface: 'eth0', rx_bytes: 98765432, rx_packets: 65432, rx_errors: 1, tx_bytes: 12345678, tx_packets: 54321, tx_errors: 3 },
  { metric: 'temperature', source: 'thermal', sensor: 'cpu-thermal', celsius: 45.5 },
  { metric: 'temperature', source: 'hwmon', sensor: 'coretemp/Package id 0', celsius: 52 },
];

describe('system source', () => {
  it('emits exact records; CPU use is the delta between two polls', async () => {
    const { ctx, emits, counts } = fakeContext();
    const src = await source();

    // First poll: no previous sample, so CPU use is the average since boot (150 busy of 1000 jiffies).
    assert.deepEqual(await poll(src, ctx, emits), [{ metric: 'cpu', usage_pct: 15, iowait_pct: 5 }, ...EXPECTED_REST]);

    writeFileSync(join(proc, 'stat'), STAT_2);
    assert.deepEqual(await poll(src, ctx, emits), [{ metric: 'cpu', usage_pct: 45, iowait_pct: 5 }, ...EXPECTED_REST]);
    assert.equal(emits[1]!.cursor, undefined, 'a polled source of live readings has no cursor');
    assert.deepEqual([...counts], []);
  });

  it('no CPU record when the counters did not move between polls', async () => {
    const { ctx, emits } = fakeContext();
    const src = await source({ include: ['cpu', 'load'] });
    await poll(src, ctx, emits);
    assert.deepEqual(await poll(src, ctx, emits), [{ metric: 'load', load1: 0.52, load5: 0.58, load15: 0.59 }]);
  });

  it('a missing file skips that reading and bumps its unreadable counter', async () => {
    const { ctx, emits, counts } = fakeContext();
    rmSync(join(proc, 'loadavg'));
    rmSync(join(proc, 'meminfo'));
    const records = await poll(source(), ctx, emits);
    assert.deepEqual(
      records.map((r) => r.metric),
      ['cpu', 'network', 'network', 'temperature', 'temperature'],
    );
    assert.deepEqual(Object.fromEntries(counts), { unreadable_load: 1, unreadable_memory: 1 });
  });

  it('every proc file missing: counted per reading, nothing emitted, no throw', async () => {
    const { ctx, emits, counts } = fakeContext();
    rmSync(proc, { recursive: true });
    rmSync(sys, { recursive: true });
    await (await source()).gather(ctx);
    assert.equal(emits.length, 0);
    assert.deepEqual(Object.fromEntries(counts), { unreadable_cpu: 1, unreadable_load: 1, unreadable_memory: 1, unreadable_network: 1 });
  });

  it('a garbage value is counted, not emitted', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeFileSync(join(sys, 'class/thermal/thermal_zone0/temp'), 'abc\n');
    writeFileSync(join(sys, 'class/hwmon/hwmon0/temp1_input'), '\n');
    writeFileSync(join(proc, 'loadavg'), 'x y z 1/2 3\n');
    const records = await poll(source(), ctx, emits);
    assert.deepEqual(
      records.map((r) => r.metric),
      ['cpu', 'memory', 'network', 'network'],
    );
    assert.deepEqual(Object.fromEntries(counts), { unreadable_thermal: 1, unreadable_hwmon: 1, unreadable_load: 1 });
  });

  it('a device directory that vanishes between polls is fine', async () => {
    const { ctx, emits, counts } = fakeContext();
    put(join(sys, 'class/hwmon/hwmon1/name'), 'nvme\n');
    put(join(sys, 'class/hwmon/hwmon1/temp1_input'), '38850\n'); // no label: the file name stands in
    put(join(sys, 'class/thermal/thermal_zone1/temp'), '40000\n'); // no type: the zone name stands in
    const src = await source({ include: ['thermal', 'hwmon'] });
    assert.deepEqual(await poll(src, ctx, emits), [
      { metric: 'temperature', source: 'thermal', sensor: 'cpu-thermal', celsius: 45.5 },
      { metric: 'temperature', source: 'thermal', sensor: 'thermal_zone1', celsius: 40 },
      { metric: 'temperature', source: 'hwmon', sensor: 'coretemp/Package id 0', celsius: 52 },
      { metric: 'temperature', source: 'hwmon', sensor: 'nvme/temp1', celsius: 38.85 },
    ]);

    rmSync(join(sys, 'class/hwmon/hwmon1'), { recursive: true });
    rmSync(join(sys, 'class/thermal/thermal_zone1'), { recursive: true });
    assert.deepEqual(await poll(src, ctx, emits), [
      { metric: 'temperature', source: 'thermal', sensor: 'cpu-thermal', celsius: 45.5 },
      { metric: 'temperature', source: 'hwmon', sensor: 'coretemp/Package id 0', celsius: 52 },
    ]);
    assert.deepEqual([...counts], [], 'a device that left is not an unreadable file');
  });

  it('disk usage per mount; a mount that cannot be read is counted', async () => {
    const { ctx, emits, counts } = fakeContext();
    const records = await poll(source({ include: ['disk'], mounts: [root, join(root, 'no-such-mount')] }), ctx, emits);
    assert.equal(records.length, 1);
    const [disk] = records as [AgentRecord];
    const fs = statfsSync(root);
    assert.equal(disk.metric, 'disk');
    assert.equal(disk.mount, root);
    assert.equal(disk.total, fs.blocks * fs.bsize, 'the size of a file system does not change between two reads');
    assert.ok(typeof disk.available === 'number' && typeof disk.free === 'number' && disk.available <= disk.free);
    assert.deepEqual(Object.fromEntries(counts), { unreadable_disk: 1 });
  });

  it('relative roots are resolved against the config directory, not the working directory', async () => {
    const { ctx, emits, counts } = fakeContext();
    const src = await source({ proc_root: 'proc', sys_root: 'sys', include: ['load', 'thermal'] }, root);
    assert.notEqual(process.cwd(), root);
    assert.deepEqual(await poll(src, ctx, emits), [
      { metric: 'load', load1: 0.52, load5: 0.58, load15: 0.59 },
      { metric: 'temperature', source: 'thermal', sensor: 'cpu-thermal', celsius: 45.5 },
    ]);
    assert.deepEqual([...counts], []);
  });

  it('the options schema applies its defaults', () => {
    const config = systemSource.options.parse({});
    assert.deepEqual(config, {
      proc_root: '/proc',
      sys_root: '/sys',
      mounts: ['/'],
      include: ['cpu', 'load', 'memory', 'disk', 'network', 'thermal', 'hwmon'],
    });
    assert.throws(() => systemSource.options.parse({ include: ['gpu'] }));
  });
});

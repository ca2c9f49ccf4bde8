/**
 * Cost of one poll of the sensors source over a realistic sysfs tree: 8 hwmon sensors, 4 thermal zones,
 * 2 IIO devices × 3 channels, 3 1-wire probes, a battery and a mains supply (25 records a poll).
 * The tree is regular files in a temporary directory, so a 1-wire conversion's 750 ms and a slow I2C bus
 * are not in these figures: they measure the agent's own cost (syscalls, parsing, records).
 *
 *   node scripts/bench/sensors-bench.ts [--polls 2000] [--warmup 200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../agent/log.ts';
import type { SourceContext } from '../../agent/sdk/index.ts';
import { sensorsSource } from '../../drivers/sources/sensors/index.ts';
import { SensorsSource } from '../../drivers/sources/sensors/source.ts';
import { options as sensorsOptions } from '../../drivers/sources/sensors/options.ts';
import { nodeIo, type SysfsIo } from '../../drivers/sources/sensors/sysfs.ts';
import { GATEWAY, w1Slave, writeTree, type Tree } from '../../test/fixtures/sysfs/tree.ts';
import { numberArg, parseArgs } from './proc.ts';
import { driverEnv, problemReporter } from '../../agent/hosting/driver-env.ts';

const pick = (prefixes: string[]): Tree => Object.fromEntries(Object.entries(GATEWAY).filter(([p]) => prefixes.some((x) => p.startsWith(x))));

const TREE: Tree = {
  // 8 hwmon readings: coretemp ×3, nct6775 ×3 (in0, fan1, temp7), sht3x ×2.
  ...pick(['class/hwmon/hwmon0/', 'class/hwmon/hwmon3/']),
  'class/hwmon/hwmon1/name': 'nct6775\n',
  'class/hwmon/hwmon1/in0_input': '1032\n',
  'class/hwmon/hwmon1/in0_label': 'Vcore\n',
  'class/hwmon/hwmon1/fan1_input': '1250\n',
  'class/hwmon/hwmon1/temp7_input': '38000\n',
  'class/hwmon/hwmon1/temp7_max': '80000\n',
  ...pick(['class/thermal/']),
  'class/thermal/thermal_zone2/type': 'acpitz\n',
  'class/thermal/thermal_zone2/temp': '27800\n',
  'class/thermal/thermal_zone3/type': 'soc-thermal\n',
  'class/thermal/thermal_zone3/temp': '41000\n',
  ...pick(['bus/iio/devices/iio:device0/']),
  'bus/iio/devices/iio:device1/name': 'ads1015\n',
  'bus/iio/devices/iio:device1/in_voltage0_raw': '1650\n',
  'bus/iio/devices/iio:device1/in_voltage1_raw': '825\n',
  'bus/iio/devices/iio:device1/in_voltage2_raw': '800\n',
  'bus/iio/devices/iio:device1/in_voltage_scale': '2.000000\n',
  'bus/w1/devices/w1_bus_master1/w1_master_slave_count': '3\n',
  'bus/w1/devices/28-0316a2794dff/w1_slave': w1Slave(23125),
  'bus/w1/devices/28-0416b3a2c1ff/w1_slave': w1Slave(19500),
  'bus/w1/devices/28-0516c4b3d2ff/w1_slave': w1Slave(-1250),
  ...pick(['class/power_supply/']),
};

const args = parseArgs(process.argv.slice(2));
const polls = numberArg(args, 'polls', 2000);
const warmup = numberArg(args, 'warmup', 200);

const root = mkdtempSync(join(tmpdir(), 'edge-agent-sensors-bench-'));
try {
  writeTree(root, TREE);
  const config = {
    ...sensorsOptions().parse({ sys_root: root }),
    type: 'sensors',
    name: 'bench',
    stream: 'bench',
    interval: 1000,
    on_start_error: 'retry' as const,
  };
  const source = (await sensorsSource.create(config, driverEnv({ log: silentLogger, baseDir: root }))) as SensorsSource;
  let records = 0;
  const problems = new Map<string, number>();
  const ctx: SourceContext = {
    name: 'bench',
    log: silentLogger,
    cursor: undefined,
    signal: new AbortController().signal,
    counters: { add: (name, n = 1) => problems.set(name, (problems.get(name) ?? 0) + n) },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (batch) => {
      records += batch.length;
    },
    fail: () => {},
  };

  // One poll through a counting wrapper: the file operations a poll costs (the measured polls run unwrapped).
  const ops = { files: 0, listings: 0, links: 0 };
  const counting: SysfsIo = {
    readFile: (p) => (ops.files++, nodeIo.readFile(p)),
    readdir: (p) => (ops.listings++, nodeIo.readdir(p)),
    readlink: (p) => (ops.links++, nodeIo.readlink(p)),
  };
  await new SensorsSource({ ...config, sys_root: root }, counting).gather(ctx);

  for (let i = 0; i < warmup; i++) await source.gather(ctx);
  records = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < polls; i++) await source.gather(ctx);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMicros = cpu.user + cpu.system;
  if (problems.size > 0) throw new Error(`the bench tree should read cleanly, got ${JSON.stringify(Object.fromEntries(problems))}`);
  process.stdout.write(
    `${JSON.stringify({
      polls,
      fs_ops_per_poll: ops,
      records_per_poll: records / polls,
      polls_per_s: Math.round(polls / seconds),
      records_per_s: Math.round(records / seconds),
      cpu_us_per_poll: Math.round(cpuMicros / polls),
      cpu_us_per_record: Math.round((10 * cpuMicros) / records) / 10,
      note: 'CPU is the whole process (main thread and the libuv threads doing the reads)',
    })}\n`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}

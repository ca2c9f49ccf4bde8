import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { join } from 'node:path';
import { sensorsSource } from '../../drivers/sources/sensors/index.ts';
import { SensorsSource } from '../../drivers/sources/sensors/source.ts';
import { options as sensorsOptions } from '../../drivers/sources/sensors/options.ts';
import { parseW1Slave } from '../../drivers/sources/sensors/subsystems/w1.ts';
import { nodeIo, readAttribute, type SysfsIo } from '../../drivers/sources/sensors/sysfs.ts';
import { silentLogger } from '../../agent/log.ts';
import { isAgentError, type AgentRecord, type SourceContext } from '../../agent/sdk/index.ts';
import { GATEWAY, w1Slave, writeTree } from '../fixtures/sysfs/tree.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'edge-agent-sensors-'));
  writeTree(root, GATEWAY);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function fakeContext() {
  const emits: AgentRecord[][] = [];
  const counts = new Map<string, number>();
  const ctx: SourceContext = {
    name: 'sensors',
    log: silentLogger,
    cursor: undefined,
    signal: new AbortController().signal,
    counters: { add: (name, n = 1) => counts.set(name, (counts.get(name) ?? 0) + n) },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (records) => {
      emits.push(records);
    },
    fail: (err) => {
      throw new Error(`a polled source must not call fail: ${String(err)}`);
    },
  };
  return { ctx, emits, counts };
}

/** Through the options schema so defaults apply, and through the driver's create unless an io is injected. */
async function source(opts: Record<string, unknown> = {}, io?: SysfsIo): Promise<SensorsSource> {
  const config = {
    ...sensorsOptions().parse({ sys_root: root, ...opts }),
    type: 'sensors',
    name: 'sensors',
    stream: 'sensors',
    interval: 10_000,
    on_start_error: 'retry' as const,
  };
  if (io) return new SensorsSource(config, io);
  return (await sensorsSource.create(config, driverEnv({ log: silentLogger, baseDir: root }))) as SensorsSource;
}

/** One poll: checks every record has the poll's single timestamp, then returns them without it. */
async function poll(made: SensorsSource | Promise<SensorsSource>, ctx: SourceContext, emits: AgentRecord[][]): Promise<AgentRecord[]> {
  const src = await made;
  const before = Date.now();
  const n = emits.length;
  await src.gather(ctx);
  if (emits.length === n) return [];
  assert.equal(emits.length, n + 1, 'one emit per poll');
  const records = emits[n]!;
  const stamps = new Set(records.map((r) => r.ts));
  assert.equal(stamps.size, 1, 'one timestamp per poll');
  const [ts] = stamps;
  assert.ok(typeof ts === 'number' && ts >= before && ts <= Date.now());
  return records.map(({ ts: _ts, ...rest }) => rest);
}

const r = (family: string, sensor: string, value: number, unit: string, extra: Record<string, unknown> = {}) => ({ family, sensor, value, unit, ...extra });

const HWMON = [
  r('temperature', 'hwmon/coretemp/Package id 0', 52, 'celsius'),
  r('temperature', 'hwmon/coretemp/Core 0', 49, 'celsius'),
  r('temperature', 'hwmon/coretemp/Core 1', 51, 'celsius'),
  r('fan', 'hwmon/nct6775/fan1', 1250, 'rpm'),
  r('fan', 'hwmon/nct6775/fan2', 0, 'rpm'),
  r('voltage', 'hwmon/nct6775/Vcore', 1.032, 'V'),
  r('voltage', 'hwmon/nct6775/in1', 12.096, 'V'),
  r('temperature', 'hwmon/nct6775/temp7', 38, 'celsius'),
  r('current', 'hwmon/ina226/VBUS', 0.25, 'A'),
  r('voltage', 'hwmon/ina226/VBUS', 12.04, 'V'),
  r('power', 'hwmon/ina226/VBUS', 3.01, 'W'),
  r('humidity', 'hwmon/sht3x/humidity1', 45.2, 'percent'),
  r('temperature', 'hwmon/sht3x/temp1', 23.45, 'celsius'),
];
const THERMAL = [r('temperature', 'thermal/x86_pkg_temp', 52, 'celsius'), r('temperature', 'thermal/cpu-thermal', 45.5, 'celsius')];
const IIO = [
  r('acceleration', 'iio/lis3dh/accel_x', -0.153216, 'm/s^2'),
  r('acceleration', 'iio/lis3dh/accel_y', 0.306432, 'm/s^2'),
  r('acceleration', 'iio/lis3dh/accel_z', 9.805824, 'm/s^2'),
  r('temperature', 'iio/ads1015/temp', 36.543108987, 'celsius'), // (2516 − 2219) × 123.040771 m°C
  r('voltage', 'iio/ads1015/voltage0', 3.3, 'V'), // shared in_voltage_scale: 1650 × 2 mV
  r('voltage', 'iio/ads1015/voltage1', 1.65, 'V'),
  r('voltage', 'iio/ads1015/voltage2', 0.1, 'V'), // its own in_voltage2_scale: 800 × 0.125 mV
  r('pressure', 'iio/bmp280/pressure', 101.325, 'kPa'),
  r('temperature', 'iio/bmp280/temp', 23.48, 'celsius'),
];
const W1 = [r('temperature', 'w1/28-0316a2794dff', 23.125, 'celsius'), r('temperature', 'w1/28-0516c4b3d2ff', -1.25, 'celsius')];
const POWER = [
  r('online', 'power_supply/AC', 1, 'bool'),
  r('capacity', 'power_supply/BAT0', 87, 'percent', { status: 'Discharging' }),
  r('voltage', 'power_supply/BAT0', 12.345, 'V'),
  r('current', 'power_supply/BAT0', 1.5, 'A'),
];
const ALL = [...HWMON, ...THERMAL, ...IIO, ...W1, ...POWER];

describe('sensors source: readings', () => {
  it('reads every subsystem of a real-format tree into exact records; the CRC-failed 1-wire read is counted', async () => {
    const { ctx, emits, counts } = fakeContext();
    assert.deepEqual(await poll(source(), ctx, emits), ALL);
    assert.deepEqual(Object.fromEntries(counts), { bad_crc: 1 });
  });

  it('include picks subsystems, in the order given', async () => {
    const { ctx, emits } = fakeContext();
    assert.deepEqual(await poll(source({ include: ['power_supply', 'thermal'] }), ctx, emits), [...POWER, ...THERMAL]);
  });

  it('converts each family to its declared unit', async () => {
    const { ctx, emits } = fakeContext();
    const units = { temperature: 'fahrenheit', voltage: 'mV', current: 'mA', power: 'mW', humidity: 'millipercent', pressure: 'hPa', acceleration: 'g' };
    const records = await poll(source({ units, devices: ['hwmon/ina226', 'hwmon/sht3x', 'iio/lis3dh/accel_z', 'iio/bmp280', 'w1/*'] }), ctx, emits);
    assert.deepEqual(records, [
      r('current', 'hwmon/ina226/VBUS', 250, 'mA'),
      r('voltage', 'hwmon/ina226/VBUS', 12040, 'mV'),
      r('power', 'hwmon/ina226/VBUS', 3010, 'mW'),
      r('humidity', 'hwmon/sht3x/humidity1', 45200, 'millipercent'),
      r('temperature', 'hwmon/sht3x/temp1', 74.21, 'fahrenheit'),
      r('acceleration', 'iio/lis3dh/accel_z', 0.999915771441, 'g'), // 9.805824 / 9.80665, to 12 significant digits
      r('pressure', 'iio/bmp280/pressure', 1013.25, 'hPa'),
      r('temperature', 'iio/bmp280/temp', 74.264, 'fahrenheit'),
      r('temperature', 'w1/28-0316a2794dff', 73.625, 'fahrenheit'),
      r('temperature', 'w1/28-0516c4b3d2ff', 29.75, 'fahrenheit'),
    ]);
  });

  it('kelvin, millicelsius, µV, µA and µW keep the kernel’s integers', async () => {
    const { ctx, emits } = fakeContext();
    const records = await poll(
      source({ units: { temperature: 'kelvin', voltage: 'uV', current: 'uA', power: 'uW' }, devices: ['hwmon/ina226', 'thermal/*'] }),
      ctx,
      emits,
    );
    assert.deepEqual(records, [
      r('current', 'hwmon/ina226/VBUS', 250000, 'uA'),
      r('voltage', 'hwmon/ina226/VBUS', 12040000, 'uV'),
      r('power', 'hwmon/ina226/VBUS', 3010000, 'uW'),
      r('temperature', 'thermal/x86_pkg_temp', 325.15, 'kelvin'),
      r('temperature', 'thermal/cpu-thermal', 318.65, 'kelvin'),
    ]);
    const milli = await poll(source({ units: { temperature: 'millicelsius' }, devices: ['thermal/cpu-thermal'] }), ctx, emits);
    assert.deepEqual(milli, [r('temperature', 'thermal/cpu-thermal', 45500, 'millicelsius')]);
  });

  it('per-sensor overrides: value × scale + offset in the output unit, optionally per family and with a unit; first match wins', async () => {
    const { ctx, emits } = fakeContext();
    const overrides = [
      { sensor: 'w1/28-0316*', offset: -0.5 }, // a calibrated probe
      { sensor: 'hwmon/ina226/*', family: 'voltage', scale: 0.5, unit: 'bar' }, // a pressure transducer on the bus input
      { sensor: 'w1/*', scale: 100 }, // not reached for the first probe
    ];
    const records = await poll(source({ overrides, devices: ['hwmon/ina226', 'w1/*'] }), ctx, emits);
    assert.deepEqual(records, [
      r('current', 'hwmon/ina226/VBUS', 0.25, 'A'),
      r('voltage', 'hwmon/ina226/VBUS', 6.02, 'bar'),
      r('power', 'hwmon/ina226/VBUS', 3.01, 'W'),
      r('temperature', 'w1/28-0316a2794dff', 22.625, 'celsius'),
      r('temperature', 'w1/28-0516c4b3d2ff', -125, 'celsius'),
    ]);
  });

  it('devices filter: device globs and sensor globs; excluded devices are not read, so their trouble is not counted', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeFileSync(join(root, 'class/hwmon/hwmon1/in0_input'), 'abc\n');
    const records = await poll(source({ devices: ['hwmon/coretemp/Core *', 'power_supply/A?', 'iio/ads*/voltage[01]'] }), ctx, emits);
    assert.deepEqual(records, [HWMON[1], HWMON[2], IIO[4], IIO[5], POWER[0]]);
    assert.deepEqual(Object.fromEntries(counts), {}, 'neither the broken nct6775 nor the bad 1-wire probe was read');
  });

  it('IIO: a channel’s _input wins over its _raw; unknown channel types and *_available files are ignored', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeTree(root, {
      'bus/iio/devices/iio:device3/name': 'si7020\n',
      'bus/iio/devices/iio:device3/in_humidityrelative_raw': '27000\n',
      'bus/iio/devices/iio:device3/in_humidityrelative_scale': '1.9073486\n',
      'bus/iio/devices/iio:device3/in_humidityrelative_offset': '-3000\n',
      'bus/iio/devices/iio:device3/in_temp_raw': '26000\n',
      'bus/iio/devices/iio:device3/in_temp_input': '21500\n',
      'bus/iio/devices/iio:device3/in_rot_quaternion_raw': '1 2 3 4\n',
      'bus/iio/devices/iio:device3/in_voltage0_raw_available': '[0 1 4095]\n',
    });
    const records = await poll(source({ devices: ['iio/si7020'] }), ctx, emits);
    assert.deepEqual(records, [
      r('humidity', 'iio/si7020/humidityrelative', 45.7763664, 'percent'), // (27000 − 3000) × 1.9073486 m%RH
      r('temperature', 'iio/si7020/temp', 21.5, 'celsius'),
    ]);
    assert.deepEqual(Object.fromEntries(counts), {});
  });

  it('two devices with one name are told apart by the hardware address of their device link', async () => {
    const { ctx, emits } = fakeContext();
    writeTree(root, {
      'class/hwmon/hwmon4/name': 'nvme\n',
      'class/hwmon/hwmon4/device': { link: '../../../devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0' },
      'class/hwmon/hwmon4/temp1_input': '38850\n',
      'class/hwmon/hwmon4/temp1_label': 'Composite\n',
      'class/hwmon/hwmon5/name': 'nvme\n',
      'class/hwmon/hwmon5/device': { link: '../../../devices/pci0000:00/0000:00:1d.4/0000:3e:00.0/nvme/nvme1' },
      'class/hwmon/hwmon5/temp1_input': '41850\n',
      'class/hwmon/hwmon5/temp1_label': 'Composite\n',
      // Thermal zones rarely have a device link: the zone's directory tells them apart.
      'class/thermal/thermal_zone2/type': 'acpitz\n',
      'class/thermal/thermal_zone2/temp': '27800\n',
      'class/thermal/thermal_zone3/type': 'acpitz\n',
      'class/thermal/thermal_zone3/temp': '29800\n',
    });
    const records = await poll(source({ devices: ['hwmon/nvme*', 'thermal/acpitz*'] }), ctx, emits);
    assert.deepEqual(records, [
      r('temperature', 'hwmon/nvme@nvme0/Composite', 38.85, 'celsius'),
      r('temperature', 'hwmon/nvme@nvme1/Composite', 41.85, 'celsius'),
      r('temperature', 'thermal/acpitz@thermal_zone2', 27.8, 'celsius'),
      r('temperature', 'thermal/acpitz@thermal_zone3', 29.8, 'celsius'),
    ]);
  });

  it('hwmon of old kernels keeps its attributes under device/; power*_average stands in for a missing power*_input', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeTree(root, {
      'class/hwmon/hwmon6/device/name': 'lm75\n',
      'class/hwmon/hwmon6/device/temp1_input': '31500\n',
      'class/hwmon/hwmon7/name': 'power_meter\n',
      'class/hwmon/hwmon7/power1_average': '11500000\n',
      'class/hwmon/hwmon7/power1_average_interval': '1000\n',
    });
    const records = await poll(source({ devices: ['hwmon/lm75', 'hwmon/power_meter'] }), ctx, emits);
    assert.deepEqual(records, [r('temperature', 'hwmon/lm75/temp1', 31.5, 'celsius'), r('power', 'hwmon/power_meter/power1', 11.5, 'W')]);
    assert.deepEqual(Object.fromEntries(counts), {});
  });

  it('power supplies: an empty battery slot has no readings; a USB supply offline reads 0', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeTree(root, {
      'class/power_supply/BAT1/type': 'Battery\n',
      'class/power_supply/BAT1/present': '0\n',
      'class/power_supply/usb/type': 'USB\n',
      'class/power_supply/usb/online': '0\n',
    });
    const records = await poll(source({ include: ['power_supply'] }), ctx, emits);
    assert.deepEqual(records, [...POWER, r('online', 'power_supply/usb', 0, 'bool')]);
    assert.deepEqual(Object.fromEntries(counts), {});
  });

  it('relative sys_root is resolved against the config directory; a sys_root that is not there is a retryable start error', async () => {
    const { ctx, emits } = fakeContext();
    const config = {
      ...sensorsOptions().parse({ sys_root: 'fixture-sys', include: ['thermal'] }),
      type: 'sensors',
      name: 's',
      stream: 's',
      interval: 1000,
      on_start_error: 'retry' as const,
    };
    writeTree(join(root, 'fixture-sys'), { 'class/thermal/thermal_zone0/type': 'soc-thermal\n', 'class/thermal/thermal_zone0/temp': '61000\n' });
    assert.notEqual(process.cwd(), root);
    const src = (await sensorsSource.create(config, driverEnv({ log: silentLogger, baseDir: root }))) as SensorsSource;
    assert.deepEqual(await poll(src, ctx, emits), [r('temperature', 'thermal/soc-thermal', 61, 'celsius')]);
    await assert.rejects(
      sensorsSource.create(config, driverEnv({ log: silentLogger, baseDir: join(root, 'class') })),
      (err) => isAgentError(err, 'SOURCE_FAILED') && err.retryable && err.message.includes(join(root, 'class', 'fixture-sys')),
    );
  });

  it('the options schema applies its defaults and refuses unknown units and subsystems', () => {
    assert.deepEqual(sensorsOptions().parse({}), {
      sys_root: '/sys',
      include: ['hwmon', 'thermal', 'iio', 'w1', 'power_supply'],
      devices: [],
      units: { temperature: 'celsius', voltage: 'V', current: 'A', power: 'W', humidity: 'percent', pressure: 'kPa', acceleration: 'm/s^2' },
      overrides: [],
    });
    assert.deepEqual(sensorsOptions().parse({ overrides: [{ sensor: 'w1/*' }] }).overrides, [{ sensor: 'w1/*', scale: 1, offset: 0 }]);
    assert.throws(() => sensorsOptions().parse({ units: { temperature: 'rankine' } }));
    assert.throws(() => sensorsOptions().parse({ include: ['gpio'] }));
    assert.throws(() => sensorsOptions().parse({ overrides: [{ sensor: 'x', family: 'smell' }] }));
  });
});

describe('sensors source: bad input', () => {
  it('unreadable values ("abc", empty), a real EIO and a missing required file are counted per kind and skipped', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeFileSync(join(root, 'class/hwmon/hwmon0/temp2_input'), 'abc\n');
    writeFileSync(join(root, 'class/thermal/thermal_zone1/temp'), '');
    writeFileSync(join(root, 'bus/iio/devices/iio:device1/in_voltage_scale'), 'x\n'); // spoils both channels that share it
    // The kernel answers EIO for /proc/self/mem at address 0: the same error a sensor gives when its bus fails.
    unlinkSync(join(root, 'class/hwmon/hwmon3/temp1_input'));
    symlinkSync('/proc/self/mem', join(root, 'class/hwmon/hwmon3/temp1_input'));
    unlinkSync(join(root, 'class/thermal/thermal_zone0/temp'));
    // Optional files missing are no problem: the label falls back to the channel, a battery without status has none.
    unlinkSync(join(root, 'class/hwmon/hwmon0/temp3_label'));
    unlinkSync(join(root, 'class/power_supply/BAT0/status'));

    const records = await poll(source(), ctx, emits);
    const without = new Set([
      'hwmon/coretemp/Core 0',
      'hwmon/sht3x/temp1',
      'thermal/cpu-thermal',
      'thermal/x86_pkg_temp',
      'iio/ads1015/voltage0',
      'iio/ads1015/voltage1',
    ]);
    const expected = ALL.filter((x) => !without.has(x.sensor)).map((x) =>
      x.sensor === 'hwmon/coretemp/Core 1'
        ? { ...x, sensor: 'hwmon/coretemp/temp3' }
        : x.family === 'capacity'
          ? r('capacity', 'power_supply/BAT0', 87, 'percent')
          : x,
    );
    assert.deepEqual(records, expected);
    assert.deepEqual(Object.fromEntries(counts), { unreadable_value: 3, read_error: 1, missing_file: 1, bad_crc: 1 });
  });

  it('a directory where a value should be is a read error, not a crash', async () => {
    const { ctx, emits, counts } = fakeContext();
    unlinkSync(join(root, 'class/power_supply/AC/online'));
    mkdirSync(join(root, 'class/power_supply/AC/online'));
    const records = await poll(source({ include: ['power_supply'] }), ctx, emits);
    assert.deepEqual(records, POWER.slice(1));
    assert.deepEqual(Object.fromEntries(counts), { read_error: 1 });
  });

  it('a hwmon device without its name file is counted and named by its directory', async () => {
    const { ctx, emits, counts } = fakeContext();
    unlinkSync(join(root, 'class/hwmon/hwmon3/name'));
    const records = await poll(source({ devices: ['hwmon/hwmon3'] }), ctx, emits);
    assert.deepEqual(records, [r('humidity', 'hwmon/hwmon3/humidity1', 45.2, 'percent'), r('temperature', 'hwmon/hwmon3/temp1', 23.45, 'celsius')]);
    assert.deepEqual(Object.fromEntries(counts), { missing_file: 1 });
  });

  it('w1_slave: YES is accepted, NO and an all-zero scratchpad are bad CRCs, a truncated file is unreadable', () => {
    const seen: string[] = [];
    const files = { unreadable: (_: string, text: string) => seen.push(`unreadable ${text}`), badCrc: (_: string, text: string) => seen.push(`crc ${text}`) };
    assert.equal(parseW1Slave(files, '72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n'), 23125);
    assert.equal(parseW1Slave(files, w1Slave(-10125)), -10125);
    assert.equal(seen.length, 0, seen.join());
    assert.equal(parseW1Slave(files, '72 01 4b 46 7f ff 0e 10 57 : crc=ff NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n'), undefined);
    assert.equal(parseW1Slave(files, '00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n'), undefined);
    assert.equal(parseW1Slave(files, '72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n'), undefined);
    assert.equal(parseW1Slave(files, ''), undefined);
    assert.deepEqual(
      seen.map((s) => s.split(' ')[0]),
      ['crc', 'crc', 'unreadable', 'unreadable'],
    );
  });

  it('w1: every malformed variant in a real tree is counted by kind, and the good probe still reads', async () => {
    const { ctx, emits, counts } = fakeContext();
    writeTree(root, {
      'bus/w1/devices/28-0616d5c4e3ff/w1_slave': '00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n',
      'bus/w1/devices/28-0716e6d5f4ff/w1_slave': '72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n',
      'bus/w1/devices/28-0816f7e605ff/temperature': 'abc\n',
      'bus/w1/devices/28-0916a8f716ff/name': '28-0916a8f716ff\n', // no reading file at all
    });
    const records = await poll(source({ include: ['w1'] }), ctx, emits);
    assert.deepEqual(records, W1);
    assert.deepEqual(Object.fromEntries(counts), { bad_crc: 2, unreadable_value: 2, missing_file: 1 });
  });

  it('a lasting problem is one warning, then debug lines while it lasts, then one line when it clears', async () => {
    const lines: { level: number; msg: string; kind?: string; path?: string }[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) });
    const { ctx, emits, counts } = fakeContext();
    const log = pino({ level: 'debug' }, sink);
    // The source warns through its problem reporter and notes persisting and cleared problems on its logger.
    const logged: SourceContext = { ...ctx, log, problems: problemReporter(() => ctx.counters, log) };
    const src = await source({ include: ['thermal'] });
    const file = join(root, 'class/thermal/thermal_zone1/temp');
    writeFileSync(file, 'abc\n');
    await poll(src, logged, emits);
    await poll(src, logged, emits);
    writeFileSync(file, '45500\n');
    assert.deepEqual(await poll(src, logged, emits), THERMAL);
    const WARN = 40,
      INFO = 30,
      DEBUG = 20;
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.kind, l.path]),
      [
        [WARN, 'sensor problem; reading skipped', 'unreadable_value', file],
        [DEBUG, 'sensor problem persists', 'unreadable_value', file],
        [INFO, 'sensor problem cleared', 'unreadable_value', file],
      ],
    );
    assert.equal(counts.get('unreadable_value'), 2, 'counted at every poll it happens');
  });

  it('readAttribute tells a missing file from a failed read', async () => {
    assert.deepEqual(await readAttribute(nodeIo, join(root, 'class/hwmon/hwmon0/temp1_input')), { ok: true, text: '52000\n' });
    assert.deepEqual(await readAttribute(nodeIo, join(root, 'class/hwmon/hwmon0/temp9_input')), { ok: false, missing: true, code: 'ENOENT' });
    assert.deepEqual(await readAttribute(nodeIo, join(root, 'class/hwmon/hwmon0/name/x')), { ok: false, missing: true, code: 'ENOTDIR' });
    assert.deepEqual(await readAttribute(nodeIo, join(root, 'class/hwmon')), { ok: false, missing: false, code: 'EISDIR' });
  });
});

describe('sensors source: devices that come and go', () => {
  it('a device removed between polls is counted once as lost; when it comes back it is read again', async () => {
    const { ctx, emits, counts } = fakeContext();
    const src = await source({ include: ['hwmon', 'w1'] });
    assert.deepEqual(await poll(src, ctx, emits), [...HWMON, ...W1]);

    const parked = join(root, 'parked');
    mkdirSync(parked);
    renameSync(join(root, 'class/hwmon/hwmon2'), join(parked, 'hwmon2'));
    renameSync(join(root, 'bus/w1/devices/28-0316a2794dff'), join(parked, 'w1'));
    const lessHwmon = HWMON.filter((x) => !x.sensor.startsWith('hwmon/ina226/'));
    assert.deepEqual(await poll(src, ctx, emits), [...lessHwmon, W1[1]]);
    assert.deepEqual(Object.fromEntries(counts), { bad_crc: 2, device_lost: 2 });

    assert.deepEqual(await poll(src, ctx, emits), [...lessHwmon, W1[1]]);
    assert.equal(counts.get('device_lost'), 2, 'lost once, not at every poll');

    // It comes back under another number, as a re-plugged device does: the id follows the name, not the number.
    renameSync(join(parked, 'hwmon2'), join(root, 'class/hwmon/hwmon9'));
    renameSync(join(parked, 'w1'), join(root, 'bus/w1/devices/28-0316a2794dff'));
    const ina226 = HWMON.filter((x) => x.sensor.startsWith('hwmon/ina226/'));
    assert.deepEqual(await poll(src, ctx, emits), [...lessHwmon, ...ina226, ...W1]);
    assert.equal(counts.get('device_lost'), 2);
  });

  it('a device that appears after the first poll is picked up', async () => {
    const { ctx, emits } = fakeContext();
    const src = await source({ include: ['w1'] });
    assert.deepEqual(await poll(src, ctx, emits), W1);
    writeTree(root, { 'bus/w1/devices/28-ff16b9080a01/w1_slave': w1Slave(18062) });
    assert.deepEqual(await poll(src, ctx, emits), [...W1, r('temperature', 'w1/28-ff16b9080a01', 18.062, 'celsius')]);
  });

  it('a stopped source ends a 1-wire scan, which reads one probe at a time, without reading the remaining probes', async () => {
    const { ctx, emits } = fakeContext();
    const abort = new AbortController();
    const read: string[] = [];
    const io = {
      ...nodeIo,
      readFile: async (path: string) => {
        read.push(path);
        abort.abort(); // the agent stops while the first probe converts
        return nodeIo.readFile(path);
      },
    };
    assert.deepEqual(await poll(source({ include: ['w1'] }, io), { ...ctx, signal: abort.signal }, emits), [W1[0]]);
    assert.deepEqual(read, [join(root, 'bus/w1/devices/28-0316a2794dff/w1_slave')]);
  });

  it('every subsystem directory gone: nothing emitted, no throw; the devices are counted lost', async () => {
    const { ctx, emits, counts } = fakeContext();
    const src = await source({ include: ['thermal', 'power_supply'] });
    await poll(src, ctx, emits);
    rmSync(join(root, 'class'), { recursive: true });
    const n = emits.length;
    await src.gather(ctx);
    assert.equal(emits.length, n, 'no empty emit');
    assert.deepEqual(Object.fromEntries(counts), { device_lost: 4 });
  });

  /** Real fs calls, with hooks run after a directory listing returns and just before a file is read. */
  function hookedIo(afterList: (path: string) => void, beforeRead: (path: string) => void = () => {}): SysfsIo {
    return {
      ...nodeIo,
      readdir: async (path) => {
        const names = await nodeIo.readdir(path);
        afterList(path);
        return names;
      },
      readFile: async (path) => {
        beforeRead(path);
        return nodeIo.readFile(path);
      },
    };
  }

  it('a device directory removed mid-poll, after the listing and before its reads, is counted once as vanished and not again as lost', async () => {
    const { ctx, emits, counts } = fakeContext();
    let armed = false;
    const io = hookedIo((path) => {
      if (armed && path === join(root, 'class/hwmon')) {
        armed = false;
        rmSync(join(root, 'class/hwmon/hwmon1'), { recursive: true });
      }
    });
    const src = await source({ include: ['hwmon'] }, io);
    assert.deepEqual(await poll(src, ctx, emits), HWMON);
    armed = true;
    const rest = HWMON.filter((x) => !x.sensor.startsWith('hwmon/nct6775/'));
    assert.deepEqual(await poll(src, ctx, emits), rest);
    assert.deepEqual(Object.fromEntries(counts), { device_vanished: 1 });
    assert.deepEqual(await poll(src, ctx, emits), rest);
    assert.deepEqual(Object.fromEntries(counts), { device_vanished: 1 });
  });

  it('a device removed while its channels are being read is counted once, whatever number of reads failed', async () => {
    const { ctx, emits, counts } = fakeContext();
    const dev = join(root, 'class/hwmon/hwmon0');
    // Its name was read and its channels listed; it goes as the first channel read starts, so all six fail.
    const io = hookedIo(
      () => {},
      (path) => {
        if (path === join(dev, 'temp1_input')) rmSync(dev, { recursive: true });
      },
    );
    assert.deepEqual(await poll(source({ include: ['hwmon'] }, io), ctx, emits), HWMON.slice(3));
    assert.deepEqual(Object.fromEntries(counts), { device_vanished: 1 });
  });

  it('a file removed between the directory listing and its read is a missing file; the device’s other readings stay', async () => {
    const { ctx, emits, counts } = fakeContext();
    const dev = join(root, 'class/hwmon/hwmon0');
    let armed = true;
    const io = hookedIo((path) => {
      if (armed && path === dev) {
        armed = false;
        unlinkSync(join(dev, 'temp2_input'));
      }
    });
    assert.deepEqual(
      await poll(source({ include: ['hwmon'] }, io), ctx, emits),
      HWMON.filter((x) => x.sensor !== 'hwmon/coretemp/Core 0'),
    );
    assert.deepEqual(Object.fromEntries(counts), { missing_file: 1 });
  });
});

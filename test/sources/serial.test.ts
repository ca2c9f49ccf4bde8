import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialSource } from '../../drivers/sources/serial/index.ts';
import { SerialSource } from '../../drivers/sources/serial/source.ts';
import { deviceSpec, type PortListing } from '../../drivers/common/serial-port.ts';
import { options as serialOptions } from '../../drivers/sources/serial/options.ts';
import { checksum } from '../../drivers/sources/serial/nmea.ts';
import type { SourceConfig } from '../../agent/config/schema.ts';
import { configSchemas } from '../../agent/app.ts';
import { silentLogger } from '../../agent/log.ts';
import { isAgentError, type AgentRecord, type Cursor, type ServiceSource, type SourceContext } from '../../agent/sdk/index.ts';
import { startPtyPair, type PtyPair } from '../helpers/socat.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';
const { sourceSchema } = configSchemas();

// Every test here runs the driver on a real pseudo-terminal pair: the test writes bytes into the host side
// as a device would, and the source reads the other side through the serial port library.

let dir: string;
const pairs = new Set<PtyPair>();
const sources = new Set<ServiceSource>();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-serial-'));
});
after(async () => {
  for (const s of sources) await s.stop();
  for (const p of pairs) await p.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function pty(name: string): Promise<PtyPair> {
  const pair = await startPtyPair(dir, name);
  pairs.add(pair);
  return pair;
}

/** The SDK surface a service source sees, recording what it emits and counts, with event-driven waits. */
function fakeContext(cursor?: Cursor) {
  const records: AgentRecord[] = [];
  const cursors: Cursor[] = [];
  const counts = new Map<string, number>();
  const failures: unknown[] = [];
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of [...waiters]) w();
  };
  const ctx: SourceContext = {
    name: 'serial-test',
    log: silentLogger,
    cursor,
    signal: new AbortController().signal,
    counters: {
      add: (name, n = 1) => {
        counts.set(name, (counts.get(name) ?? 0) + n);
        changed();
      },
    },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (rs, c) => {
      records.push(...rs);
      cursors.push(c as Cursor);
      changed();
    },
    fail: (err) => {
      failures.push(err);
      changed();
    },
  };
  const count = (name: string) => counts.get(name) ?? 0;
  const until = (what: string, done: () => boolean, ms = 5000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`timed out waiting for ${what}; last records ${JSON.stringify(records.slice(-3))}, counters ${JSON.stringify(Object.fromEntries(counts))}`),
        );
      }, ms);
      waiters.add(check);
      check();
    });
  return { ctx, records, cursors, counts, count, failures, until };
}

function config(driverOptions: Record<string, unknown>): SourceConfig {
  return sourceSchema.parse({ type: 'serial', name: 'serial-test', flush_interval: '5ms', ...driverOptions }) as SourceConfig;
}

async function started(driverOptions: Record<string, unknown>, cursor?: Cursor) {
  const source = (await serialSource.create(config(driverOptions) as never, driverEnv({ log: silentLogger, baseDir: dir }))) as ServiceSource;
  const fake = fakeContext(cursor);
  await source.start(fake.ctx);
  sources.add(source);
  return { source, ...fake };
}

async function stop(source: ServiceSource): Promise<void> {
  sources.delete(source);
  await source.stop();
}

function nmea(body: string, start = '$'): string {
  return `${start}${body}*${checksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

describe('serial source on a real pty: lines', () => {
  it('emits one record per line with ts, port and line, drops the partial line at open, and counts overlong lines', async () => {
    const pair = await pty('lines');
    const s = await started({ path: pair.device, max_frame_bytes: 64 });
    const stream = `rest of a line sent before we opened\nfirst\r\nsecond\n\n${'x'.repeat(200)}\nthird\n`;
    await pair.write(stream);
    await s.until('three lines', () => s.records.length >= 3);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => r.line),
      ['first', 'second', 'third'],
    );
    for (const r of s.records) {
      assert.equal(typeof r.ts, 'number');
      assert.equal(r.port, pair.device);
    }
    assert.equal(s.count('partial_at_open'), 1);
    assert.equal(s.count('overlong'), 1);
    assert.equal(s.count('bad_frames'), 2);
    assert.equal(s.count('frames'), 3);
    assert.equal(s.count('bytes'), Buffer.byteLength(stream));
    assert.equal(s.cursors.at(-1), Buffer.byteLength(stream), 'the cursor counts every byte consumed');
    assert.deepEqual(s.failures, []);
  });

  it('continues the byte count from the committed cursor, and honours a custom delimiter', async () => {
    const pair = await pty('delim');
    const s = await started({ path: pair.device, framing: { mode: 'lines', delimiter: ';' } }, 1000);
    await pair.write(';a;b;');
    await s.until('two records', () => s.records.length >= 2);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => r.line),
      ['a', 'b'],
    );
    assert.equal(s.cursors.at(-1), 1005);
  });
});

describe('serial source on a real pty: regex', () => {
  it('turns named groups into fields and counts lines that do not match', async () => {
    const pair = await pty('regex');
    const s = await started({ path: pair.device, framing: { mode: 'regex', pattern: '^(?<sensor>\\w+) T=(?<temp>-?[0-9.]+)C$' } });
    await pair.write('\r\nboiler T=71.5C\r\n!!noise!!\r\nroom T=-2C\r\n');
    await s.until('two records and one miss', () => s.records.length >= 2 && s.count('no_match') >= 1);
    await stop(s.source);
    assert.deepEqual(
      s.records.map(({ sensor, temp }) => ({ sensor, temp })),
      [
        { sensor: 'boiler', temp: 71.5 },
        { sensor: 'room', temp: -2 },
      ],
    );
    assert.equal(s.count('bad_frames'), 1);
  });
});

describe('serial source on a real pty: json_lines', () => {
  it('spreads each JSON object into a record; invalid JSON and non-objects are counted and skipped', async () => {
    const pair = await pty('json');
    const s = await started({ path: pair.device, max_frame_bytes: 100, framing: { mode: 'json_lines' } });
    await pair.write(`\n{"a":1,"ts":"device time"}\n{"a":\n[1,2]\n{"b":"${'y'.repeat(200)}"}\n{"a":2,"nested":{"ok":true}}\n`);
    await s.until('two records', () => s.records.length >= 2);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => r.a),
      [1, 2],
    );
    assert.equal(typeof s.records[0]!.ts, 'number', "the source's ts wins over a device field named ts");
    assert.deepEqual(s.records[1]!.nested, { ok: true });
    assert.equal(s.count('invalid_json'), 2);
    assert.equal(s.count('overlong'), 1);
    assert.equal(s.count('bad_frames'), 3);
  });
});

describe('serial source on a real pty: fixed', () => {
  it('cuts fixed frames at the sync pattern; garbage is counted and the next frame is intact', async () => {
    const pair = await pty('fixed');
    const s = await started({ path: pair.device, framing: { mode: 'fixed', length: 5, sync: 'aa55' } });
    await pair.write(Buffer.from('0203' + 'aa55010203' + 'ffee' + 'aa55040506' + 'aa55ff0011', 'hex'));
    await s.until('three frames', () => s.records.length >= 3);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => r.data),
      ['aa55010203', 'aa55040506', 'aa55ff0011'],
    );
    assert.equal(s.count('partial_at_open'), 1);
    assert.equal(s.count('garbage'), 1);
  });

  it('binary bytes come through unchanged as a byte string, including flow-control and NUL bytes', async () => {
    const pair = await pty('fixed-bytes');
    const s = await started({ path: pair.device, framing: { mode: 'fixed', length: 4, encoding: 'bytes' } });
    await pair.write(Buffer.from('00111300ff0d0a7f', 'hex'));
    await s.until('two frames', () => s.records.length >= 2);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => Buffer.from(r.data as Uint8Array).toString('hex')),
      ['00111300', 'ff0d0a7f'],
    );
  });
});

describe('serial source on a real pty: length_prefixed', () => {
  it('reads length-prefixed payloads; an impossible length is counted and the framer resynchronises', async () => {
    const pair = await pty('lp');
    const s = await started({ path: pair.device, framing: { mode: 'length_prefixed', prefix_bytes: 2, endian: 'little', sync: 'c0de', max_length: 16 } });
    await pair.write(Buffer.from('00' + 'c0de0300616263' + 'c0deff7f00' + 'c0de0100ff' + 'c0de0000', 'hex'));
    await s.until('three frames', () => s.records.length >= 3);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => r.data),
      ['616263', 'ff', ''],
    );
    assert.equal(s.count('overlong'), 1);
    assert.equal(s.count('partial_at_open'), 1);
  });
});

describe('serial source on a real pty: nmea', () => {
  it('parses GGA, RMC, VTG, GSA, GLL, ZDA and others; bad checksums, truncation and garbage are counted', async () => {
    const pair = await pty('nmea');
    const s = await started({ path: pair.device, framing: { mode: 'nmea' }, max_frame_bytes: 120 });
    const good = [
      nmea('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'),
      nmea('GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W'),
      nmea('GPVTG,054.7,T,034.4,M,005.5,N,010.2,K'),
      nmea('GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1'),
      nmea('GPGLL,4916.45,N,12311.12,W,225444,A'),
      nmea('GPZDA,201530.00,04,07,2002,00,00'),
      nmea('GPGSV,3,1,11,03,03,111,00'),
      nmea('AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0', '!'),
    ];
    const stream = [
      '0.000,E,1,08*55\r\n', // the tail of a sentence sent before the port opened
      good[0],
      '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r\n', // bad checksum
      good[1],
      '$GPRMC,123519,A,48', // cut off by the next start marker
      good[2],
      'line noise \x00\xff\r\n',
      good[3],
      `$GPTXT,${'z'.repeat(200)}*00\r\n`, // overlong
      good[4],
      '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M\r\n', // no checksum
      good[5],
      nmea('GPGLL,49x6.45,N,12311.12,W,225444,A'), // valid checksum, malformed field
      good[6],
      good[7],
    ].join('');
    await pair.write(stream);
    await s.until('eight sentences', () => s.records.length >= 8);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => `${r.talker}${r.sentence}`),
      ['GPGGA', 'GPRMC', 'GPVTG', 'GNGSA', 'GPGLL', 'GPZDA', 'GPGSV', 'AIVDM'],
    );
    const [gga, rmc] = s.records;
    assert.equal(gga!.lat, 48.1173);
    assert.equal(gga!.satellites, 8);
    assert.equal(rmc!.datetime, '2094-03-23T12:35:19Z');
    assert.equal(rmc!.magnetic_variation, -3.1);
    assert.deepEqual(s.records[3]!.satellite_ids, [4, 5, 9, 12, 24]);
    assert.deepEqual(s.records[7]!.fields, ['1', '1', '', 'B', '177KQJ5000G?tO`K>RA1wUbN0TKH', '0']);
    assert.equal(s.count('partial_at_open'), 1);
    assert.equal(s.count('bad_checksum'), 2);
    assert.equal(s.count('truncated'), 1);
    assert.equal(s.count('garbage'), 1);
    assert.equal(s.count('overlong'), 1);
    assert.equal(s.count('bad_sentence'), 1);
    assert.equal(s.count('bad_frames'), 7);
    assert.equal(s.cursors.at(-1), Buffer.byteLength(stream, 'latin1'));
  });
});

describe('serial source: unplug and replug', () => {
  it('notices the device vanish, stays alive, and reads again once the same path is back', async () => {
    const name = 'replug';
    let pair = await pty(name);
    const s = await started({ path: pair.device, reopen_initial_delay: '20ms', reopen_max_delay: '100ms' });
    await pair.write('\nbefore-1\nbefore-2\n');
    await s.until('records before the unplug', () => s.records.length >= 2);

    await pair.stop('SIGKILL');
    pairs.delete(pair);
    await s.until('the disconnect', () => s.count('disconnects') === 1);
    await s.until('failed reopen attempts while the device is gone', () => s.count('reopen_errors') >= 2);
    assert.deepEqual(s.failures, [], 'the source keeps running while its device is gone');

    pair = await pty(name);
    await s.until('the reconnect', () => s.count('reconnects') === 1);
    await pair.write('\nafter-1\nafter-2\n');
    await s.until('records after the replug', () => s.records.length >= 4);
    await stop(s.source);
    assert.deepEqual(
      s.records.map((r) => r.line),
      ['before-1', 'before-2', 'after-1', 'after-2'],
    );
    assert.equal(s.records[3]!.port, pair.device);
    assert.deepEqual(s.failures, []);
  });

  it('finds a device by USB ids again on every reopen, wherever it reappears', async () => {
    const first = await pty('usb-a');
    let listing: PortListing[] = [
      { path: first.device, vendorId: '0403', productId: '6001', serialNumber: 'A1' },
      { path: '/dev/null', vendorId: '1a86', productId: '7523' },
    ];
    const opts = serialOptions().parse({
      vendor_id: '0403',
      product_id: '6001',
      reopen_initial_delay: '20ms',
      reopen_max_delay: '100ms',
      flush_interval: '5ms',
    });
    const source = new SerialSource(opts, deviceSpec(opts, 'usb'), async () => listing);
    const fake = fakeContext();
    await source.start(fake.ctx);
    sources.add(source);
    await first.write('\nfrom-a\n');
    await fake.until('a record from the first port', () => fake.records.length >= 1);

    // The adapter is unplugged and comes back under another name.
    listing = [];
    await first.stop('SIGKILL');
    pairs.delete(first);
    await fake.until('a failed lookup while it is gone', () => fake.count('reopen_errors') >= 1);
    const second = await pty('usb-b');
    listing = [{ path: second.device, vendorId: '0403', productId: '6001', serialNumber: 'A1' }];
    await fake.until('the reconnect', () => fake.count('reconnects') === 1);
    await second.write('\nfrom-b\n');
    await fake.until('a record from the second port', () => fake.records.length >= 2);
    await stop(source);
    assert.deepEqual(
      fake.records.map((r) => [r.line, r.port]),
      [
        ['from-a', first.device],
        ['from-b', second.device],
      ],
    );
  });
});

describe('serial source: start errors and configuration', () => {
  it('start() throws a retryable SOURCE_FAILED naming the device when it cannot open at all', async () => {
    const source = (await serialSource.create(
      config({ path: join(dir, 'no-such-tty') }) as never,
      driverEnv({ log: silentLogger, baseDir: dir }),
    )) as ServiceSource;
    await assert.rejects(source.start(fakeContext().ctx), (err: unknown) => {
      assert.ok(isAgentError(err, 'SOURCE_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, /no-such-tty/);
      return true;
    });
  });

  it('no USB port with the ids is a start error too', async () => {
    const opts = serialOptions().parse({ vendor_id: '0403', product_id: '6001' });
    const source = new SerialSource(opts, deviceSpec(opts, 'usb'), async () => [{ path: '/dev/ttyS0' }]);
    await assert.rejects(source.start(fakeContext().ctx), /no serial port with USB 0403:6001/);
  });

  it('needs exactly one of path and vendor_id + product_id (a config error, so check-config reports it)', async () => {
    const issues = (entry: Record<string, unknown>) => {
      const r = sourceSchema.safeParse({ type: 'serial', name: 'x', ...entry });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.deepEqual(issues({}), ['vendor_id: needs path, or vendor_id and product_id']);
    assert.deepEqual(issues({ vendor_id: '0403' }), ['product_id: needs path, or vendor_id and product_id']);
    assert.deepEqual(issues({ path: '/dev/ttyUSB0', vendor_id: '0403', product_id: '6001' }), ['path: give either path or vendor_id/product_id, not both']);
    assert.deepEqual(issues({ vendor_id: '0403', product_id: '6001' }), []);
    // The driver still refuses such a config if it is handed one without validation.
    const unvalidated = { ...config({ path: '/dev/x' }), path: undefined };
    await assert.rejects(serialSource.create(unvalidated as never, driverEnv({ log: silentLogger, baseDir: dir })), (err) =>
      isAgentError(err, 'CONFIG_INVALID'),
    );
    assert.equal(sourceSchema.safeParse({ type: 'serial', name: 'x', path: '/dev/x', framing: { mode: 'morse' } }).success, false);
    assert.equal(sourceSchema.safeParse({ type: 'serial', name: 'x', vendor_id: 'xyz', product_id: '6001' }).success, false);
  });
});

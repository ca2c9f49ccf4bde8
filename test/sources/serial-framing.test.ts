import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { createFramer, type DiscardReason } from '../../drivers/sources/serial/framer.ts';
import { createDecoder } from '../../drivers/sources/serial/decode.ts';
import { checksum, parseNmea } from '../../drivers/sources/serial/nmea.ts';
import { RateLimitedProblems } from '../../agent/telemetry/problems.ts';
import { RecordGroups } from '../../drivers/sources/serial/groups.ts';
import { options, type Framing } from '../../drivers/sources/serial/options.ts';

// The framers and decoders on their own, fed in every possible chunking; the real-pty tests are in serial.test.ts.

function framing(input: Record<string, unknown>): Framing {
  return options().parse({ path: '/dev/null', framing: input }).framing;
}

function run(f: Framing, chunks: Buffer[], max = 64) {
  const frames: string[] = [];
  const ends: number[] = [];
  const discards: DiscardReason[] = [];
  const framer = createFramer(f, max, {
    frame: (bytes, consumed) => {
      frames.push(bytes.toString('latin1'));
      ends.push(consumed);
    },
    discard: (reason) => discards.push(reason),
  });
  framer.reopened();
  for (const c of chunks) framer.push(c);
  return { frames, ends, discards, consumed: framer.consumed };
}

/** Splits bytes at the given cut points. */
function cut(bytes: Buffer, points: number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of sorted) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

function nmea(body: string): string {
  return `$${body}*${checksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

const STREAMS: { name: string; framing: Record<string, unknown>; bytes: Buffer; frames: string[]; discards: DiscardReason[] }[] = [
  {
    name: 'lines',
    framing: { mode: 'lines' },
    bytes: Buffer.from(`tail of a line\none\r\ntwo\n${'x'.repeat(100)}\nthree\n`),
    frames: ['one\r', 'two', 'three'],
    discards: ['partial_at_open', 'overlong'],
  },
  {
    name: 'lines with a two-byte delimiter',
    framing: { mode: 'lines', delimiter: '\r\n' },
    bytes: Buffer.from(`\r\na\rb\r\n${'y'.repeat(70)}\r\nc\r\n`),
    frames: ['a\rb', 'c'],
    discards: ['overlong'],
  },
  {
    name: 'nmea',
    framing: { mode: 'nmea' },
    bytes: Buffer.from(`PGGA,1*00\r\n${nmea('GPGLL,1')}junk\r\n${nmea('GPZDA,2')}$GPGGA,cut${nmea('GPVTG,3')}$${'z'.repeat(80)}\r\n${nmea('GPGSA,4')}`),
    frames: [nmea('GPGLL,1'), nmea('GPZDA,2'), nmea('GPVTG,3'), nmea('GPGSA,4')].map((s) => s.trimEnd()),
    discards: ['partial_at_open', 'garbage', 'truncated', 'overlong'],
  },
  {
    name: 'fixed with sync',
    framing: { mode: 'fixed', length: 4, sync: 'aa55' },
    bytes: Buffer.from('0102aa550102aa550304ffaa550506', 'hex'),
    frames: ['aa550102', 'aa550304', 'aa550506'].map((h) => Buffer.from(h, 'hex').toString('latin1')),
    discards: ['partial_at_open', 'garbage'],
  },
  {
    name: 'length prefixed with sync',
    framing: { mode: 'length_prefixed', prefix_bytes: 2, sync: '7e' },
    // sync, length 2, payload; then a length of 0xffff (over max_length), then a good frame.
    bytes: Buffer.from('00' + '7e00020102' + '7effff0000' + '7e0003aabbcc', 'hex'),
    frames: ['0102', 'aabbcc'].map((h) => Buffer.from(h, 'hex').toString('latin1')),
    discards: ['partial_at_open', 'overlong'],
  },
];

describe('serial framers', () => {
  for (const s of STREAMS) {
    it(`${s.name}: the same frames and discards however the bytes are chunked`, () => {
      const f = framing(s.framing);
      const whole = run(f, [s.bytes]);
      assert.deepEqual(whole.frames, s.frames);
      assert.deepEqual(whole.discards, s.discards);
      assert.equal(whole.consumed, s.bytes.length, 'every byte is framed or discarded');
      const byteByByte = run(
        f,
        [...s.bytes].map((b) => Buffer.of(b)),
      );
      assert.deepEqual(byteByByte, whole);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 12 }), (points) => {
          assert.deepEqual(run(f, cut(s.bytes, points)), whole);
        }),
        { numRuns: 200 },
      );
    });
  }

  it('reports the stream offset just past each frame, for the cursor', () => {
    const r = run(framing({ mode: 'lines' }), [Buffer.from('\nab\ncde\n')]);
    assert.deepEqual(r.ends, [4, 8]);
  });

  it('a long run of bytes with no delimiter is one overlong frame, and the frame after it is intact', () => {
    const r = run(framing({ mode: 'lines' }), cut(Buffer.from(`\n${'q'.repeat(1000)}\nok\n`), [10, 100, 300, 700]));
    assert.deepEqual(r.frames, ['ok']);
    assert.deepEqual(r.discards, ['overlong']);
  });

  it('a reopen cuts off the frame in flight and expects a partial frame again', () => {
    const f = framing({ mode: 'lines' });
    const frames: string[] = [];
    const discards: DiscardReason[] = [];
    const framer = createFramer(f, 64, { frame: (b) => frames.push(b.toString()), discard: (r) => discards.push(r) });
    framer.reopened();
    framer.push(Buffer.from('\none\ntw'));
    framer.reopened();
    framer.push(Buffer.from('o\nthree\n'));
    assert.deepEqual(frames, ['one', 'three']);
    assert.deepEqual(discards, ['truncated', 'partial_at_open']);
  });

  it('fixed frames without sync are cut by position', () => {
    const r = run(framing({ mode: 'fixed', length: 3 }), [Buffer.from('abcdefgh')]);
    assert.deepEqual(r.frames, ['abc', 'def']);
    assert.equal(r.consumed, 6, 'the incomplete frame is kept for the next bytes');
  });

  it('length prefixes: 1 and 4 bytes, little endian, length counting the header', () => {
    assert.deepEqual(run(framing({ mode: 'length_prefixed', prefix_bytes: 1 }), [Buffer.from('026869016a', 'hex')]).frames, ['hi', 'j']);
    assert.deepEqual(run(framing({ mode: 'length_prefixed', prefix_bytes: 4, endian: 'little' }), [Buffer.from('020000006869', 'hex')]).frames, ['hi']);
    assert.deepEqual(
      run(framing({ mode: 'length_prefixed', prefix_bytes: 2, length_includes_prefix: true, sync: 'ff' }), [Buffer.from('ff00056869', 'hex')]).frames,
      ['hi'],
    );
  });
});

describe('serial decoders', () => {
  const decode = (f: Record<string, unknown>, text: string | Buffer) => createDecoder(framing(f))(typeof text === 'string' ? Buffer.from(text) : text);

  it('lines: the text without a trailing carriage return', () => {
    assert.deepEqual(decode({ mode: 'lines' }, 'héllo wörld\r'), { ok: true, fields: { line: 'héllo wörld' } });
  });

  it('regex: named groups become fields, decimal numbers become numbers', () => {
    const f = { mode: 'regex', pattern: '^T=(?<temp>-?[0-9.]+) H=(?<hum>\\d+)% id=(?<id>\\w+)(?: (?<note>.+))?$' };
    assert.deepEqual(decode(f, 'T=-3.5 H=41% id=0x1f'), { ok: true, fields: { temp: -3.5, hum: 41, id: '0x1f' } });
    assert.deepEqual(decode({ ...f, numbers: false }, 'T=1 H=2% id=a'), { ok: true, fields: { temp: '1', hum: '2', id: 'a' } });
    const miss = decode(f, 'garbage');
    assert.equal(miss.ok, false);
    assert.equal(!miss.ok && miss.reason, 'no_match');
  });

  it('regex: the pattern must compile and have a named group', () => {
    assert.equal(options().safeParse({ path: '/x', framing: { mode: 'regex', pattern: '(' } }).success, false);
    assert.equal(options().safeParse({ path: '/x', framing: { mode: 'regex', pattern: '(\\d+)' } }).success, false);
  });

  it('json_lines: objects only', () => {
    assert.deepEqual(decode({ mode: 'json_lines' }, '{"a":1,"b":{"c":[true,null]}}\r'), { ok: true, fields: { a: 1, b: { c: [true, null] } } });
    for (const bad of ['{"a":', '[1,2]', '42', 'null', 'nope']) {
      const d = decode({ mode: 'json_lines' }, bad);
      assert.equal(d.ok, false, bad);
      assert.equal(!d.ok && d.reason, 'invalid_json');
    }
  });

  it('binary frames: hex, or a copy of the bytes', () => {
    assert.deepEqual(decode({ mode: 'fixed', length: 2 }, Buffer.from('00ff', 'hex')), { ok: true, fields: { data: '00ff' } });
    const frame = Buffer.from('0102', 'hex');
    const d = decode({ mode: 'fixed', length: 2, encoding: 'bytes' }, frame);
    frame[0] = 9;
    assert.deepEqual(d, { ok: true, fields: { data: new Uint8Array([1, 2]) } });
  });
});

describe('NMEA 0183 sentences', () => {
  const parse = (s: string) => parseNmea(s.trimEnd(), true);
  const fields = (s: string) => {
    const r = parse(s);
    assert.ok(r.ok, JSON.stringify(r));
    return r.fields;
  };

  it('GGA', () => {
    assert.deepEqual(fields('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47'), {
      talker: 'GP',
      sentence: 'GGA',
      time: '12:35:19',
      lat: 48.1173,
      lon: 11.51666667,
      quality: 1,
      satellites: 8,
      hdop: 0.9,
      altitude: 545.4,
      geoid_separation: 46.9,
    });
  });

  it('RMC, southern and western hemispheres', () => {
    assert.deepEqual(fields(nmea('GNRMC,081836.50,A,3751.65,S,14507.36,W,000.0,360.0,130998,011.3,E,A')), {
      talker: 'GN',
      sentence: 'RMC',
      time: '08:18:36.50',
      date: '2098-09-13',
      datetime: '2098-09-13T08:18:36.50Z',
      valid: true,
      lat: -37.86083333,
      lon: -145.12266667,
      speed_knots: 0,
      course: 360,
      magnetic_variation: 11.3,
      mode: 'A',
    });
  });

  it('VTG, GSA, GLL, ZDA', () => {
    assert.deepEqual(fields(nmea('GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A')), {
      talker: 'GP',
      sentence: 'VTG',
      course_true: 54.7,
      course_magnetic: 34.4,
      speed_knots: 5.5,
      speed_kmh: 10.2,
      mode: 'A',
    });
    assert.deepEqual(fields(nmea('GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1,1')), {
      talker: 'GN',
      sentence: 'GSA',
      selection: 'A',
      fix_type: 3,
      satellite_ids: [4, 5, 9, 12, 24],
      pdop: 2.5,
      hdop: 1.3,
      vdop: 2.1,
      system_id: 1,
    });
    assert.deepEqual(fields(nmea('GPGLL,4916.45,N,12311.12,W,225444,A,A')), {
      talker: 'GP',
      sentence: 'GLL',
      lat: 49.27416667,
      lon: -123.18533333,
      time: '22:54:44',
      valid: true,
      mode: 'A',
    });
    assert.deepEqual(fields(nmea('GPZDA,201530.00,04,07,2002,00,00')), {
      talker: 'GP',
      sentence: 'ZDA',
      time: '20:15:30.00',
      day: 4,
      month: 7,
      year: 2002,
      datetime: '2002-07-04T20:15:30.00Z',
      zone_hours: 0,
      zone_minutes: 0,
    });
  });

  it('other sentences keep their raw fields; proprietary and AIS ones too', () => {
    assert.deepEqual(fields(nmea('GPGSV,3,1,11,03,03,111,00')), { talker: 'GP', sentence: 'GSV', fields: ['3', '1', '11', '03', '03', '111', '00'] });
    assert.deepEqual(fields(nmea('PGRME,15.0,M,45.0,M,25.0,M')), { talker: 'P', sentence: 'GRME', fields: ['15.0', 'M', '45.0', 'M', '25.0', 'M'] });
    assert.deepEqual(fields('!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C'), {
      talker: 'AI',
      sentence: 'VDM',
      fields: ['1', '1', '', 'B', '177KQJ5000G?tO`K>RA1wUbN0TKH', '0'],
    });
  });

  it('empty fields are left out, not zero', () => {
    assert.deepEqual(fields(nmea('GPGGA,,,,,,0,00,,,M,,M,,')), { talker: 'GP', sentence: 'GGA', quality: 0, satellites: 0 });
  });

  it('rejects bad checksums, missing checksums and malformed fields', () => {
    const bad = (s: string, reason: string) => {
      const r = parse(s);
      assert.equal(r.ok, false, s);
      assert.equal(!r.ok && r.reason, reason, s);
    };
    bad('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48', 'bad_checksum');
    bad('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4', 'bad_checksum');
    bad('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,', 'bad_checksum');
    bad(nmea('GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), 'bad_sentence');
    bad(nmea('GPRMC,251836,A,3751.65,S,14507.36,E,0,0,130998,,'), 'bad_sentence');
    bad(nmea('GPGLL,4916.45,Q,12311.12,W,225444,A'), 'bad_sentence');
    bad(nmea('gp,1'), 'bad_sentence');
    assert.equal(parseNmea('$GPVTG,1,T,,M,2,N,3,K', false).ok, true, 'checksum optional when so configured');
  });
});

describe('serial helpers', () => {
  it('bad input is logged at a bounded rate, with the count of lines not logged', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const lines: Record<string, unknown>[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
      // The serial source reports bad input through the runtime's problem reporter (kind, message, fields).
      const problems = new RateLimitedProblems({ add() {} }, log, { intervalMs: 10_000, now: () => Date.now() });
      const bad = { report: (kind: string, fields: Record<string, unknown>, message: string) => problems.report(kind, message, fields) };
      for (let i = 0; i < 1000; i++) bad.report('overlong', { n: i }, 'discarded');
      bad.report('bad_checksum', {}, 'rejected');
      assert.equal(lines.length, 2, 'one line per kind within the interval');
      mock.timers.tick(10_000);
      bad.report('overlong', { n: 1000 }, 'discarded');
      assert.equal(lines.length, 3);
      assert.equal(lines[2]!.suppressed, 999);
      assert.equal(lines[2]!.n, 1000);
    } finally {
      mock.timers.reset();
    }
  });

  it('record groups keep several emits in flight and signal backpressure at max_pending', async () => {
    const releases: (() => void)[] = [];
    const emitted: number[][] = [];
    const pressure: boolean[] = [];
    const groups = new RecordGroups(
      { batchRecords: 2, flushMs: 60_000, maxPending: 3, maxPendingBytes: 1_000_000 },
      {
        emit: (records, cursor) => {
          emitted.push(records.map((r) => r.n as number));
          assert.equal(cursor, records.at(-1)!.n);
          return new Promise<void>((resolve) => releases.push(resolve));
        },
        backpressure: (full) => pressure.push(full),
        failed: (err) => assert.fail(String(err)),
      },
    );
    for (let n = 1; n <= 7; n++) groups.add({ n }, n, 10);
    assert.deepEqual(
      emitted,
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      'three emits in flight before any commit',
    );
    assert.deepEqual(pressure, [true]);
    releases[0]!();
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(pressure, [true, false]);
    const drained = groups.drain();
    assert.deepEqual(emitted.at(-1), [7], 'drain emits the partial group');
    for (const r of releases) r();
    await drained;
  });

  it('record groups are bounded in bytes: a group is cut at its share, and the line pauses at max_pending_bytes', async () => {
    const releases: (() => void)[] = [];
    const emitted: number[][] = [];
    const pressure: boolean[] = [];
    // 1000 bytes for 4 emits: a group is cut at 250 bytes, far below its 100 records.
    const groups = new RecordGroups(
      { batchRecords: 100, flushMs: 60_000, maxPending: 4, maxPendingBytes: 1000 },
      {
        emit: (records) => {
          emitted.push(records.map((r) => r.n as number));
          return new Promise<void>((resolve) => releases.push(resolve));
        },
        backpressure: (full) => pressure.push(full),
        failed: (err) => assert.fail(String(err)),
      },
    );
    let n = 0;
    const addUntilPaused = () => {
      while (pressure.at(-1) !== true && n < 1000) groups.add({ n: ++n }, n, 100);
    };
    addUntilPaused();
    assert.equal(n, 10, 'paused once 1000 bytes are held, not at 4 groups of 100 records');
    assert.deepEqual(emitted, [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    releases[0]!();
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(pressure, [true, false], 'room again once a commit takes the held bytes below the bound');
    addUntilPaused();
    assert.equal(n, 13, 'three more records (300 bytes) fill it again');
    assert.deepEqual(emitted.at(-1), [10, 11, 12]);
    const drained = groups.drain();
    for (let i = 0; i < releases.length; i++) releases[i]!();
    await drained;
    assert.deepEqual(
      emitted.flat(),
      Array.from({ length: 13 }, (_, i) => i + 1),
      'every record emitted once, in order',
    );
  });
});

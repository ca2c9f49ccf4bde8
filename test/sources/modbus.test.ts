/**
 * The modbus source against a real Modbus server (Debian's python3-pymodbus) holding values the test wrote in
 * every type and word order, over TCP and over RTU through a socat pseudo-terminal pair: every value decodes
 * exactly; an illegal address is an exception, an absent unit a timeout, a server that dies a reconnect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modbusSource } from '../../drivers/sources/modbus/index.ts';
import type { AgentRecord, PolledSource, SourceContext } from '../../agent/sdk/index.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type ModbusServer, pymodbusAvailable, startModbusServer, swapBytes, swapWords, type UnitContents, words } from '../helpers/modbus.ts';
import { type PtyPair, startPtyPair } from '../helpers/socat.ts';

const holding = new Array<number>(120).fill(0);
const put = (at: number, w: number[]) => holding.splice(at, w.length, ...w);
put(0, words('int16', -12345));
put(1, words('uint16', 54321));
put(2, words('int32', -123456789));
put(4, swapWords(words('int32', -123456789)));
put(6, words('uint32', 3_000_000_000));
put(8, swapWords(words('uint32', 3_000_000_000)));
put(10, words('float32', 21.5));
put(12, swapWords(words('float32', -0.15625)));
put(14, swapBytes(words('float32', 1234.5)));
put(16, words('int64', -9007199254740993n));
put(20, swapWords(words('float64', Math.PI)));
put(24, words('uint16', 655));
put(30, [1, 2, 3]);
put(100, words('uint64', 42n));
const UNITS: Record<number, UnitContents> = {
  1: { holding, input: [...words('uint32', 123456), 7], coils: [true, false, true, true, false, false, false, true, true], discrete: [false, true] },
  7: { holding: words('float32', -40.25) },
};

const POINTS = [
  { name: 'i16', address: 0, type: 'int16' },
  { name: 'u16', address: 1 },
  { name: 'i32_abcd', address: 2, type: 'int32' },
  { name: 'i32_cdab', address: 4, type: 'int32', word_order: 'little' },
  { name: 'u32_abcd', address: 6, type: 'uint32' },
  { name: 'u32_cdab', address: 8, type: 'uint32', word_order: 'little' },
  { name: 'f32_abcd', address: 10, type: 'float32', unit: '°C' },
  { name: 'f32_cdab', address: 12, type: 'float32', word_order: 'little' },
  { name: 'f32_badc', address: 14, type: 'float32', byte_order: 'little' },
  { name: 'i64', address: 16, type: 'int64' },
  { name: 'f64_little', address: 20, type: 'float64', word_order: 'little' },
  { name: 'scaled', address: 24, scale: 0.5, offset: -40, unit: 'kPa' },
  { name: 'list', address: 30, count: 3 },
  { name: 'far', address: 100, type: 'uint64' },
  { name: 'flow', table: 'input', address: 0, type: 'uint32', unit: 'l/h' },
  { name: 'pumps', table: 'coil', address: 0, count: 9 },
  { name: 'door', table: 'discrete_input', address: 1 },
  { name: 'outdoor', address: 0, type: 'float32', unit_id: 7 },
];

const EXPECTED_UNIT_1 = {
  unit_id: 1,
  i16: -12345,
  u16: 54321,
  i32_abcd: -123456789,
  i32_cdab: -123456789,
  u32_abcd: 3_000_000_000,
  u32_cdab: 3_000_000_000,
  f32_abcd: 21.5,
  f32_cdab: -0.15625,
  f32_badc: 1234.5,
  i64: -9007199254740993n,
  f64_little: Math.PI,
  scaled: 287.5,
  list: [1, 2, 3],
  far: 42,
  flow: 123456,
  pumps: [true, false, true, true, false, false, false, true, true],
  door: true,
  units: { f32_abcd: '°C', scaled: 'kPa', flow: 'l/h' },
};

interface Poller {
  source: PolledSource;
  records: AgentRecord[];
  counts: Map<string, number>;
  poll(): Promise<AgentRecord[]>;
}

async function poller(options: Record<string, unknown>): Promise<Poller> {
  const config = modbusSource.options.parse(options);
  const source = (await modbusSource.create(
    { ...config, type: 'modbus', name: 'plc', stream: 'plc', interval: 1000, on_start_error: 'fail' },
    driverEnv({ log: silentLogger, baseDir: '.' }),
  )) as PolledSource;
  const records: AgentRecord[] = [];
  const counts = new Map<string, number>();
  const add = (name: string, n = 1) => counts.set(name, (counts.get(name) ?? 0) + n);
  const ctx = {
    name: 'plc',
    log: silentLogger,
    cursor: undefined,
    signal: new AbortController().signal,
    counters: { add },
    problems: { report: (kind: string) => add(kind) },
    emit: async (batch: AgentRecord[]) => void records.push(...batch),
    fail: (err: unknown) => assert.fail(String(err)),
  } satisfies SourceContext;
  return {
    source,
    records,
    counts,
    async poll() {
      const before = records.length;
      await source.gather(ctx);
      return records.slice(before);
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-modbus-'));

if (!pymodbusAvailable()) {
  describe('modbus source', () =>
    it('needs Debian python3-pymodbus', (t) => t.skip('python3-pymodbus or python3-serial-asyncio is missing: .ci/run installs them')));
} else {
  describe('modbus source over TCP, against pymodbus', () => {
    let server: ModbusServer;
    let port: number;
    before(async () => {
      port = await freePort();
      server = await startModbusServer(dir, UNITS, { tcp: port });
    });
    after(async () => {
      await server.stop();
    });

    it('decodes every type, word order, byte order, scale, list and table exactly, in as few reads as the map allows', async () => {
      const p = await poller({ transport: { type: 'tcp', host: '127.0.0.1', port }, points: POINTS });
      const [unit1, unit7] = await p.poll();
      assert.deepEqual(unit1, EXPECTED_UNIT_1);
      assert.deepEqual(unit7, { unit_id: 7, outdoor: -40.25 });
      // holding 0–32 in one read (gaps up to 8), 100 in another, input, coils, discrete, unit 7: six reads.
      assert.equal(p.counts.get('reads'), 6);
      await p.source.close?.();
    });

    it('an illegal address is a counted exception: that value is missing with the reason, the others still come', async () => {
      const p = await poller({
        transport: { type: 'tcp', host: '127.0.0.1', port },
        points: [
          { name: 'ok', address: 1 },
          { name: 'missing', address: 5000 },
        ],
      });
      const [record] = await p.poll();
      assert.deepEqual(record, {
        unit_id: 1,
        ok: 54321,
        errors: { missing: 'exception 2: Modbus exception 2: Illegal data address (register not supported by device)' },
      });
      assert.equal(p.counts.get('exceptions'), 1);
      await p.source.close?.();
    });

    it('a unit that does not answer is a counted timeout; a server that dies and comes back is reconnected', async () => {
      const p = await poller({
        transport: { type: 'tcp', host: '127.0.0.1', port },
        timeout: '1s',
        points: [
          { name: 'v', address: 1 },
          { name: 'ghost', address: 0, unit_id: 9 },
        ],
      });
      const [first] = await p.poll();
      assert.equal(
        first!.v,
        54321,
        JSON.stringify(first, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      );
      assert.equal(p.counts.get('timeouts'), 1);
      await server.stop();
      assert.deepEqual(await p.poll(), [], 'nothing read while the server is gone');
      assert.ok((p.counts.get('disconnects') ?? 0) + (p.counts.get('connect_failed') ?? 0) >= 1, 'the lost link is counted');
      server = await startModbusServer(dir, UNITS, { tcp: port });
      let again: AgentRecord[] = [];
      for (let i = 0; i < 5 && again.length === 0; i++) again = await p.poll();
      assert.equal(again.find((r) => r.unit_id === 1)?.v, 54321, JSON.stringify(again));
      assert.equal(p.counts.get('reconnects'), 1);
      await p.source.close?.();
    });
  });

  describe('modbus source over RTU, through a socat pseudo-terminal pair', () => {
    let pair: PtyPair;
    let server: ModbusServer;
    before(async () => {
      pair = await startPtyPair(dir, 'rtu');
      server = await startModbusServer(dir, UNITS, { rtu: join(dir, 'rtu-host'), baud: 19200 });
    });
    after(async () => {
      await server?.stop();
      await pair?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('decodes the same register map exactly', async () => {
      const p = await poller({ transport: { type: 'rtu', path: join(dir, 'rtu-dev'), baud_rate: 19200 }, points: POINTS });
      const records = await p.poll();
      assert.deepEqual(records[0], EXPECTED_UNIT_1);
      assert.deepEqual(records[1], { unit_id: 7, outdoor: -40.25 });
      await p.source.close?.();
    });
  });
}

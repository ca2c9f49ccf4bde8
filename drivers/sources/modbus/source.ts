import type { AgentRecord, DriverEnv, PolledSource, SourceContext } from '../../../agent/sdk/index.ts';
import { classifyFailure, connectModbus, type ModbusClient } from './client.ts';
import { decodeValue, scaled, TYPE_WORDS } from './decode.ts';
import type { ModbusOptions, Point } from './options.ts';
import { planReads, type Read } from './plan.ts';

/**
 * Polls a Modbus device: each poll makes the planned reads and emits one record per unit id with every value
 * that was read, its units, and the values that could not be read with why. A device that does not answer
 * costs its timeout and is counted; a lost link is reconnected on the next poll (counted as `reconnects`).
 */
export class ModbusSource implements PolledSource {
  private readonly options: ModbusOptions;
  private readonly name: string;
  private readonly reads: Read[];
  private client: ModbusClient | undefined;
  private everConnected = false;

  constructor(options: ModbusOptions & { name: string }, _env: DriverEnv) {
    this.options = options;
    this.name = options.name;
    this.reads = planReads(options);
  }

  async gather(ctx: SourceContext): Promise<void> {
    if (!this.client?.isOpen) {
      this.client?.close(() => {});
      this.client = undefined;
      try {
        this.client = await connectModbus(this.options, this.name);
      } catch (err) {
        ctx.problems.report('connect_failed', (err as Error).message, { cause: String((err as Error).cause ?? '') });
        return;
      }
      if (this.everConnected) ctx.counters.add('reconnects');
      this.everConnected = true;
    }
    const byUnit = new Map<number, AgentRecord>();
    const record = (unitId: number) => {
      let r = byUnit.get(unitId);
      if (!r) byUnit.set(unitId, (r = { unit_id: unitId }));
      return r;
    };
    for (const read of this.reads) {
      let bytes: Buffer | undefined;
      let bits: boolean[] | undefined;
      try {
        const result = await this.fetch(this.client, read);
        if (Array.isArray(result)) bits = result;
        else bytes = result;
        ctx.counters.add('reads');
      } catch (err) {
        const failure = classifyFailure(err);
        ctx.problems.report(
          failure.kind === 'exception' ? 'exceptions' : failure.kind === 'timeout' ? 'timeouts' : 'disconnects',
          `modbus read of ${read.table} ${read.address}+${read.length} (unit ${read.unitId}): ${failure.detail}`,
          {},
          { key: `${read.unitId}/${read.table}/${read.address}` },
        );
        const errors = (record(read.unitId).errors ??= {}) as Record<string, string>;
        for (const p of read.points) errors[p.name] = failure.detail;
        if (failure.kind === 'link') {
          this.client.close(() => {});
          this.client = undefined;
          break;
        }
        continue;
      }
      const r = record(read.unitId);
      for (const p of read.points) {
        r[p.name] = bits ? this.bitValue(bits, read, p) : this.registerValue(bytes!, read, p);
        if (p.unit) ((r.units ??= {}) as Record<string, string>)[p.name] = p.unit;
      }
    }
    // A unit none of whose values could be read gives no record: its failures are counted, and a device that
    // is down must not fill the queue with records that say only that.
    const records = [...byUnit.values()].filter((r) => Object.keys(r).some((k) => k !== 'unit_id' && k !== 'errors'));
    if (records.length > 0) await ctx.emit(records);
  }

  private async fetch(client: ModbusClient, read: Read): Promise<Buffer | boolean[]> {
    client.setID(read.unitId);
    switch (read.table) {
      case 'coil':
        return (await client.readCoils(read.address, read.length)).data;
      case 'discrete_input':
        return (await client.readDiscreteInputs(read.address, read.length)).data;
      case 'holding':
        return (await client.readHoldingRegisters(read.address, read.length)).buffer;
      case 'input':
        return (await client.readInputRegisters(read.address, read.length)).buffer;
    }
  }

  private bitValue(bits: boolean[], read: Read, p: Point): boolean | boolean[] {
    const at = p.address - read.address;
    const values = bits.slice(at, at + p.count).map(Boolean);
    return p.count === 1 ? values[0]! : values;
  }

  private registerValue(bytes: Buffer, read: Read, p: Point): number | bigint | (number | bigint)[] {
    const type = (p.type ?? 'uint16') as Exclude<NonNullable<Point['type']>, 'bool'>;
    const words = TYPE_WORDS[type];
    const values: (number | bigint)[] = [];
    for (let i = 0; i < p.count; i++) {
      const from = (p.address - read.address + i * words) * 2;
      const raw = decodeValue(bytes.subarray(from, from + words * 2), { type, wordOrder: p.word_order, byteOrder: p.byte_order });
      values.push(scaled(raw, p.scale, p.offset));
    }
    return p.count === 1 ? values[0]! : values;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client?.isOpen) await new Promise<void>((resolve) => client.close(() => resolve()));
  }
}

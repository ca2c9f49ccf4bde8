/**
 * Which reads a poll makes: the configured values grouped by unit and table into as few requests as the
 * protocol allows (125 registers or 2000 bits each), values closer than `max_gap` sharing one request.
 */
import { TYPE_WORDS } from './decode.ts';
import { MAX_READ, type ModbusOptions, type Point } from './options.ts';

export type Table = Point['table'];

export interface Read {
  unitId: number;
  table: Table;
  address: number;
  length: number;
  points: Point[];
}

export function pointSpan(p: Point): number {
  const bits = p.table === 'coil' || p.table === 'discrete_input';
  return bits ? p.count : p.count * TYPE_WORDS[p.type ?? 'uint16'];
}

export function planReads(options: Pick<ModbusOptions, 'points' | 'unit_id' | 'max_gap'>): Read[] {
  const groups = new Map<string, Point[]>();
  for (const p of options.points) {
    const key = `${p.unit_id ?? options.unit_id}/${p.table}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const reads: Read[] = [];
  for (const [key, points] of groups) {
    const [unit, table] = key.split('/') as [string, Table];
    const limit = table === 'coil' || table === 'discrete_input' ? MAX_READ.bit : MAX_READ.register;
    let current: Read | undefined;
    for (const p of [...points].sort((a, b) => a.address - b.address)) {
      const end = p.address + pointSpan(p);
      if (current && p.address <= current.address + current.length + options.max_gap && end - current.address <= limit) {
        current.length = Math.max(current.length, end - current.address);
        current.points.push(p);
      } else {
        current = { unitId: Number(unit), table, address: p.address, length: end - p.address, points: [p] };
        reads.push(current);
      }
    }
  }
  return reads;
}

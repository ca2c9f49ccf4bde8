/** A real Modbus server (Debian's python3-pymodbus) with contents the test chose, started and stopped by PID. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForPort } from '../../scripts/lib/ports.ts';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./modbus-server.py', import.meta.url));

export interface UnitContents {
  holding?: number[];
  input?: number[];
  coils?: boolean[];
  discrete?: boolean[];
}

export interface ModbusServer {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Whether the peer can run here (pymodbus and its serial dependency from Debian). */
export function pymodbusAvailable(): boolean {
  return existsSync(PYTHON) && existsSync('/usr/lib/python3/dist-packages/pymodbus') && existsSync('/usr/lib/python3/dist-packages/serial_asyncio');
}

export async function startModbusServer(
  dir: string,
  units: Record<number, UnitContents>,
  transport: { tcp: number } | { rtu: string; baud: number },
): Promise<ModbusServer> {
  const contents = join(dir, `modbus-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(contents, JSON.stringify({ units }));
  const args = 'tcp' in transport ? ['tcp', String(transport.tcp)] : ['rtu', transport.rtu, String(transport.baud)];
  const child = spawn(PYTHON, [SCRIPT, contents, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`modbus server exited with ${code}: ${stderr.slice(-2000)}`)));
  });
  // pymodbus binds its TCP socket only once serving: "ready" comes before that.
  if ('tcp' in transport) await waitForPort(transport.tcp);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Registers holding `value` as `type`, most significant word first, big-endian bytes: the protocol's own order. */
export function words(type: 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'int64' | 'uint64' | 'float64', value: number | bigint): number[] {
  const b = Buffer.alloc(type.endsWith('16') ? 2 : type.endsWith('32') ? 4 : 8);
  if (type === 'int16') b.writeInt16BE(Number(value));
  if (type === 'uint16') b.writeUInt16BE(Number(value));
  if (type === 'int32') b.writeInt32BE(Number(value));
  if (type === 'uint32') b.writeUInt32BE(Number(value));
  if (type === 'float32') b.writeFloatBE(Number(value));
  if (type === 'int64') b.writeBigInt64BE(BigInt(value));
  if (type === 'uint64') b.writeBigUInt64BE(BigInt(value));
  if (type === 'float64') b.writeDoubleBE(Number(value));
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
  return out;
}

/** The same registers as a device with the other word order (CDAB) stores them. */
export const swapWords = (w: number[]) => [...w].reverse();
/** The same registers with the bytes of each swapped (BADC). */
export const swapBytes = (w: number[]) => w.map((x) => ((x & 0xff) << 8) | (x >> 8));

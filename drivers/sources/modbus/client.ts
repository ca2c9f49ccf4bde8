/**
 * The Modbus client (modbus-serial), connected over TCP or over a serial line opened the way the serial source
 * opens its ports (a path, or a USB adapter found by its ids on every reconnect; the hangup-aware binding).
 * Loaded on first use, so an agent without a modbus source never loads it.
 */
import { AgentError } from '../../../agent/sdk/index.ts';
import { deviceSpec, listSerialPorts, resolvePath, serialPortSettings } from '../../common/serial-port.ts';
import type { ModbusOptions } from './options.ts';

/**
 * What this source uses of modbus-serial's client, declared here: the package's typings describe a class
 * default export that TypeScript's CommonJS interop reads as a namespace.
 */
export interface ModbusClient {
  readonly isOpen: boolean;
  connectTCP(host: string, options: { port: number; timeout?: number }): Promise<void>;
  connectRTUBuffered(path: string, options: object): Promise<void>;
  setID(id: number): void;
  setTimeout(ms: number): void;
  readCoils(address: number, length: number): Promise<{ data: boolean[] }>;
  readDiscreteInputs(address: number, length: number): Promise<{ data: boolean[] }>;
  readHoldingRegisters(address: number, length: number): Promise<{ buffer: Buffer }>;
  readInputRegisters(address: number, length: number): Promise<{ buffer: Buffer }>;
  close(callback: () => void): void;
}

export async function connectModbus(options: ModbusOptions, source: string): Promise<ModbusClient> {
  // A CommonJS module whose exports are the client class: what `default` holds depends on the loader.
  const loaded = (await import('modbus-serial')) as unknown as { default?: new () => ModbusClient };
  const Client = loaded.default ?? (loaded as unknown as new () => ModbusClient);
  const client = new Client();
  const t = options.transport;
  try {
    if (t.type === 'tcp') {
      await client.connectTCP(t.host, { port: t.port, timeout: options.timeout });
    } else {
      const path = await resolvePath(deviceSpec(t, source), listSerialPorts);
      await client.connectRTUBuffered(path, await serialPortSettings(t));
    }
  } catch (cause) {
    client.close(() => {});
    const where = t.type === 'tcp' ? `${t.host}:${t.port}` : (t.path ?? `USB ${t.vendor_id}:${t.product_id}`);
    throw new AgentError('SOURCE_FAILED', `modbus source ${source}: cannot connect to ${where}`, { cause, retryable: true });
  }
  client.setTimeout(options.timeout);
  return client;
}

/** What went wrong with one read: the device answered with an exception, did not answer in time, or the link is gone. */
export type ReadFailure = { kind: 'exception'; detail: string } | { kind: 'timeout'; detail: string } | { kind: 'link'; detail: string };

export function classifyFailure(err: unknown): ReadFailure {
  const e = err as { modbusCode?: number; message?: string; name?: string; errno?: string };
  if (typeof e?.modbusCode === 'number') return { kind: 'exception', detail: `exception ${e.modbusCode}: ${e.message ?? 'unknown'}` };
  if (e?.name === 'TransactionTimedOutError' || e?.errno === 'ETIMEDOUT') return { kind: 'timeout', detail: 'no answer within timeout' };
  return { kind: 'link', detail: e?.message ?? String(err) };
}

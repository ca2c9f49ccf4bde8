import type { SerialPort } from 'serialport';
import { AgentError } from '../../agent/sdk/index.ts';
import type { SerialLineOptions } from './serial-line.ts';

/** Which device to open: a fixed path, or a USB adapter found by its ids wherever the kernel put it. */
export type DeviceSpec = { path: string } | { vendorId: string; productId: string; serialNumber: string | undefined };

/** What SerialPort.list() reports about a port; only what the lookup needs. */
export interface PortListing {
  path: string;
  vendorId?: string | undefined;
  productId?: string | undefined;
  serialNumber?: string | undefined;
}

export type ListPorts = () => Promise<PortListing[]>;

/**
 * serialport loads its native binding when imported: load it on first use, so an agent (or the single
 * executable) without any serial source never touches it, and a missing binding fails only this source.
 */
async function native(): Promise<{ SerialPort: typeof SerialPort; binding: object }> {
  try {
    const [{ SerialPort: Port }, { hangupAwareBinding }] = await Promise.all([import('serialport'), import('./serial-hangup-read.ts')]);
    return { SerialPort: Port, binding: hangupAwareBinding };
  } catch (cause) {
    throw new AgentError('SOURCE_FAILED', `the serial port library cannot load its native binding on ${process.platform}-${process.arch}`, { cause });
  }
}

export const listSerialPorts: ListPorts = async () => (await native()).SerialPort.list();

/**
 * Path or USB ids, exactly one of them. The driver's options are spread into the config schema as a plain
 * shape, where a cross-field rule cannot live, so it is checked here, before anything is opened.
 */
export function deviceSpec(config: Pick<SerialLineOptions, 'path' | 'vendor_id' | 'product_id' | 'serial_number'>, source: string): DeviceSpec {
  const byIds = config.vendor_id !== undefined || config.product_id !== undefined || config.serial_number !== undefined;
  if (config.path !== undefined && byIds) {
    throw new AgentError('CONFIG_INVALID', `serial source ${source}: give either path or vendor_id/product_id, not both`);
  }
  if (config.path !== undefined) return { path: config.path };
  if (config.vendor_id === undefined || config.product_id === undefined) {
    throw new AgentError('CONFIG_INVALID', `serial source ${source}: needs path, or vendor_id and product_id`);
  }
  return { vendorId: config.vendor_id.toLowerCase(), productId: config.product_id.toLowerCase(), serialNumber: config.serial_number };
}

export function describeSpec(spec: DeviceSpec): string {
  if ('path' in spec) return spec.path;
  return `USB ${spec.vendorId}:${spec.productId}${spec.serialNumber === undefined ? '' : ` serial ${spec.serialNumber}`}`;
}

/** The path to open now. By ids, the port list is read again every time: a replugged adapter may get a new name. */
export async function resolvePath(spec: DeviceSpec, list: ListPorts): Promise<string> {
  if ('path' in spec) return spec.path;
  let ports: PortListing[];
  try {
    ports = await list();
  } catch (cause) {
    throw new AgentError('SOURCE_FAILED', `cannot list serial ports to find ${describeSpec(spec)} (is udevadm installed?)`, { cause, retryable: true });
  }
  const match = ports.find(
    (p) =>
      p.vendorId?.toLowerCase() === spec.vendorId &&
      p.productId?.toLowerCase() === spec.productId &&
      (spec.serialNumber === undefined || p.serialNumber === spec.serialNumber),
  );
  if (!match) throw new AgentError('SOURCE_FAILED', `no serial port with ${describeSpec(spec)} is present`, { retryable: true });
  return match.path;
}

/**
 * serialport's options for a line's settings, with the hangup-aware binding: for opening a port here, or for a
 * client that opens its own (the modbus source's RTU client passes them to serialport).
 */
export async function serialPortSettings(config: SerialLineOptions): Promise<object> {
  const { binding } = await native();
  return {
    // SerialPort's typings leave `binding` out of its options, but it takes one (it spreads the options over its default).
    binding,
    baudRate: config.baud_rate,
    dataBits: config.data_bits,
    parity: config.parity,
    stopBits: config.stop_bits,
    rtscts: config.flow_control === 'rtscts',
    xon: config.flow_control === 'xon_xoff',
    xoff: config.flow_control === 'xon_xoff',
  };
}

export async function openPort(path: string, config: SerialLineOptions): Promise<SerialPort> {
  const { SerialPort: Port } = await native();
  const port = new Port({ path, autoOpen: false, ...(await serialPortSettings(config)) } as ConstructorParameters<typeof SerialPort>[0]);
  return new Promise((resolve, reject) =>
    port.open((err) => {
      if (err) reject(new AgentError('SOURCE_FAILED', `cannot open serial port ${path}: ${err.message}`, { cause: err, retryable: true }));
      else resolve(port);
    }),
  );
}

export function closePort(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}

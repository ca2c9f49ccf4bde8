import { read } from 'node:fs';
import { SerialPort } from 'serialport';

/**
 * The platform binding, with one fix: on Unix, a read that returns 0 bytes (end of file) means the device
 * hung up, and is reported as a disconnect. The stock unix read retries a 0-byte read at once, forever
 * (serialport/bindings-cpp#162): when a pty's other side closes, or on some USB unplugs, the port then never
 * reports its loss and spins a core. A tty opened non-blocking answers "no data yet" with EAGAIN, never
 * with 0 bytes, so 0 bytes is always a hangup.
 */
const detected = SerialPort.binding;

interface UnixPort {
  fd: number | null;
  readonly isOpen: boolean;
  readonly poller: { once(event: 'readable', callback: (err: Error | null) => void): unknown };
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>;
}

function isUnixPort(port: object): port is UnixPort {
  return 'fd' in port && 'poller' in port;
}

/** The stream layer treats `canceled` errors as "stop reading", any other error as a disconnect. */
function canceled(message: string): Error {
  return Object.assign(new Error(message), { canceled: true });
}

function readOnce(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, offset, length, null, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))));
}

async function readUntilHangup(port: UnixPort, buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
  for (;;) {
    if (!port.isOpen || port.fd === null) throw canceled('Port is not open');
    try {
      const bytesRead = await readOnce(port.fd, buffer, offset, length);
      if (bytesRead > 0) return { buffer, bytesRead };
      throw Object.assign(new Error('the device hung up (end of file)'), { disconnect: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw err;
    }
    // Polling a closed port's poller touches freed native state: check first, as the stock read does.
    if (!port.isOpen) throw canceled('Port is not open');
    await new Promise<void>((resolve, reject) => port.poller.once('readable', (err) => (err ? reject(err) : resolve())));
  }
}

const openDetected = detected.open.bind(detected) as (options: unknown) => Promise<object>;

export const hangupAwareBinding = {
  list: () => detected.list(),
  async open(options: unknown) {
    const port = await openDetected(options);
    if (isUnixPort(port)) port.read = (buffer, offset, length) => readUntilHangup(port, buffer, offset, length);
    return port;
  },
} as unknown as typeof detected;

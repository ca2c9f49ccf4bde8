import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, write } from 'node:fs';
import { join } from 'node:path';

export interface PtyPair {
  /** The side the source opens, as a serial device would be. */
  readonly device: string;
  /** The side the test writes to, as the device's firmware would. */
  readonly host: string;
  readonly pid: number;
  /** Writes bytes into the host side; they come out of the device side. */
  write(bytes: string | Uint8Array): Promise<void>;
  /** Ends socat (SIGTERM, or SIGKILL) by its PID and waits until it has exited: the device side vanishes. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/**
 * A real pair of pseudo-terminals joined by socat, with stable links `<dir>/<name>-dev` and `<dir>/<name>-host`.
 * Starting again with the same dir and name recreates the links: that is how tests replug a device.
 */
export async function startPtyPair(dir: string, name = 'tty', timeoutMs = 5000): Promise<PtyPair> {
  const device = join(dir, `${name}-dev`);
  const host = join(dir, `${name}-host`);
  const child: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${host}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  try {
    // socat logs "starting data transfer loop" once both ptys and both links exist.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socat did not set up ${device} within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`socat exited (${code ?? signal}): ${stderr.trim()}`));
      });
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('starting data transfer loop') && existsSync(device) && existsSync(host)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  child.stderr!.resume();
  // One descriptor for the pair's life: the test is the only writer, and a pty whose last writer closed can
  // drop what is still in flight.
  const fd = openSync(host, constants.O_WRONLY | constants.O_NOCTTY);
  let stopped = false;
  return {
    device,
    host,
    pid: child.pid!,
    write(bytes) {
      const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
      return new Promise((resolve, reject) => {
        const next = (offset: number) =>
          write(fd, buffer, offset, buffer.length - offset, null, (err, written) => {
            if (err) reject(err);
            else if (offset + written < buffer.length) next(offset + written);
            else resolve();
          });
        next(0);
      });
    },
    async stop(signal = 'SIGTERM') {
      if (stopped) return;
      stopped = true;
      closeSync(fd);
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
      await exited;
    },
  };
}

import { close, open, read, readFile, readdirSync, readlinkSync } from 'node:fs';

/**
 * The three file-system calls the driver makes. Injectable so a test can make a file or a device vanish
 * between the directory listing and the read, which is what happens on a real bus when a sensor is unplugged.
 */
export interface SysfsIo {
  readFile(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
}

// Callback forms, and open + one read + close rather than readFile (which also stats and reads again to
// find the end): for many tiny files this costs about a quarter less CPU. A sysfs attribute is at most
// one page and comes whole from the first read; anything that fills the page is read again in full.
const PAGE = 4096;

function readSmallFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      const buffer = Buffer.allocUnsafe(PAGE);
      read(fd, buffer, 0, PAGE, null, (readErr, bytes) => {
        close(fd, () => {});
        if (readErr) reject(readErr);
        else if (bytes < PAGE) resolve(buffer.toString('latin1', 0, bytes));
        else readFile(path, 'latin1', (err, text) => (err ? reject(err) : resolve(text)));
      });
    });
  });
}

/** Runs a synchronous call, turning its throw into a rejection like the asynchronous calls'. */
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (err) {
    return Promise.reject(err);
  }
}

// Attribute reads go through the driver and may wait on a bus (an I2C transaction, a 1-wire conversion), so
// they run off the main thread. Directory listings and links come from the kernel's in-memory sysfs tree and
// never call into a driver: done synchronously they cannot stall the agent, and they skip a thread-pool hop.
export const nodeIo: SysfsIo = {
  readFile: readSmallFile,
  readdir: (path) => settled(() => readdirSync(path)),
  readlink: (path) => settled(() => readlinkSync(path)),
};

/** What reading one attribute gave: its text, or why there is none. */
export type ReadOutcome = { ok: true; text: string } | { ok: false; missing: boolean; code: string };

/** Reads one sysfs attribute. ENOENT/ENOTDIR mean "not there"; anything else (EIO, ENODATA, EACCES…) is a read error. */
export async function readAttribute(io: SysfsIo, path: string): Promise<ReadOutcome> {
  try {
    return { ok: true, text: await io.readFile(path) };
  } catch (err) {
    const code = errorCode(err);
    return { ok: false, missing: code === 'ENOENT' || code === 'ENOTDIR', code };
  }
}

/** Directory entries in natural order (hwmon2 before hwmon10); undefined when the directory is not there. */
export async function listDirectory(io: SysfsIo, path: string): Promise<string[] | undefined> {
  try {
    return (await io.readdir(path)).sort(naturalCompare);
  } catch {
    return undefined;
  }
}

export async function exists(io: SysfsIo, dir: string): Promise<boolean> {
  try {
    await io.readdir(dir);
    return true;
  } catch {
    return false;
  }
}

// Made on first use: creating a collator loads locale data, a cost every start paid before (sensors or not).
let collator: Intl.Collator | undefined;
export function naturalCompare(a: string, b: string): number {
  collator ??= new Intl.Collator('en', { numeric: true });
  return collator.compare(a, b);
}

/** A whole decimal or floating number, nothing else: sysfs values are one number and a newline. */
export function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** The Debian Python that has `fusepy` (a pyenv or venv `python3` earlier on PATH usually lacks it). */
export const SYSTEM_PYTHON = '/usr/bin/python3';
const FS_SCRIPT = fileURLToPath(new URL('./powercut_fs.py', import.meta.url));

/** What the file system dropped (and, with keep > 0, let through) at a cut. */
export interface CutReport {
  files: number;
  pages_dropped: number;
  pages_kept: number;
  names_dropped: number;
}

/** The file system's counters; `used` is the bytes the reachable files take (whole 4096-byte pages). */
export interface MountStats {
  dirty_pages: number;
  pending_names: number;
  fsyncs: number;
  dirsyncs: number;
  used: number;
  capacity: number | null;
}

/** The disk's size after a `capacity` command (null: unlimited) and the bytes used then. */
export interface CapacityReport {
  capacity: number | null;
  used: number;
}

/** Why the power-cut file system cannot run here, or undefined when it can. */
export function powerCutUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `FUSE power-cut tests need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'FUSE power-cut tests mount a file system and need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/fuse is missing or not accessible (a container needs --device /dev/fuse and CAP_SYS_ADMIN)';
  }
  if (!existsSync(SYSTEM_PYTHON)) return `${SYSTEM_PYTHON} is missing`;
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import fusepy'], { encoding: 'utf8' });
  if (probe.status !== 0) return `${SYSTEM_PYTHON} cannot import fusepy (apt-get install python3-fusepy): ${probe.stderr.trim().split('\n').pop()}`;
  return undefined;
}

function unmountCommand(mountpoint: string): [string, string[]] {
  for (const dir of ['/usr/bin', '/bin']) {
    if (existsSync(`${dir}/fusermount3`)) return [`${dir}/fusermount3`, ['-u', mountpoint]];
    if (existsSync(`${dir}/fusermount`)) return [`${dir}/fusermount`, ['-u', mountpoint]];
  }
  return ['umount', [mountpoint]];
}

/**
 * One mount of scripts/chaos/powercut_fs.py: `backing` seen through `mountpoint`, every write not fsynced
 * held in the daemon's memory until `cut()` throws it away. Unmount and mount again over the same backing
 * directory to "reboot".
 */
export class PowerCutMount {
  readonly backing: string;
  readonly mountpoint: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private readonly answers: string[] = [];
  private answerWaiters: ((line: string) => void)[] = [];
  private stderr = '';

  private constructor(backing: string, mountpoint: string) {
    this.backing = backing;
    this.mountpoint = mountpoint;
    this.child = spawn(SYSTEM_PYTHON, [FS_SCRIPT, backing, mountpoint], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const waiter = this.answerWaiters.shift();
      if (waiter) waiter(line);
      else this.answers.push(line);
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Mounts and resolves once the kernel has initialised the file system. */
  static async mount(backing: string, mountpoint: string, timeoutMs = 15_000): Promise<PowerCutMount> {
    const mount = new PowerCutMount(backing, mountpoint);
    const ready = await mount.nextLine(timeoutMs, 'the file system to mount').catch(async (err: Error) => {
      await mount.forceUnmount();
      throw err;
    });
    if (!ready.includes('"ready"')) {
      await mount.forceUnmount();
      throw new Error(`power-cut file system did not report ready: ${ready}`);
    }
    return mount;
  }

  private nextLine(timeoutMs: number, what: string): Promise<string> {
    const queued = this.answers.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr}`)), timeoutMs);
      const onExit = (code: number | null) => fail(new Error(`power-cut file system exited (${code}) while waiting for ${what}; stderr: ${this.stderr}`));
      const waiter = (line: string) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        resolve(line);
      };
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        this.answerWaiters = this.answerWaiters.filter((w) => w !== waiter);
        reject(err);
      };
      this.child.once('exit', onExit);
      this.answerWaiters.push(waiter);
    });
  }

  private async command<T>(line: string, key: string): Promise<T> {
    this.child.stdin!.write(`${line}\n`);
    const answer = JSON.parse(await this.nextLine(10_000, `the answer to ${line}`)) as Record<string, unknown>;
    if (!(key in answer)) throw new Error(`power-cut file system answered ${JSON.stringify(answer)} to ${line}`);
    return answer[key] as T;
  }

  /**
   * The power goes: unsynced writes are dropped (each kept with probability `keep`, drawn from `seed`) and
   * every later operation fails with EIO, so nothing the still-running writer does reaches the disk.
   */
  cut(keep = 0, seed = 0): Promise<CutReport> {
    return this.command<CutReport>(`cut ${keep} ${seed}`, 'cut');
  }

  stats(): Promise<MountStats> {
    return this.command('stats', 'stats');
  }

  /**
   * The disk holds `bytes` (null: unlimited again). Writes and truncates that would take the files still
   * reachable (named or open) beyond it fail with ENOSPC; statfs reports the capacity and what is left.
   */
  capacity(bytes: number | null): Promise<CapacityReport> {
    if (bytes !== null && (!Number.isSafeInteger(bytes) || bytes < 0)) throw new RangeError(`capacity must be a whole number of bytes >= 0, not ${bytes}`);
    return this.command<CapacityReport>(`capacity ${bytes === null ? 'none' : bytes}`, 'capacity');
  }

  /** Unmounts (retrying while the kernel still reports the mount busy) and waits for the daemon to end. */
  async unmount(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const [cmd, args] = unmountCommand(this.mountpoint);
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) break;
      const result = spawnSync(cmd, args, { encoding: 'utf8' });
      if (result.status === 0) break;
      if (Date.now() > deadline) throw new Error(`cannot unmount ${this.mountpoint}: ${result.stderr.trim()}${holders(this.mountpoint)}`);
      // A process killed a moment ago may still hold files open: the kernel releases them shortly.
      await new Promise((r) => setTimeout(r, 20));
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), Math.max(1, deadline - Date.now()));
    await this.exited;
    clearTimeout(timer);
  }

  /** Last-resort cleanup: lazy unmount and kill the daemon. */
  async forceUnmount(): Promise<void> {
    const [cmd, _args] = unmountCommand(this.mountpoint);
    spawnSync(cmd, cmd === 'umount' ? ['-l', this.mountpoint] : ['-u', '-z', this.mountpoint]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** The processes that still use something under `dir` (open files, working directory, mappings), for the error. */
function holders(dir: string): string {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const uses =
        readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkOrEmpty(`/proc/${pid}/fd/${fd}`).startsWith(dir)) ||
        readlinkOrEmpty(`/proc/${pid}/cwd`).startsWith(dir) ||
        readFileSync(`/proc/${pid}/maps`, 'utf8').includes(dir);
      if (uses) found.push(`${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 120)})`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found.length > 0 ? `; held by ${found.join(', ')}` : '; no process holds a file there';
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

export interface Mosquitto {
  port: number;
  url: string;
  pid: number;
  dir: string;
  /** SIGTERM (mosquitto saves its persistence file on the way out) and wait for the process to end. */
  stop(): Promise<void>;
  /** SIGKILL: no chance to save anything. */
  kill(): Promise<void>;
  /** Start again on the same port and directory (same persistence file). */
  restart(): Promise<void>;
}

/**
 * A real Mosquitto of our own on a free loopback port, with TCP_NODELAY (windowed QoS 1 otherwise collapses
 * to ~250 msg/s under Nagle plus delayed ACK) and, on request, persistence so a restart keeps sessions.
 */
export async function startMosquitto(options: { persistence?: boolean; port?: number; extra?: string[] } = {}): Promise<Mosquitto> {
  // A free port can be taken by another test between the look-up and mosquitto's bind: try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMosquittoOnce(options);
    } catch (err) {
      if (options.port !== undefined || attempt >= 3) throw err;
    }
  }
}

async function startMosquittoOnce(options: { persistence?: boolean; port?: number; extra?: string[] }): Promise<Mosquitto> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'edge-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'set_tcp_nodelay true',
      'max_queued_messages 0',
      'max_inflight_messages 100',
      `persistence ${options.persistence ? 'true' : 'false'}`,
      `persistence_location ${dir}/`,
      // Started as root, mosquitto drops to user "mosquitto", which cannot read our 0700 temp dir (its
      // persistence file, test certificates): keep the invoking user instead.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'log_dest none',
      ...(options.extra ?? []),
      '',
    ].join('\n'),
  );
  let child: ChildProcess;
  const exited = () => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  const launch = async () => {
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const failed = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${stderr.trim()}`))));
    // "Something accepts on the port" is not "our broker started": another test's broker may hold it (a free
    // port taken in between), and then two tests would share one broker. Wait until this process owns it.
    await Promise.race([waitForPort(port).then(() => ownsListeningPort(child, port)), failed]);
    failed.catch(() => {});
  };
  await launch();
  const broker: Mosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    get pid() {
      return child.pid!;
    },
    dir,
    async stop() {
      child.kill('SIGTERM');
      await exited();
    },
    async kill() {
      child.kill('SIGKILL');
      await exited();
    },
    async restart() {
      await launch();
    },
  };
  return broker;
}

/** Resolves once `child` holds a listening TCP socket on `port` (Linux /proc); rejects if another process does. */
async function ownsListeningPort(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.pid !== undefined && listensOn(child.pid, port)) return;
    if (child.exitCode !== null || child.signalCode !== null) return; // the exit rejects the race with its reason
    if (Date.now() > deadline) throw new Error(`port ${port} is held by another process, not by mosquitto ${child.pid}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function listensOn(pid: number, port: number): boolean {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address, state 0A (LISTEN), inode
      if (f.length > 9 && f[1]!.endsWith(hexPort) && f[3] === '0A') inodes.add(f[9]!);
    }
  }
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match && inodes.has(match[1]!)) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/**
 * A private PostgreSQL server for a test that stops or restarts its database: initdb into a temp directory,
 * the `postgres` binary itself as our child on a free loopback port (its socket in the same directory), so it
 * is stopped by its own PID and never touches the machine's server. Run as the `postgres` user when the
 * test runs as root (PostgreSQL refuses to run as root).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/lib/ports.ts';

const BIN = '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  pid: number;
  /** SIGQUIT: immediate shutdown, as a crash (crash recovery at the next start). Resolves when it has exited. */
  crash(): Promise<void>;
  /** Starts again on the same port and data; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT) and the directory removed. */
  close(): Promise<void>;
}

/** Why a private server cannot run here, or undefined. */
export function privatePostgresUnavailable(): string | undefined {
  if (!existsSync(join(BIN, 'initdb')) || !existsSync(join(BIN, 'postgres'))) return `no PostgreSQL 15 binaries in ${BIN}`;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', 'postgres']);
    } catch {
      return 'running as root and there is no postgres user to run a private server as';
    }
  }
  return undefined;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const root = process.getuid?.() === 0;
  const ids = root
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) }
    : {};
  const dir = mkdtempSync(join(tmpdir(), 'edge-pg-'));
  if (root) chownSync(dir, ids.uid!, ids.gid!);
  const data = join(dir, 'data');
  execFileSync(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], { ...ids, stdio: 'ignore' });
  const port = await freePort();
  let child: ChildProcess;
  let exited: Promise<void>;
  const start = async () => {
    child = spawn(join(BIN, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=50'], {
      ...ids,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        log += d;
        if (log.includes('database system is ready to accept connections')) resolve();
      });
      void exited.then(() => reject(new Error(`private postgres exited: ${log.slice(-2000)}`)));
    });
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    get pid() {
      return child.pid!;
    },
    async crash() {
      child.kill('SIGQUIT');
      await exited;
    },
    start,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
    await Promise.race([waitForPort(port), failed]);
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

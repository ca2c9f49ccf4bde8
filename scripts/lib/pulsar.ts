import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = resolve(import.meta.dirname, '../pulsar/standalone.sh');

export interface PulsarBroker {
  /** The broker's data directory (kept across restarts). */
  dir: string;
  webPort: number;
  brokerPort: number;
  /** ws://127.0.0.1:<web port>: the base URL of the WebSocket API. */
  wsUrl: string;
  /** http://127.0.0.1:<web port>: the admin REST API. */
  webUrl: string;
  pid: number;
  /** SIGTERM, then SIGKILL after the script's stop timeout. */
  stop(): Promise<void>;
  /** SIGKILL: the crash case. */
  kill(): Promise<void>;
  /** Start again on the same directory and ports (same data), once stopped or killed. */
  restart(): Promise<void>;
  /** Stop and remove the directory. */
  close(): Promise<void>;
  /** Calls the admin REST API (with the admin token when auth is on); resolves with the HTTP status. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
}

export interface PulsarStartOptions {
  /** Token authentication: the HS256 secret key file and a JWT for the superuser `admin` signed with it. */
  auth?: { secretKeyFile: string; adminToken: string };
  /** Extra `key=value` broker settings. */
  extraConf?: string[];
}

async function script(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
    return stdout.trim();
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr ?? '';
    throw new Error(`scripts/pulsar/standalone.sh ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-15).join('\n')}`, { cause });
  }
}

/** Resolves Pulsar's jars into the local Maven repository once (a no-op when the classpath is cached). */
export async function fetchPulsar(): Promise<void> {
  await script(['fetch'], process.env);
}

function readPorts(file: string): Record<string, string> {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const);
  return Object.fromEntries(entries);
}

/**
 * A real Pulsar standalone broker (scripts/pulsar/standalone.sh) in a fresh directory on free ports; resolves
 * once its admin API answers. Start-up takes several seconds and ~450 MB: start one per test file.
 */
export async function startPulsar(options: PulsarStartOptions = {}): Promise<PulsarBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-pulsar-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.auth) {
    env.PULSAR_AUTH_TOKEN_SECRET_FILE = options.auth.secretKeyFile;
    env.PULSAR_AUTH_TOKEN = options.auth.adminToken;
  }
  if (options.extraConf) env.PULSAR_EXTRA_CONF = options.extraConf.join('\n');
  let ports: Record<string, string> = {};
  const start = async () => {
    ports = readPorts(await script(['start', dir], env));
  };
  try {
    // A port chosen free can be taken by another test before the broker binds it; the script refuses that
    // before starting anything, so choosing again is safe.
    for (let attempt = 1; ; attempt++) {
      try {
        await start();
        break;
      } catch (err) {
        if (attempt >= 3 || !/already in use/.test(String((err as Error).message))) throw err;
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const webPort = Number(ports.PULSAR_WEB_PORT);
  let running = true;
  const broker: PulsarBroker = {
    dir,
    webPort,
    brokerPort: Number(ports.PULSAR_BROKER_PORT),
    wsUrl: `ws://127.0.0.1:${webPort}`,
    webUrl: `http://127.0.0.1:${webPort}`,
    get pid() {
      return Number(ports.PULSAR_PID);
    },
    async stop() {
      await script(['stop', dir], env);
      running = false;
    },
    async kill() {
      await script(['kill', dir], env);
      running = false;
    },
    async restart() {
      if (running) throw new Error('pulsar broker is still running; stop or kill it first');
      await start();
      running = true;
    },
    async close() {
      if (running) await script(['kill', dir], env);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
    async admin(method, path, body) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (options.auth) headers.authorization = `Bearer ${options.auth.adminToken}`;
      const response = await fetch(`http://127.0.0.1:${webPort}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: response.status, text: await response.text() };
    },
  };
  return broker;
}

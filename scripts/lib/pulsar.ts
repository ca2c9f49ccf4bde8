import { runStandalone, startScriptedBroker } from './java-broker.ts';

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

/** Resolves Pulsar's jars into the local Maven repository once (a no-op when the classpath is cached). */
export async function fetchPulsar(): Promise<void> {
  await runStandalone('pulsar', ['fetch'], process.env);
}

/**
 * A real Pulsar standalone broker (scripts/pulsar/standalone.sh) in a fresh directory on free ports; resolves
 * once its admin API answers. Start-up takes several seconds and ~450 MB: start one per test file.
 */
export async function startPulsar(options: PulsarStartOptions = {}): Promise<PulsarBroker> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.auth) {
    env.PULSAR_AUTH_TOKEN_SECRET_FILE = options.auth.secretKeyFile;
    env.PULSAR_AUTH_TOKEN = options.auth.adminToken;
  }
  if (options.extraConf) env.PULSAR_EXTRA_CONF = options.extraConf.join('\n');
  const started = await startScriptedBroker('pulsar', env);
  const ports = started.ports();
  const webPort = Number(ports.PULSAR_WEB_PORT);
  const broker: PulsarBroker = {
    dir: started.dir,
    webPort,
    brokerPort: Number(ports.PULSAR_BROKER_PORT),
    wsUrl: `ws://127.0.0.1:${webPort}`,
    webUrl: `http://127.0.0.1:${webPort}`,
    get pid() {
      return Number(started.ports().PULSAR_PID);
    },
    stop: started.stop,
    kill: started.kill,
    restart: started.restart,
    close: started.close,
    async admin(method, path, body) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (options.auth) headers.authorization = `Bearer ${options.auth.adminToken}`;
      const response = await fetch(`http://127.0.0.1:${webPort}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: response.status, text: await response.text() };
    },
  };
  return broker;
}

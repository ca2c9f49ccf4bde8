import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = resolve(import.meta.dirname, '../kafka/standalone.sh');

export interface KafkaBroker {
  /** The broker's data directory (kept across restarts). */
  dir: string;
  port: number;
  /** 127.0.0.1:<port>, for a sink's `brokers` list. */
  bootstrap: string;
  pid: number;
  /** SIGTERM, then SIGKILL after the script's stop timeout. */
  stop(): Promise<void>;
  /** SIGKILL: the crash case. */
  kill(): Promise<void>;
  /** Start again on the same directory and ports (same data, same cluster id), once stopped or killed. */
  restart(): Promise<void>;
  /** Kill and remove the directory. */
  close(): Promise<void>;
}

export interface KafkaStartOptions {
  /** num.partitions for auto-created topics (default 4). */
  partitions?: number;
  /** Extra `key=value` broker settings. */
  extraConf?: string[];
  /** SASL/PLAIN on the client listener with these users (name → password). */
  saslPlainUsers?: Record<string, string>;
}

async function script(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
    return stdout.trim();
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr ?? '';
    throw new Error(`scripts/kafka/standalone.sh ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-15).join('\n')}`, { cause });
  }
}

/**
 * Why a Kafka broker cannot run here (no Java 17+, no Maven to fetch it and no cached classpath), or
 * undefined when it can. Tests skip with this reason printed instead of failing on a machine without Java.
 */
export function kafkaUnavailable(): string | undefined {
  try {
    const out = execFileSync('java', ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    void out;
  } catch {
    return 'no `java` on PATH (Kafka 4 needs Java 17+; .ci/run installs openjdk-17-jre-headless)';
  }
  try {
    execFileSync('bash', [SCRIPT, 'classpath'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  } catch (err) {
    return `Kafka jars cannot be resolved (scripts/kafka/standalone.sh fetch): ${String((err as { stderr?: unknown }).stderr ?? err)
      .trim()
      .split('\n')
      .slice(-2)
      .join(' ')}`;
  }
  return undefined;
}

function readPorts(file: string): Record<string, string> {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const);
  return Object.fromEntries(entries);
}

/**
 * A real single-node Kafka 4 broker in KRaft mode (scripts/kafka/standalone.sh) in a fresh directory on free
 * ports; resolves once it has started. Takes a few seconds and ~300 MB: start one per test file.
 */
export async function startKafka(options: KafkaStartOptions = {}): Promise<KafkaBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-kafka-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.partitions !== undefined) env.KAFKA_PARTITIONS = String(options.partitions);
  if (options.extraConf) env.KAFKA_EXTRA_CONF = options.extraConf.join('\n');
  if (options.saslPlainUsers) {
    env.KAFKA_SASL_PLAIN_USERS = Object.entries(options.saslPlainUsers)
      .map(([user, password]) => `${user}:${password}`)
      .join(' ');
  }
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
  const port = Number(ports.KAFKA_PORT);
  let running = true;
  return {
    dir,
    port,
    bootstrap: `127.0.0.1:${port}`,
    get pid() {
      return Number(ports.KAFKA_PID);
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
      if (running) throw new Error('kafka broker is still running; stop or kill it first');
      await start();
      running = true;
    },
    async close() {
      if (running) await script(['kill', dir], env);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

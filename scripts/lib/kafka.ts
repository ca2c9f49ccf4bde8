import { execFileSync } from 'node:child_process';
import { standaloneScript, startScriptedBroker } from './java-broker.ts';

const SCRIPT = standaloneScript('kafka');

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
  /**
   * SASL/SCRAM on the client listener with these users (name → password), created when the storage is
   * formatted. Names and passwords without spaces, ',', '=' or ']'. Not with `saslPlainUsers`.
   */
  scramUsers?: Record<string, string>;
  /** The SCRAM mechanism of `scramUsers` (default SCRAM-SHA-512). */
  scramMechanism?: 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
  /**
   * TLS on the client listener: a directory holding server.key (unencrypted PKCS#8 PEM), server.crt and ca.crt.
   * With `scramUsers` the listener is SASL_SSL, else SSL. Inter-broker traffic then uses a PLAINTEXT listener
   * of its own on 127.0.0.1.
   */
  tlsDir?: string;
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

/**
 * A real single-node Kafka 4 broker in KRaft mode (scripts/kafka/standalone.sh) in a fresh directory on free
 * ports; resolves once it has started. Takes a few seconds and ~300 MB: start one per test file.
 */
export async function startKafka(options: KafkaStartOptions = {}): Promise<KafkaBroker> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.partitions !== undefined) env.KAFKA_PARTITIONS = String(options.partitions);
  if (options.extraConf) env.KAFKA_EXTRA_CONF = options.extraConf.join('\n');
  if (options.saslPlainUsers) {
    env.KAFKA_SASL_PLAIN_USERS = Object.entries(options.saslPlainUsers)
      .map(([user, password]) => `${user}:${password}`)
      .join(' ');
  }
  if (options.scramUsers) {
    env.KAFKA_SCRAM_USERS = Object.entries(options.scramUsers)
      .map(([user, password]) => `${user}:${password}`)
      .join(' ');
  }
  if (options.scramMechanism) env.KAFKA_SCRAM_MECHANISM = options.scramMechanism;
  if (options.tlsDir) env.KAFKA_TLS_DIR = options.tlsDir;
  const broker = await startScriptedBroker('kafka', env);
  const port = Number(broker.ports().KAFKA_PORT);
  return {
    dir: broker.dir,
    port,
    bootstrap: `127.0.0.1:${port}`,
    get pid() {
      return Number(broker.ports().KAFKA_PID);
    },
    stop: broker.stop,
    kill: broker.kill,
    restart: broker.restart,
    close: broker.close,
  };
}

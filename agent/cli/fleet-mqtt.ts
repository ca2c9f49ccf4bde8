/**
 * The operator's side of the fleet topics: one short-lived MQTT connection with the options every
 * `fleet push|list|command` takes, and a read of retained messages under a topic filter.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { MqttClient } from 'mqtt';
import { AgentError } from '../errors.ts';
import { connectMqttAsync } from '../util/mqtt-client.ts';
import { mqttConnectOptions } from '../util/mqtt-url.ts';
import { describeTlsFailure, type TlsConnectionOptions, tlsConnectionOptions } from '../util/tls.ts';

export interface OperatorBrokerOptions {
  broker: string;
  prefix: string;
  username?: string;
  passwordFile?: string;
  passwordEnv?: string;
  mqttVersion: string;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

/** The broker options of every operator command that talks to the fleet's broker. */
export function brokerOptions(command: Command): Command {
  return command
    .requiredOption('--broker <URL>', "the fleet's broker: mqtt://host:port or mqtts://host:port")
    .option('--prefix <P>', 'fleet.topic_prefix of the devices', 'edge-agent')
    .option('--username <NAME>', 'user name at the broker')
    .option('--password-file <FILE>', 'file holding the password (first line)')
    .option('--password-env <VAR>', 'environment variable holding the password')
    .option('--mqtt-version <N>', '5, or 4 for an MQTT 3.1.1 broker', '5')
    .option('--ca <FILE>', "with mqtts://: PEM file of the CA(s) that signed the broker's certificate (default: the system CAs)")
    .option('--cert <FILE>', 'with mqtts://: PEM client certificate file, for client-certificate authentication')
    .option('--key <FILE>', 'with mqtts://: PEM private key file of --cert')
    .option('--servername <NAME>', "with mqtts://: the name to verify in the broker's certificate, when it differs from the URL's host");
}

function password(o: OperatorBrokerOptions): string | undefined {
  if (o.passwordFile) return readFileSync(o.passwordFile, 'utf8').split(/\r?\n/, 1)[0];
  if (o.passwordEnv) {
    const value = process.env[o.passwordEnv];
    if (value === undefined) throw new AgentError('USAGE', `environment variable ${o.passwordEnv} (--password-env) is not set`);
    return value;
  }
  return undefined;
}

/** TLS options from --ca/--cert/--key/--servername (files relative to the working directory); the host name is always verified. */
function tls(o: OperatorBrokerOptions): TlsConnectionOptions {
  if ((o.cert === undefined) !== (o.key === undefined)) throw new AgentError('USAGE', '--cert and --key go together');
  try {
    return tlsConnectionOptions({ ca: o.ca, cert: o.cert, key: o.key, servername: o.servername, reject_unauthorized: true }, process.cwd(), '--broker');
  } catch (err) {
    throw new AgentError('USAGE', (err as Error).message, { cause: err });
  }
}

export async function connectOperator(o: OperatorBrokerOptions): Promise<MqttClient> {
  const version = Number(o.mqttVersion);
  if (version !== 4 && version !== 5) throw new AgentError('USAGE', `--mqtt-version must be 4 or 5, not ${o.mqttVersion}`);
  const tlsOptions = tls(o);
  try {
    return await connectMqttAsync(
      mqttConnectOptions(o.broker, {
        clientId: `edge-agent-operator-${randomBytes(4).toString('hex')}`,
        protocolVersion: version,
        username: o.username,
        password: password(o),
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        writeCache: false,
        ...tlsOptions,
      }),
    );
  } catch (cause) {
    const refused = describeTlsFailure(cause);
    throw new AgentError('SINK_UNAVAILABLE', `cannot connect to ${o.broker}${refused ? `: ${refused}` : ''}`, { cause });
  }
}

/**
 * The retained messages under `filter`: the broker sends them right after the subscription; collection ends
 * once none came for `quietMs` (or after `maxMs`).
 */
export async function retained(client: MqttClient, filter: string, quietMs = 500, maxMs = 5_000): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  let last = Date.now();
  const onMessage = (topic: string, payload: Buffer, packet: { retain?: boolean }) => {
    if (!packet.retain || !topicMatches(filter, topic)) return;
    last = Date.now();
    if (payload.length === 0) found.delete(topic);
    else found.set(topic, payload);
  };
  client.on('message', onMessage);
  await client.subscribeAsync(filter, { qos: 1 });
  const started = Date.now();
  last = Date.now();
  while (Date.now() - last < quietMs && Date.now() - started < maxMs) await new Promise((r) => setTimeout(r, 50));
  client.off('message', onMessage);
  return found;
}

/** MQTT topic filter match (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export function parseJson(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

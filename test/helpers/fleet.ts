/**
 * A fleet for tests: root and operator keys, signed configs and commands, agent configs with remote control
 * on, agents as `run` processes, and an operator MQTT client that collects what the devices publish.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { type Ed25519Pair, type Envelope, generatePair, keyIdOf, rfc3339, signEnvelope } from '../../agent/trust/index.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';

export const PREFIX = 'fleet';

export interface Operator {
  root: Ed25519Pair;
  key: Ed25519Pair;
  certificate: Envelope;
  keyId: string;
}

/** A root key and an operator key it certified (valid for a day). */
export function makeOperator(name = 'alice', root: Ed25519Pair = generatePair()): Operator {
  const key = generatePair();
  const now = Date.now();
  const certificate = signEnvelope(
    'operator-cert',
    {
      kind: 'operator-cert',
      name,
      key: key.public,
      issued: rfc3339(new Date(now - 60_000)),
      expires: rfc3339(new Date(now + 86_400_000)),
      root_version: 1,
    } as never,
    [root],
  );
  return { root, key, certificate, keyId: keyIdOf(key.public) };
}

export function signedCommand(
  op: Operator,
  device: string,
  action: string,
  args: Record<string, unknown> = {},
  validMs = 300_000,
  extra: Record<string, unknown> = {},
) {
  const now = Date.now();
  const document = {
    kind: 'command',
    target: { device },
    action,
    args,
    nonce: randomBytes(16).toString('hex'),
    issued: rfc3339(new Date(now - 1_000)),
    expires: rfc3339(new Date(now + validMs)),
    ...extra,
  };
  return { envelope: signEnvelope('command', document as never, [op.key], op.certificate), nonce: document.nonce };
}

export function signedConfig(
  op: Operator,
  target: { device: string } | { group: string },
  version: number,
  config: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  const now = Date.now();
  const document = { kind: 'config', target, version, issued: rfc3339(new Date(now - 1_000)), expires: rfc3339(new Date(now + 86_400_000)), config, ...extra };
  return signEnvelope('config', document as never, [op.key], op.certificate);
}

export function signedRevocations(root: Ed25519Pair, version: number, keyIds: string[]): Envelope {
  const now = Date.now();
  return signEnvelope(
    'revocations',
    { kind: 'revocations', version, keys: keyIds, issued: rfc3339(new Date(now - 1_000)), expires: rfc3339(new Date(now + 86_400_000)) } as never,
    [root],
  );
}

/** A directory with device and centre keys and an agent config: synthetic source → MQTT sink, remote control on. */
export async function fleetAgentDir(
  brokerUrl: string,
  device: string,
  root: Ed25519Pair,
  options: {
    groups?: string[];
    extra?: string;
    fleetExtra?: string;
    rate?: number;
    protocol?: 4 | 5;
    healthDeadline?: string;
    prefix?: string;
    credentials?: { username: string; passwordFile: string };
  } = {},
): Promise<{ dir: string; config: string }> {
  const dir = mkdtempSync(join(tmpdir(), `edge-fleet-${device}-`));
  writeKeyPair(x25519, join(dir, 'keys', 'device'));
  writeKeyPair(x25519, join(dir, 'keys', 'centre'));
  const config = join(dir, 'agent.yaml');
  const login = options.credentials ? `, username: ${options.credentials.username}, password_file: ${options.credentials.passwordFile}` : '';
  writeFileSync(
    config,
    `device: { id: ${device} }
data_dir: data
log: { level: info, format: json }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - { type: synthetic, name: gen, rate: ${options.rate ?? 20}, batch: 5 }
sink:
  type: mqtt
  url: ${brokerUrl}
  reconnect: { initial_delay: 50ms, max_delay: 500ms }
${login ? `  username: ${options.credentials!.username}\n  password_file: ${options.credentials!.passwordFile}` : ''}
queue: { commit_interval: 50ms }
sender: { retry_initial_delay: 50ms, retry_max_delay: 500ms }
fleet:
  enabled: true
  broker: { url: ${brokerUrl}, protocol_version: ${options.protocol ?? 5}${login} }
  topic_prefix: ${options.prefix ?? PREFIX}
  groups: [${(options.groups ?? []).join(', ')}]
  trust: { root_keys: [${root.public}], threshold: 1 }
  health_deadline: ${options.healthDeadline ?? '20s'}
${options.fleetExtra ?? ''}
${options.extra ?? ''}`,
  );
  return { dir, config };
}

export interface AgentProcess {
  child: ChildProcess;
  exited: Promise<NodeJS.Signals | number | null>;
  stderr: () => string;
}

export function startAgentProcess(config: string): AgentProcess {
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { child, exited, stderr: () => stderr };
}

/** The operator's view: every message on the watched topics, newest retained value per topic. */
export class Watcher {
  readonly client: MqttClient;
  readonly messages: { topic: string; payload: Buffer; retain: boolean; correlation?: Buffer | undefined }[] = [];
  readonly last = new Map<string, Buffer>();

  private constructor(client: MqttClient) {
    this.client = client;
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, retain: packet.retain, correlation: packet.properties?.correlationData });
      this.last.set(topic, payload);
    });
  }

  static async connect(url: string, topics: string[], protocolVersion: 4 | 5 = 5, login: { username?: string; password?: string } = {}): Promise<Watcher> {
    const client = await mqtt.connectAsync(url, { protocolVersion, clientId: `watch-${randomBytes(4).toString('hex')}`, reconnectPeriod: 200, ...login });
    const w = new Watcher(client);
    if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
    return w;
  }

  json(topic: string): Record<string, unknown> | undefined {
    const p = this.last.get(topic);
    if (!p || p.length === 0) return undefined;
    try {
      return JSON.parse(p.toString()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /** Parsed JSON messages on `topic` (optionally with this correlation data). */
  all(topic: string, correlation?: Buffer): Record<string, unknown>[] {
    return this.messages
      .filter((m) => m.topic === topic && (!correlation || (m.correlation && Buffer.compare(m.correlation, correlation) === 0)))
      .flatMap((m) => {
        try {
          return [JSON.parse(m.payload.toString()) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  count(topicPrefix: string): number {
    return this.messages.filter((m) => m.topic.startsWith(topicPrefix)).length;
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

/** Polls `test` until true (another process's output), failing after `timeoutMs` with `what` and `detail()`. */
export async function until(test: () => boolean, what: string, timeoutMs = 30_000, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

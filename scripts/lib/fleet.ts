/**
 * A fleet for benchmarks (and anything else under scripts/): root and operator keys made by the real
 * `edge-agent fleet` commands, configs signed with the operator key through agent/trust, agents as real
 * `run` processes with remote control on or off, and an operator MQTT client that timestamps every
 * config report the devices publish.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { x25519 } from '../../agent/keys/x25519.ts';
import { writeKeyPair } from '../../agent/keys/keys.ts';
import { type Envelope, loadPrivateKeyFile, loadPublicKeyFile, type PrivateKeyFile, rfc3339, signEnvelope } from '../../agent/trust/index.ts';

export interface FleetKeys {
  dir: string;
  /** The root public key (base64url) devices put in `fleet.trust.root_keys`. */
  rootPublic: string;
  operator: PrivateKeyFile;
  certificate: Envelope;
}

function cli(args: string[]): string {
  const run = spawnSync(process.execPath, ['agent/cli/main.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`edge-agent ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return run.stdout;
}

/** One root key (threshold 1) and an operator key it certifies for a day, with the real CLI commands. */
export function makeFleetKeys(): FleetKeys {
  const dir = mkdtempSync(join(tmpdir(), 'edge-fleet-keys-'));
  cli(['fleet', 'root', 'init', '--dir', join(dir, 'root'), '--keys', '1', '--threshold', '1']);
  cli(['fleet', 'operator', 'create', '--name', 'bench', '--out', join(dir, 'operator.key')]);
  cli([
    'fleet',
    'operator',
    'certify',
    '--root-key',
    join(dir, 'root', 'root-1.key'),
    '--operator',
    join(dir, 'operator.pub'),
    '--expires',
    '1d',
    '--out',
    join(dir, 'operator.cert'),
  ]);
  return {
    dir,
    rootPublic: loadPublicKeyFile(join(dir, 'root', 'root-1.pub'), 'root').public,
    operator: loadPrivateKeyFile(join(dir, 'operator.key'), 'operator'),
    certificate: JSON.parse(readFileSync(join(dir, 'operator.cert'), 'utf8')) as Envelope,
  };
}

/** A config document for a device or a group, valid for a day, signed by the operator key. */
export function signConfig(keys: FleetKeys, target: { device: string } | { group: string }, version: number, config: Record<string, unknown>): Envelope {
  const now = Date.now();
  const document = { kind: 'config', target, version, issued: rfc3339(new Date(now - 1_000)), expires: rfc3339(new Date(now + 86_400_000)), config };
  return signEnvelope('config', document as never, [keys.operator], keys.certificate);
}

export interface AgentOptions {
  brokerUrl: string;
  device: string;
  rootPublic: string;
  fleetEnabled?: boolean;
  groups?: string[];
  prefix: string;
  rate: number;
  batch?: number;
}

/**
 * A directory with device and centre keys and an agent config: synthetic source → MQTT sink, everything
 * else at its default (queue, sender, `fleet.health_deadline`) so the figures are what a plain config gets.
 */
export async function writeAgentConfig(options: AgentOptions): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `edge-fleet-${options.device}-`));
  writeKeyPair(x25519, join(dir, 'keys', 'device'));
  writeKeyPair(x25519, join(dir, 'keys', 'centre'));
  const config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    `device: { id: ${options.device} }
data_dir: data
log: { level: warn, format: json }
keys: { device_private: keys/device.key, centre_public: keys/centre.pub }
sources:
  - { type: synthetic, name: gen, rate: ${options.rate}, batch: ${options.batch ?? 5} }
sink: { type: mqtt, url: ${options.brokerUrl} }
fleet:
  enabled: ${options.fleetEnabled ?? true}
  broker: { url: ${options.brokerUrl} }
  topic_prefix: ${options.prefix}
  groups: [${(options.groups ?? []).join(', ')}]
  trust: { root_keys: [${options.rootPublic}], threshold: 1 }
`,
  );
  return config;
}

export interface AgentProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<NodeJS.Signals | number | null>;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** `node agent/cli/main.ts run --config <config>`; stop() sends SIGTERM and waits (SIGKILL after 15 s). */
export function startAgent(config: string): AgentProcess {
  const child = spawn(process.execPath, ['agent/cli/main.ts', 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return {
    child,
    pid: child.pid!,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface ConfigReport {
  device: string;
  layer: string;
  version?: number;
  outcome: string;
  reason?: string;
  /** performance.now() when the operator received it. */
  at: number;
}

/** The operator: publishes envelopes and records, with the time it saw them, every status and config report. */
export class Operator {
  readonly reports: ConfigReport[] = [];
  readonly status = new Map<string, Record<string, unknown>>();

  readonly client: MqttClient;
  readonly prefix: string;

  private constructor(client: MqttClient, prefix: string) {
    this.client = client;
    this.prefix = prefix;
    client.on('message', (topic, payload) => {
      const at = performance.now();
      const parts = topic.split('/');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        return;
      }
      if (parts.length === 4 && parts[2] === 'config' && parts[3] === 'report') {
        this.reports.push({ device: parts[1]!, ...(body as Omit<ConfigReport, 'device' | 'at'>), at });
      } else if (parts.length === 3 && parts[2] === 'status') {
        this.status.set(parts[1]!, body);
      }
    });
  }

  static async connect(url: string, prefix: string): Promise<Operator> {
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `bench-operator-${process.pid}` });
    const operator = new Operator(client, prefix);
    await client.subscribeAsync([`${prefix}/+/config/report`, `${prefix}/+/status`], { qos: 1 });
    return operator;
  }

  /** Publishes a config envelope retained (as `fleet push` does) and returns performance.now() just before. */
  async push(target: { device: string } | { group: string }, envelope: Envelope): Promise<number> {
    const topic = 'device' in target ? `${this.prefix}/${target.device}/config` : `${this.prefix}/group/${target.group}/config`;
    const started = performance.now();
    await this.client.publishAsync(topic, JSON.stringify(envelope), { qos: 1, retain: true });
    return started;
  }

  /** The first terminal report of `device` for (`layer`, `version`), or undefined. */
  reportOf(device: string, layer: string, version: number): ConfigReport | undefined {
    return this.reports.find((r) => r.device === device && r.layer === layer && r.version === version && r.outcome !== 'unchanged');
  }

  async waitReport(device: string, layer: string, version: number, timeoutMs: number): Promise<ConfigReport> {
    await until(() => this.reportOf(device, layer, version) !== undefined, `${device}'s report for ${layer} v${version}`, timeoutMs);
    return this.reportOf(device, layer, version)!;
  }

  online(device: string): boolean {
    return this.status.get(device)?.online === true;
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

/** Polls `test` until true, failing after `timeoutMs` with `what`. */
export async function until(test: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

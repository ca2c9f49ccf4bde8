/**
 * Self-update delivery for tests: a device (the real executable, or the agent under node) with fleet.update on
 * and a release layout of its own, manifests and timestamps signed like `fleet push-update` signs them, and a
 * chunk server (the real one, agent/update/transfer-server.ts) on an operator connection that counts what it
 * served. An "evil" server that answers with other bytes is built in the tests from the protocol's encoder.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Envelope } from '../../agent/trust/index.ts';
import { type PreparedRelease, prepareRelease, type ReleaseInput, signManifest, signTimestamp } from '../../agent/update/manifest-sign.ts';
import { ReleaseStore } from '../../agent/update/releases.ts';
import { ChunkServer } from '../../agent/update/transfer-server.ts';
import { FRAME_HEADER_BYTES } from '../../agent/update/transfer-protocol.ts';
import { type AgentProcess, fleetAgentDir, type Operator, PREFIX } from './fleet.ts';

export const DEVICE_TOPICS = (device: string) => ({
  manifest: `${PREFIX}/${device}/update`,
  timestamp: `${PREFIX}/${device}/update/timestamp`,
  report: `${PREFIX}/${device}/update/report`,
  status: `${PREFIX}/${device}/status`,
  data: `edge-agent/v1/${device}/#`,
});

export interface UpdateDevice {
  dir: string;
  config: string;
  releases: ReleaseStore;
  /** An empty file: the device has no chunks of its own to copy (everything is downloaded). */
  emptySource: string;
}

/** A device directory with fleet.update on and a release layout whose committed release is `committed`. */
export async function updateDevice(
  brokerUrl: string,
  device: string,
  op: Operator,
  committed: { version: string; executable: string; release: number },
  update = '',
): Promise<UpdateDevice> {
  const { dir, config } = await fleetAgentDir(brokerUrl, device, op.root, {
    fleetExtra: `  update: { enabled: true, releases_dir: releases, in_flight: 8, retry_after: 2s${update ? `, ${update}` : ''} }`,
  });
  const releases = new ReleaseStore(join(dir, 'releases'));
  releases.adopt(committed.version, committed.executable, { releaseCounter: committed.release });
  const emptySource = join(dir, 'empty');
  writeFileSync(emptySource, '');
  return { dir, config, releases, emptySource };
}

/** The device as a process: `executable run` (the real build) or the agent under node when none is given. */
export function startDevice(config: string, options: { executable?: string; env?: Record<string, string> } = {}): AgentProcess {
  const [cmd, args] = options.executable
    ? [options.executable, ['run', '--config', config]]
    : [process.execPath, ['agent/cli/main.ts', 'run', '--config', config]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...options.env } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { child, exited, stderr: () => stderr };
}

export interface SignedRelease extends PreparedRelease {
  envelope: Envelope;
  id: string;
  timestamp(validMs?: number, now?: number, version?: number): Envelope;
}

export async function signedRelease(
  op: Operator,
  input: Omit<ReleaseInput, 'validMs'> & { validMs?: number },
  roots = [] as Operator['root'][],
): Promise<SignedRelease> {
  return resigned(op, await prepareRelease({ validMs: 3_600_000, ...input }), {}, roots);
}

/** The same file's chunks under another document (other version, arch, target, times): no second chunking. */
export function resigned(
  op: Operator,
  prepared: PreparedRelease,
  changes: Partial<PreparedRelease['document']>,
  roots = [] as Operator['root'][],
): SignedRelease {
  prepared = { ...prepared, document: { ...prepared.document, ...changes } };
  const signing = { operator: op.key, certificate: op.certificate, roots };
  const { envelope, id } = signManifest(prepared.document, signing);
  return {
    ...prepared,
    envelope,
    id,
    timestamp: (validMs = 600_000, now = Date.now(), version = now) => signTimestamp({ id, document: prepared.document }, signing, validMs, now, version),
  };
}

/** The real chunk server on its own operator connection; `served` counts per device. */
/**
 * `gate` runs before each executable chunk is published, with the executable bytes published so far: the
 * tests drop the connection or kill the device there, at an exact point of the download.
 */
export async function serveRelease(
  url: string,
  exePath: string,
  release: SignedRelease,
  gate?: (servedSoFar: number, phase: 'before' | 'after') => Promise<void> | void,
): Promise<{ server: ChunkServer; client: MqttClient; close(): Promise<void> }> {
  let served = 0;
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 100,
    clientId: `server-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
  });
  const server = new ChunkServer({
    exePath,
    list: release.list,
    chunks: release.chunks,
    manifestId: release.id,
    prefix: PREFIX,
    publish: async (topic, payload, correlationData) => {
      const exe = payload[4] === 1;
      if (exe) await gate?.(served, 'before');
      await client.publishAsync(topic, payload, { qos: 1, ...(correlationData ? { properties: { correlationData } } : {}) });
      if (exe) {
        served += payload.length - FRAME_HEADER_BYTES;
        await gate?.(served, 'after');
      }
    },
  });
  client.on('message', (topic, payload, packet) => server.handle(topic, payload, packet.properties?.responseTopic, packet.properties?.correlationData));
  client.on('connect', () => void client.subscribeAsync(server.filter, { qos: 1 }).catch(() => {}));
  await client.subscribeAsync(server.filter, { qos: 1 });
  return {
    server,
    client,
    close: async () => {
      await client.endAsync(true);
      server.close();
    },
  };
}

export const servedBytes = (server: ChunkServer, device: string): number => server.served.get(device)?.bytes ?? 0;

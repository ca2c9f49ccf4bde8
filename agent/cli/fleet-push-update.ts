/**
 * `edge-agent fleet push-update`: signs a manifest and a timestamp for a built executable, publishes them
 * retained to a device or group, and stays connected serving the chunks the devices ask for (only what they
 * lack: the rest they copy from the executable they run), with progress; `--wait` follows each device until
 * the new version committed or was rolled back (docs/update.md, "push-update").
 */
import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import { allStatuses, allUpdateReports, allUpdateRequests, fleetTopics } from '../remote/topics.ts';
import { keyIdOf, loadPrivateKeyFile } from '../trust/index.ts';
import { elfArch } from '../update/manifest.ts';
import { prepareRelease, signManifest, signTimestamp, type UpdateTarget } from '../update/manifest-sign.ts';
import { ChunkServer } from '../update/transfer-server.ts';
import type { DefineCommand, Exit } from './command.ts';
import { expiryOf, positiveInteger, readSignedFile } from './fleet-files.ts';
import { brokerOptions, connectOperator, type OperatorBrokerOptions, parseJson, retained } from './fleet-mqtt.ts';

export const fleetPushUpdate: DefineCommand = (parent: Command, exit: Exit) => {
  brokerOptions(
    parent
      .command('push-update')
      .summary('publish a new executable to a device or group over MQTT and serve its chunks (signed manifest and timestamp)')
      .description(
        'Signs a manifest (version, release counter, arch, size, SHA-256, content-defined chunk list) and a short-lived timestamp with an operator key, publishes both retained on `<prefix>/<device>/update` (or `<prefix>/group/<g>/update`), and answers the chunk requests of the devices until each has its copy. With --wait, follows each device until the new version is committed or rolled back.',
      )
      .usage('--broker URL --operator-key KEYFILE --operator-cert CERT --version V --release N --to device:ID|group:G EXECUTABLE [--wait]')
      .argument('<EXECUTABLE>', 'the built executable (dist/edge-agent-linux-<arch>)'),
  )
    .requiredOption('--operator-key <KEYFILE>', "the operator's private key (signs the manifest and the timestamps)")
    .requiredOption('--operator-cert <CERT>', "the operator's certificate (fleet operator certify)")
    .requiredOption('--version <V>', 'the version this executable is (its release directory name on the device)')
    .requiredOption('--release <N>', 'release counter: above the highest the devices installed')
    .requiredOption('--to <TARGET>', 'device:ID (or ID) or group:NAME')
    .option('--arch <ARCH>', "the executable's architecture (default: read from its ELF header)")
    .option('--expires <TIME>', 'how long the manifest may be installed from', '7d')
    .option('--timestamp-expires <TIME>', 'lifetime of each timestamp (renewed while this command runs)', '1h')
    .option('--force', 'install outside the maintenance window and while alarms drain')
    .option('--wait', 'follow each device until the new version committed or was rolled back')
    .option('--timeout <SECONDS>', 'give up on devices that have not finished after this long', '900')
    .action(async (file: string, options: PushUpdateOptions) => exit(await pushUpdateCommand(file, options)));
};

export interface PushUpdateOptions extends OperatorBrokerOptions {
  operatorKey: string;
  operatorCert: string;
  version: string;
  release: string;
  to: string;
  arch?: string;
  expires: string;
  timestampExpires: string;
  force?: boolean;
  wait?: boolean;
  timeout: string;
}

function parseTarget(text: string): UpdateTarget {
  const match = /^(?:(device|group):)?([A-Za-z0-9][A-Za-z0-9._-]{0,63})$/.exec(text);
  if (!match) throw new AgentError('USAGE', `--to must be device:ID, ID or group:NAME, not ${JSON.stringify(text)}`);
  return match[1] === 'group' ? { group: match[2]! } : { device: match[2]! };
}

interface DeviceState {
  outcome: string;
  reason?: string | undefined;
  message?: string | undefined;
  done: boolean;
}

const FINAL_DELIVERY = new Set(['installing', 'refused', 'failed']);

export async function pushUpdateCommand(file: string, options: PushUpdateOptions): Promise<number> {
  const now = new Date();
  const key = loadPrivateKeyFile(options.operatorKey, 'operator');
  const { envelope: certificate, document: cert } = readSignedFile(options.operatorCert, 'operator-cert');
  if (cert.key !== key.public) throw new AgentError('USAGE', `${options.operatorCert} certifies key id ${keyIdOf(cert.key)}, not ${options.operatorKey}`);
  const arch = options.arch ?? elfArch(file);
  if (!arch) throw new AgentError('USAGE', `${file} is not an ELF executable (give --arch to push it anyway)`);
  const target = parseTarget(options.to);
  const validMs = expiryOf(options.expires, now).getTime() - now.getTime();
  const timestampMs = expiryOf(options.timestampExpires, now, '--timestamp-expires').getTime() - now.getTime();
  const release = await prepareRelease({
    path: file,
    version: options.version,
    release: positiveInteger(options.release, '--release'),
    arch,
    target,
    validMs,
    force: options.force === true,
  });
  const signing = { operator: key, certificate };
  const manifest = signManifest(release.document, signing);
  const topics =
    'device' in target
      ? { manifest: fleetTopics(options.prefix, target.device).update, timestamp: fleetTopics(options.prefix, target.device).updateTimestamp }
      : {
          manifest: fleetTopics(options.prefix, '_').groupUpdate(target.group),
          timestamp: fleetTopics(options.prefix, '_').groupUpdateTimestamp(target.group),
        };
  const client = await connectOperator(options);
  const server = new ChunkServer({
    exePath: file,
    list: release.list,
    chunks: release.chunks,
    manifestId: manifest.id,
    prefix: options.prefix,
    publish: async (topic, payload, correlationData) => {
      await client.publishAsync(topic, payload, {
        qos: 1,
        ...(correlationData && Number(options.mqttVersion) === 5 ? { properties: { correlationData } } : {}),
      });
    },
  });
  const started = Date.now();
  let renew: NodeJS.Timeout | undefined;
  try {
    const devices = 'device' in target ? [target.device] : await groupDevices(client, options.prefix, target.group);
    const states = new Map<string, DeviceState>(devices.map((d) => [d, { outcome: 'pending', done: false }]));
    client.on('message', (topic, payload, packet) => {
      if (topic.endsWith('/update/req')) return server.handle(topic, payload, packet.properties?.responseTopic, packet.properties?.correlationData);
      // <p>/<device>/update/report or <p>/<device>/status
      const device = topic.split('/').at(topic.endsWith('/status') ? -2 : -3)!;
      const state = states.get(device);
      if (!state || state.done) return;
      const r = parseJson(payload);
      if (!r) return;
      if (topic.endsWith('/update/report') && r.manifest === manifest.id.slice(0, 16)) {
        state.outcome = String(r.outcome);
        state.reason = typeof r.reason === 'string' ? r.reason : undefined;
        state.message = typeof r.message === 'string' ? r.message : undefined;
        if (FINAL_DELIVERY.has(state.outcome) && (!options.wait || state.outcome !== 'installing')) state.done = true;
      } else if (topic.endsWith('/status') && options.wait && state.outcome === 'installing') {
        const result = (r.update as { last_result?: { version?: string; outcome?: string; reason?: string } } | undefined)?.last_result;
        if (result?.version === options.version && (result.outcome === 'committed' || result.outcome === 'failed')) {
          state.outcome = result.outcome === 'committed' ? 'committed' : 'rolled_back';
          state.reason = result.reason;
          state.message = undefined;
          state.done = true;
        }
      }
    });
    await client.subscribeAsync([allUpdateRequests(options.prefix), allUpdateReports(options.prefix), allStatuses(options.prefix)], { qos: 1 });
    const publishTimestamp = () =>
      client.publishAsync(topics.timestamp, JSON.stringify(signTimestamp({ id: manifest.id, document: release.document }, signing, timestampMs)), {
        qos: 1,
        retain: true,
      });
    await publishTimestamp();
    renew = setInterval(() => void publishTimestamp(), Math.max(1_000, timestampMs / 2));
    await client.publishAsync(topics.manifest, JSON.stringify(manifest.envelope), { qos: 1, retain: true });
    process.stderr.write(
      `pushed ${options.version} (release ${release.document.release}, ${arch}, ${release.document.size} bytes in ${release.chunks.length} chunks) to ${topics.manifest}; serving chunks to ${devices.length} device(s)\n`,
    );
    const deadline = started + Number(options.timeout) * 1000;
    let lastLine = '';
    while ([...states.values()].some((s) => !s.done) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const line = [...states].map(([d, s]) => `${d}: ${s.outcome} ${formatBytes(server.served.get(d)?.bytes ?? 0)}`).join(', ');
      if (line !== lastLine) process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${line}\n`);
      lastLine = line;
    }
    await server.idle();
    const ok = options.wait ? 'committed' : 'installing';
    const out = [...states].map(([d, s]) => {
      const served = server.served.get(d);
      const outcome = s.done ? s.outcome : `no answer (last: ${s.outcome})`;
      return `${d}: ${outcome}${s.reason ? ` ${s.reason}` : ''}${s.message ? `: ${s.message}` : ''}; served ${served?.bytes ?? 0} bytes of ${release.document.size} in ${served?.chunks ?? 0} chunks (+${served?.listBytes ?? 0} bytes of chunk list)`;
    });
    process.stdout.write(`${out.join('\n')}\n`);
    return [...states.values()].every((s) => s.done && s.outcome === ok) ? 0 : 1;
  } finally {
    clearInterval(renew);
    server.close();
    await client.endAsync();
  }
}

async function groupDevices(client: Parameters<typeof retained>[0], prefix: string, group: string): Promise<string[]> {
  const devices: string[] = [];
  for (const payload of (await retained(client, allStatuses(prefix))).values()) {
    const s = parseJson(payload);
    if (s && typeof s.device === 'string' && Array.isArray(s.groups) && s.groups.includes(group)) devices.push(s.device);
  }
  return devices.sort();
}

const formatBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

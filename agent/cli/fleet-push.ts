import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import { allReports, allStatuses, fleetTopics } from '../remote/topics.ts';
import type { Exit } from './command.ts';
import { brokerOptions, connectOperator, type OperatorBrokerOptions, parseJson, retained } from './fleet-mqtt.ts';

/** `edge-agent fleet push`: publish a signed config envelope retained, and with --wait watch it apply. */
export function defineFleetPush(group: Command, exit: Exit): void {
  brokerOptions(
    group
      .command('push')
      .summary('publish a signed configuration to a device or a group (and watch it apply)')
      .description(
        'Publishes FILE (a config envelope made by `edge-agent fleet sign`) retained on `<prefix>/<device>/config` or `<prefix>/group/<group>/config`. With --wait, follows each targeted device\u2019s report until it committed, rolled back or refused, and prints a summary.',
      )
      .usage('--broker URL --target device:ID|group:G FILE [--wait]')
      .argument('<FILE>', 'the signed config envelope (JSON)'),
  )
    .requiredOption('--target <TARGET>', 'device:ID or group:NAME (must be what the document names)')
    .option('--wait', "wait for every targeted device's report")
    .option('--timeout <SECONDS>', 'with --wait: give up on devices that did not answer after this long', '120')
    .action(async (file: string, options: PushOptions) => exit(await fleetPushCommand(file, options)));
}

export interface PushOptions extends OperatorBrokerOptions {
  target: string;
  wait?: boolean;
  timeout: string;
}

type Target = { device: string } | { group: string };

function parseTarget(text: string): Target {
  const match = /^(device|group):([A-Za-z0-9._-]+)$/.exec(text);
  if (!match) throw new AgentError('USAGE', `--target must be device:ID or group:NAME, not ${JSON.stringify(text)}`);
  return match[1] === 'device' ? { device: match[2]! } : { group: match[2]! };
}

/** The document inside an envelope, read (not verified: the devices verify) to find its target and version. */
function readEnvelope(file: string): { text: string; document: Record<string, unknown> } {
  let envelope: { payloadType?: unknown; payload?: unknown };
  const text = readFileSync(file, 'utf8');
  try {
    envelope = JSON.parse(text) as typeof envelope;
    const document = JSON.parse(Buffer.from(String(envelope.payload), 'base64').toString('utf8')) as Record<string, unknown>;
    if (envelope.payloadType !== 'application/vnd.edge-agent.config+json' || document.kind !== 'config') throw new Error('not a config envelope');
    return { text: JSON.stringify(envelope), document };
  } catch (cause) {
    throw new AgentError('USAGE', `${file} is not a signed config envelope (make one with edge-agent fleet sign)`, { cause });
  }
}

export interface PushOutcome {
  device: string;
  outcome: 'committed' | 'unchanged' | 'rolled_back' | 'refused' | 'no answer';
  reason?: string | undefined;
  message?: string | undefined;
  seconds?: number | undefined;
  /** The device's effective config version after this outcome (what it runs now). */
  effective?: string | undefined;
}

export async function fleetPushCommand(file: string, options: PushOptions): Promise<number> {
  const target = parseTarget(options.target);
  const { text, document } = readEnvelope(file);
  if (JSON.stringify(document.target) !== JSON.stringify(target)) {
    throw new AgentError('USAGE', `--target ${options.target} but the document targets ${JSON.stringify(document.target)}`);
  }
  const version = document.version as number;
  const topic = 'device' in target ? fleetTopics(options.prefix, target.device).config : fleetTopics(options.prefix, '_').group(target.group);
  const layer = 'device' in target ? 'device' : `group:${target.group}`;
  const client = await connectOperator(options);
  try {
    let devices: string[] = [];
    if (options.wait) {
      if ('device' in target) devices = [target.device];
      else {
        for (const payload of (await retained(client, allStatuses(options.prefix))).values()) {
          const s = parseJson(payload);
          if (s && typeof s.device === 'string' && Array.isArray(s.groups) && s.groups.includes(target.group)) devices.push(s.device);
        }
      }
      devices.sort();
    }
    const reports = new Map<string, PushOutcome>();
    const pushedAt = Date.now();
    const waiting = new Set(devices);
    client.on('message', (reportTopic, payload) => {
      const device = reportTopic.split('/').at(-3)!;
      const r = parseJson(payload);
      if (!waiting.has(device) || !r || r.layer !== layer) return;
      const at = Date.parse(String(r.at));
      // A report for this version, or a refusal since the push that could not read the version.
      if (r.version !== version && !(r.version === undefined && r.outcome === 'refused' && at >= pushedAt - 1_000)) return;
      waiting.delete(device);
      const outcome: PushOutcome = {
        device,
        outcome: r.outcome as PushOutcome['outcome'],
        reason: typeof r.reason === 'string' ? r.reason : undefined,
        message: typeof r.message === 'string' ? r.message : undefined,
        seconds: (Date.now() - pushedAt) / 1000,
        effective: typeof r.effective === 'string' ? r.effective : undefined,
      };
      reports.set(device, outcome);
      process.stderr.write(
        `[${reports.size}/${devices.length}] ${device}: ${outcome.outcome}${outcome.reason ? ` (${outcome.reason})` : ''} after ${outcome.seconds!.toFixed(1)} s\n`,
      );
    });
    if (options.wait) await client.subscribeAsync(allReports(options.prefix), { qos: 1 });
    await client.publishAsync(topic, text, { qos: 1, retain: true });
    process.stderr.write(`pushed config version ${version} to ${topic}${options.wait ? `; waiting for ${devices.length} device(s)` : ''}\n`);
    if (!options.wait) return 0;
    const deadline = pushedAt + Number(options.timeout) * 1000;
    while (waiting.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const device of waiting) reports.set(device, { device, outcome: 'no answer' });
    const all = devices.map((d) => reports.get(d)!);
    printSummary(all, version);
    return all.every((r) => r.outcome === 'committed' || r.outcome === 'unchanged') ? 0 : 1;
  } finally {
    await client.endAsync();
  }
}

function printSummary(all: PushOutcome[], version: number): void {
  const by = (o: PushOutcome['outcome']) => all.filter((r) => r.outcome === o);
  const ok = [...by('committed'), ...by('unchanged')];
  const times = ok.map((r) => r.seconds!).sort((a, b) => a - b);
  const out = [
    `config version ${version}: ${all.length} device(s): ${by('committed').length} committed, ${by('unchanged').length} unchanged, ${by('rolled_back').length} rolled back, ${by('refused').length} refused, ${by('no answer').length} no answer`,
  ];
  if (times.length > 0) out.push(`time to commit: p50 ${times[Math.floor((times.length - 1) / 2)]!.toFixed(1)} s, max ${times.at(-1)!.toFixed(1)} s`);
  for (const r of all.filter((r) => r.outcome !== 'committed' && r.outcome !== 'unchanged')) {
    out.push(
      `  ${r.device}: ${r.outcome}${r.reason ? ` ${r.reason}` : ''}${r.message ? `: ${r.message}` : ''}${r.effective ? ` (running ${r.effective})` : ''}`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

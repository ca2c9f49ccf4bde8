import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import { fleetTopics } from '../remote/topics.ts';
import type { Exit } from './command.ts';
import { brokerOptions, connectOperator, type OperatorBrokerOptions, parseJson } from './fleet-mqtt.ts';

/** `edge-agent fleet command`: send one request to a device and print its responses. */
export function defineFleetCommand(group: Command, exit: Exit): void {
  brokerOptions(
    group
      .command('command')
      .summary('send a command to a device and print the responses')
      .description(
        'Sends a signed command (an envelope made by `edge-agent fleet sign`) or an unsigned read-only action (ping, status, queue.stats, config.get) to one device, and prints each response as a JSON line until a terminal one (done, failed, refused, expired, interrupted).',
      )
      .usage('--broker URL --device ID (--signed FILE | --action NAME [--args JSON])'),
  )
    .requiredOption('--device <ID>', 'the device')
    .option('--signed <FILE>', 'a signed command envelope (JSON)')
    .option('--action <NAME>', 'an unsigned read-only action')
    .option('--args <JSON>', 'arguments of --action (a JSON object)')
    .option('--timeout <SECONDS>', 'give up waiting for a terminal response after this long', '30')
    .action(async (options: CommandOptions) => exit(await fleetCommandCommand(options)));
}

export interface CommandOptions extends OperatorBrokerOptions {
  device: string;
  signed?: string;
  action?: string;
  args?: string;
  timeout: string;
}

const TERMINAL = new Set(['done', 'failed', 'refused', 'expired', 'interrupted']);

function request(options: CommandOptions): { payload: string; id: string } {
  if ((options.signed === undefined) === (options.action === undefined)) throw new AgentError('USAGE', 'give exactly one of --signed FILE and --action NAME');
  if (options.signed !== undefined) {
    const text = readFileSync(options.signed, 'utf8');
    let nonce = '';
    try {
      const envelope = JSON.parse(text) as { payload?: string };
      nonce = String((JSON.parse(Buffer.from(String(envelope.payload), 'base64').toString('utf8')) as { nonce?: unknown }).nonce ?? '');
    } catch (cause) {
      throw new AgentError('USAGE', `${options.signed} is not a signed command envelope`, { cause });
    }
    return { payload: text.trim(), id: nonce };
  }
  let args: unknown;
  if (options.args !== undefined) {
    try {
      args = JSON.parse(options.args);
    } catch (cause) {
      throw new AgentError('USAGE', '--args must be a JSON object', { cause });
    }
  }
  const id = randomBytes(8).toString('hex');
  return { payload: JSON.stringify({ action: options.action, id, ...(args === undefined ? {} : { args }) }), id };
}

export async function fleetCommandCommand(options: CommandOptions): Promise<number> {
  const { payload, id } = request(options);
  const topics = fleetTopics(options.prefix, options.device);
  const client = await connectOperator(options);
  const v5 = Number(options.mqttVersion) === 5;
  // MQTT 5: our own response topic and correlation data; 3.1.1: the device's fixed response topic, matched by id.
  const responseTopic = v5 ? `${options.prefix}/_operator/${randomBytes(6).toString('hex')}/res` : topics.commandResponse;
  const correlation = randomBytes(8);
  let last: Record<string, unknown> | undefined;
  try {
    client.on('message', (topic, body, packet) => {
      const r = parseJson(body);
      if (!r) return;
      // A device on MQTT 3.1.1 never sees our response topic and answers on its fixed one, with the id.
      const mine = topic === topics.commandResponse ? r.id === id : Buffer.compare(Buffer.from(packet.properties?.correlationData ?? []), correlation) === 0;
      if (!mine) return;
      process.stdout.write(`${JSON.stringify(r)}\n`);
      last = r;
    });
    await client.subscribeAsync([...new Set([responseTopic, topics.commandResponse])], { qos: 1 });
    await client.publishAsync(topics.command, payload, { qos: 1, ...(v5 ? { properties: { responseTopic, correlationData: correlation } } : {}) });
    const deadline = Date.now() + Number(options.timeout) * 1000;
    while (!(last && TERMINAL.has(String(last.state))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!last || !TERMINAL.has(String(last.state))) {
      process.stderr.write(`no terminal response from ${options.device} within ${options.timeout} s\n`);
      return 1;
    }
    return last.state === 'done' ? 0 : 1;
  } finally {
    await client.endAsync();
  }
}

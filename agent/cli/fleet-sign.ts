/**
 * `edge-agent fleet sign`: a config or command document signed by an operator key, its certificate attached
 * (docs/remote.md, "Operator keys"). The envelope goes to stdout or --out, ready to publish or push.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDocument } from 'yaml';
import { AgentError } from '../errors.ts';
import {
  type CommandDocument,
  type ConfigDocument,
  DEFAULT_MAX_ENVELOPE_BYTES,
  keyIdOf,
  loadPrivateKeyFile,
  MAX_COMMAND_LIFETIME_MS,
  rfc3339,
  signEnvelope,
} from '../trust/index.ts';
import type { DefineCommand, Exit } from './command.ts';
import { expiryOf, positiveInteger, readSignedFile, writeJson } from './fleet-files.ts';

const KINDS = ['config', 'command'] as const;

export const fleetSign: DefineCommand = (parent: Command, exit: Exit) => {
  parent
    .command('sign')
    .summary('sign a config (YAML) or a command with an operator key')
    .description(
      "config: --target device:ID|group:NAME --version N [--expires 7d] FILE.yaml (a partial config, merged over the device's local file).\ncommand: --target device:ID --action ACTION [--args JSON] [--expires 5m] (at most 1h).",
    )
    .usage('--key KEYFILE --cert CERT --kind config|command --target TARGET [options] [FILE.yaml]')
    .argument('[FILE]', 'the config to sign (YAML), for --kind config')
    .requiredOption('--key <KEYFILE>', "the operator's private key")
    .requiredOption('--cert <CERT>', "the operator's certificate (fleet operator certify)")
    .requiredOption('--kind <KIND>', 'config or command')
    .requiredOption('--target <TARGET>', 'device:ID, or group:NAME for a config')
    .option('--version <N>', "the config's version: above the one the target has")
    .option('--action <ACTION>', "the command's action (flush, restart, log.level, …)")
    .option('--args <JSON>', "the command's arguments, a JSON object", '{}')
    .option('--expires <TIME>', 'how long the document is valid (default 7d for a config, 5m for a command)')
    .option('--out <FILE>', 'write the envelope here instead of stdout')
    .action((file: string | undefined, options: SignOptions) => exit(signCommand(file, options)));
};

export interface SignOptions {
  key: string;
  cert: string;
  kind: string;
  target: string;
  version?: string;
  action?: string;
  args: string;
  expires?: string;
  out?: string;
}

export function signCommand(file: string | undefined, options: SignOptions, now = new Date()): number {
  const kind = options.kind;
  if (!(KINDS as readonly string[]).includes(kind)) throw new AgentError('USAGE', `--kind ${JSON.stringify(kind)}: expected config or command`);
  const key = loadPrivateKeyFile(options.key, 'operator');
  const { envelope: certificate, document: cert } = readSignedFile(options.cert, 'operator-cert');
  if (cert.key !== key.public)
    throw new AgentError('USAGE', `${options.cert} certifies key id ${keyIdOf(cert.key)}, not ${options.key} (key id ${keyIdOf(key.public)})`);
  if (Date.parse(cert.expires) <= now.getTime())
    throw new AgentError('USAGE', `${options.cert} expired at ${cert.expires}; devices would refuse with expired_key (certify the key again)`);
  const target = parseTarget(options.target, kind === 'command');
  const issued = rfc3339(now);
  let document: ConfigDocument | CommandDocument;
  if (kind === 'config') {
    if (file === undefined) throw new AgentError('USAGE', 'a config needs the YAML file to sign; usage: edge-agent fleet sign … --kind config FILE.yaml');
    if (options.version === undefined) throw new AgentError('USAGE', '--version N is needed for a config (above the version the target has)');
    const version = positiveInteger(options.version, '--version');
    const expires = expiryOf(options.expires ?? '7d', now);
    document = { kind: 'config', target, version, issued, expires: rfc3339(expires), config: readConfig(file) };
  } else {
    if (file !== undefined) throw new AgentError('USAGE', `a command takes no file (${file}); give --action and --args`);
    if (options.action === undefined) throw new AgentError('USAGE', '--action ACTION is needed for a command');
    const expires = expiryOf(options.expires ?? '5m', now);
    if (expires.getTime() - now.getTime() > MAX_COMMAND_LIFETIME_MS) throw new AgentError('USAGE', `--expires ${options.expires}: a command lives at most 1h`);
    document = {
      kind: 'command',
      target: target as { device: string },
      action: options.action,
      args: parseArgs(options.args),
      nonce: randomBytes(16).toString('hex'),
      issued,
      expires: rfc3339(expires),
    };
  }
  const envelope = signEnvelope(kind as 'config' | 'command', document, [key], certificate);
  const size = Buffer.byteLength(JSON.stringify(envelope));
  if (size > DEFAULT_MAX_ENVELOPE_BYTES)
    throw new AgentError(
      'USAGE',
      `the signed ${kind} is ${size} bytes, over the ${DEFAULT_MAX_ENVELOPE_BYTES} bytes devices take by default (fleet.max_message_bytes)`,
    );
  writeJson(envelope, options.out);
  if (options.out !== undefined)
    process.stderr.write(`${options.out}: ${kind} for ${options.target} signed by ${JSON.stringify(cert.name)}, expires ${document.expires}\n`);
  return 0;
}

function parseTarget(text: string, deviceOnly: boolean): { device: string } | { group: string } {
  const match = /^(device|group):(.+)$/.exec(text);
  if (!match || (deviceOnly && match[1] !== 'device'))
    throw new AgentError('USAGE', `--target ${JSON.stringify(text)}: expected device:ID${deviceOnly ? ' (a command goes to one device)' : ' or group:NAME'}`);
  return match[1] === 'device' ? { device: match[2]! } : { group: match[2]! };
}

function parseArgs(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new AgentError('USAGE', `--args is not JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new AgentError('USAGE', '--args must be a JSON object, such as {"level":"debug"}');
  return value as Record<string, unknown>;
}

/** The YAML file as a mapping; settings a device refuses from afar are refused here already. */
function readConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    if (statSync(file).size > DEFAULT_MAX_ENVELOPE_BYTES) throw new AgentError('USAGE', `${file} is larger than a signed config may be`);
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if (cause instanceof AgentError) throw cause;
    throw new AgentError('USAGE', `cannot read ${file}`, { cause });
  }
  const parsed = parseDocument(text, { prettyErrors: false });
  const error = parsed.errors[0];
  if (error) {
    const at = error.linePos?.[0];
    throw new AgentError('USAGE', `${file}${at ? `:${at.line}:${at.col}` : ''}: ${error.message.split('\n')[0]}`);
  }
  const value: unknown = parsed.toJS({ maxAliasCount: 100 });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AgentError('USAGE', `${file} is not a YAML mapping of settings`);
  const config = value as Record<string, Record<string, unknown> | undefined>;
  if (config.device && 'id' in config.device)
    throw new AgentError('USAGE', `${file}: device.id cannot be set from afar (devices refuse it: forbidden_setting)`);
  if (config.fleet && 'trust' in config.fleet)
    throw new AgentError('USAGE', `${file}: fleet.trust cannot be set from afar (devices refuse it: forbidden_setting)`);
  return value as Record<string, unknown>;
}

import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import { drivers, loadConfigFile } from '../app.ts';
import { preflightSink } from '../hosting/driver-setup.ts';
import { urlPasswordWarnings } from '../config/url-secrets.ts';
import type { DefineCommand } from './command.ts';

export const checkConfig: DefineCommand = (parent: Command, exit) => {
  parent
    .command('check-config')
    .summary('validate a config file and exit')
    .description(
      "Validate a config file: the schema (errors give file:line:column and the setting's path), then each sink's own checks. Prints a one-line summary.",
    )
    .usage('FILE')
    .argument('<FILE>', 'config file (YAML)')
    .action(async (file: string) => exit(await checkConfigCommand(file)));
};

/** Validates a config (schema, then each sink driver's preflight) and prints a one-line summary. */
export async function checkConfigCommand(file: string): Promise<number> {
  const { config } = loadConfigFile(file);
  for (const [where, sink] of [
    ['sink', config.sink],
    ['receiver.input', config.receiver?.input],
  ] as const) {
    if (!sink) continue;
    try {
      await preflightSink(drivers, sink, where);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new AgentError('CONFIG_INVALID', `invalid configuration in ${file}:\n  ${file} ${message}`, { cause: err });
    }
  }
  for (const warning of urlPasswordWarnings(config)) process.stderr.write(`${file}: warning: ${warning}\n`);
  const sources = config.sources.map((s) => `${s.name} (${s.type})`).join(', ') || 'none';
  process.stdout.write(`${file}: ok — device ${config.device?.id ?? '(none)'}, sources: ${sources}, sink: ${config.sink?.type ?? 'none'}\n`);
  return 0;
}

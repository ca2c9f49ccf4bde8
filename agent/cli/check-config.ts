import { AgentError } from '../errors.ts';
import { drivers, loadConfigFile } from '../app.ts';
import { preflightSink } from '../hosting/driver-setup.ts';
import { parseArgs } from 'node:util';
import { usage } from './usage.ts';

/** Validates a config (schema, then each sink driver's preflight) and prints a one-line summary. */
export async function checkConfigCommand(args: string[]): Promise<number> {
  const { positionals } = usage(() => parseArgs({ args, options: {}, allowPositionals: true }));
  if (positionals.length > 1) throw new AgentError('USAGE', `check-config takes one FILE, got ${positionals.length}`);
  const file = positionals[0];
  if (!file) throw new AgentError('USAGE', 'check-config needs a FILE');
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
  const sources = config.sources.map((s) => `${s.name} (${s.type})`).join(', ') || 'none';
  process.stdout.write(`${file}: ok — device ${config.device?.id ?? '(none)'}, sources: ${sources}, sink: ${config.sink?.type ?? 'none'}\n`);
  return 0;
}

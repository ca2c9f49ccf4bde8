import { EMBEDDED_DEFAULTS } from '../config/defaults.ts';
import { loadConfigFile, parseConfig } from '../app.ts';
import { requireRunnable } from '../config/load.ts';
import { createLogger } from '../log.ts';
import { startAgent } from '../runtime/agent.ts';
import { parseArgs } from 'node:util';
import { usage } from './usage.ts';
import { untilSignal } from './signals.ts';

export async function runCommand(args: string[]): Promise<number> {
  const { values } = usage(() => parseArgs({ args, options: { config: { type: 'string', short: 'c' } } }));
  const loaded = values.config ? loadConfigFile(values.config) : parseConfig(EMBEDDED_DEFAULTS, '(embedded defaults)', process.cwd());
  requireRunnable(loaded);
  const log = createLogger(loaded.config.log.level);
  if (!values.config) log.info('no --config given: running the embedded demo defaults (system source → queue → embedded broker → receiver on stdout)');
  const agent = await startAgent(loaded, log);
  const statusTimer = setInterval(() => log.info({ status: agent.status() }, 'status'), 60_000).unref();
  const signal = await untilSignal();
  log.info({ signal }, 'stopping');
  clearInterval(statusTimer);
  await agent.stop();
  log.info({ status: agent.status() }, 'stopped');
  return 0;
}

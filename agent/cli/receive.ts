import { AgentError } from '../errors.ts';
import { loadConfigFile } from '../app.ts';
import { sodium } from '../envelope/sodium.ts';
import { createLogger } from '../log.ts';
import { startReceiver } from '../receiver/start.ts';
import { parseArgs } from 'node:util';
import { usage } from './usage.ts';
import { untilSignal } from './signals.ts';

export async function receiveCommand(args: string[]): Promise<number> {
  const { values } = usage(() => parseArgs({ args, options: { config: { type: 'string', short: 'c' } } }));
  if (!values.config) throw new AgentError('USAGE', 'receive needs --config FILE');
  const loaded = loadConfigFile(values.config);
  const log = createLogger(loaded.config.log.level);
  const running = await startReceiver(await sodium(), loaded, log);
  log.info('receiver running');
  const statusTimer = setInterval(() => log.info({ stats: running.receiver.stats() }, 'status'), 60_000).unref();
  await untilSignal();
  clearInterval(statusTimer);
  await running.close();
  log.info({ stats: running.receiver.stats() }, 'stopped');
  return 0;
}

import type { Command } from 'commander';
import { EMBEDDED_DEFAULTS } from '../config/defaults.ts';
import { loadConfigFile, parseConfig } from '../app.ts';
import { requireRunnable } from '../config/load.ts';
import { startupKeyCheck } from '../checks/index.ts';
import { createLogger, type LogFormat } from '../log.ts';
import { startAgent } from '../runtime/agent.ts';
import { startFleet } from '../remote/remote-control.ts';
import { type DefineCommand, logFormatOption } from './command.ts';
import { untilSignal } from './signals.ts';

export const run: DefineCommand = (parent: Command, exit) => {
  parent
    .command('run')
    .summary('run the agent (no FILE: the embedded demo defaults)')
    .description('Run the agent: sources → durable queue → encrypted batches → sink, until SIGINT or SIGTERM.')
    .usage('[--config FILE] [--log-format FORMAT]')
    .option('-c, --config <FILE>', 'config file (YAML); without it, the embedded demo defaults')
    .addOption(logFormatOption())
    .action(async (options: RunOptions) => exit(await runCommand(options)));
};

export interface RunOptions {
  config?: string;
  logFormat?: LogFormat;
}

export async function runCommand(values: RunOptions): Promise<number> {
  const loaded = values.config ? loadConfigFile(values.config) : parseConfig(EMBEDDED_DEFAULTS, '(embedded defaults)', process.cwd());
  requireRunnable(loaded);
  // Key files are configuration: a missing or open one is exit 2 naming the setting, before anything starts.
  await startupKeyCheck(loaded, 'run');
  const log = createLogger(loaded.config.log.level, { format: values.logFormat ?? loaded.config.log.format });
  if (!values.config) log.info('no --config given: running the embedded demo defaults (system source → queue → embedded broker → receiver on stdout)');
  // Listening before the start: a SIGTERM that comes while sources start must still stop the agent cleanly.
  const stopRequested = untilSignal(log);
  // A `restart` command ends one turn of this loop: everything stops cleanly and starts again in process.
  for (;;) {
    const agent = await startAgent(loaded, log);
    let restartRequested!: () => void;
    const restart = new Promise<'restart'>((resolve) => (restartRequested = () => resolve('restart')));
    const remote = loaded.config.fleet.enabled
      ? await startFleet(loaded, agent, { restart: () => restartRequested(), setLogLevel: (level) => (log.level = level) }, log)
      : undefined;
    const statusTimer = setInterval(() => log.info({ status: agent.status() }, 'status'), 60_000).unref();
    const signal = await Promise.race([stopRequested, restart]);
    clearInterval(statusTimer);
    log.info({ signal }, signal === 'restart' ? 'restarting on request' : 'stopping');
    // Remote control first: no command may reach an agent that is stopping.
    await remote?.stop(signal === 'restart' ? 'restart command' : `signal ${signal}`);
    await agent.stop();
    if (signal === 'restart') continue;
    log.info({ status: agent.status() }, 'stopped');
    return 0;
  }
}

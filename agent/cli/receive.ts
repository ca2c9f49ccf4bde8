import type { Command } from 'commander';
import { loadConfigFile } from '../app.ts';
import { startupChecks } from '../checks/index.ts';
import { x25519 } from '../keys/x25519.ts';
import { createLogger, type LogFormat, logProcessWarnings } from '../log.ts';
import { checkHeapFits, limitsOf } from '../receiver/heap.ts';
import type { startReceiver } from '../receiver/start.ts';
import { type DefineCommand, logFormatOption } from './command.ts';
import { applyRunningFlags } from '../util/running-flags.ts';
import { untilSignal } from './signals.ts';

export const receive: DefineCommand = (parent: Command, exit) => {
  parent
    .command('receive')
    .summary('run the centre-side receiver')
    .description(
      'Run the centre-side receiver: verify, decrypt, decode and deduplicate batches, and write each record as a JSON line to stdout or receiver.output.',
    )
    .usage('--config FILE [--log-format FORMAT]')
    .requiredOption('-c, --config <FILE>', 'config file (YAML) with a receiver section')
    .addOption(logFormatOption())
    .action(async (options: ReceiveOptions) => exit(await receiveCommand(options)));
};

export interface ReceiveOptions {
  config: string;
  logFormat?: LogFormat;
}

export async function receiveCommand(values: ReceiveOptions): Promise<number> {
  const loaded = loadConfigFile(values.config);
  await startupChecks(loaded, 'receive');
  // The heap must fit the largest batch the limits allow (`run` with receiver.enabled, a demo, is not checked).
  checkHeapFits(limitsOf(loaded.config.receiver), loaded.origin);
  const log = createLogger(loaded.config.log.level, { format: values.logFormat ?? loaded.config.log.format });
  logProcessWarnings(log);
  const stopRequested = untilSignal(log); // before the start, as in `run`
  // A stop requested while the output still waits for its database at start ends the wait.
  const stopping = new AbortController();
  void stopRequested.then(() => stopping.abort());
  let running: Awaited<ReturnType<typeof startReceiver>>;
  try {
    // The receiver's modules are loaded by the command that runs it, not at every start of the executable.
    const receiver = await import('../receiver/start.ts');
    running = await receiver.startReceiver(x25519, loaded, log, { signal: stopping.signal });
  } catch (err) {
    if (!stopping.signal.aborted) throw err;
    log.info('stopped before the receiver started');
    return 0;
  }
  log.info('receiver running');
  applyRunningFlags(); // after the start, as in `run` (agent/cli/heap-caps.ts, MEMORY_FLAGS)
  const statusTimer = setInterval(() => log.info({ stats: running.receiver.stats() }, 'status'), 60_000).unref();
  // An output that fails (the reader of stdout exited, the disk is full) stops the receiver: it has logged
  // why, and acknowledged nothing it did not write.
  const outcome = await Promise.race([stopRequested.then(() => 'signal' as const), running.failed.then(() => 'output failed' as const)]);
  clearInterval(statusTimer);
  await running.close();
  log.info({ stats: running.receiver.stats() }, outcome === 'signal' ? 'stopped' : 'stopped: the output failed');
  return outcome === 'signal' ? 0 : 1;
}

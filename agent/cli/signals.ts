import type { Logger } from '../log.ts';
import { releaseHangups } from './early-hangup.ts';

/**
 * Resolves at the first SIGINT or SIGTERM; a second one exits at once. SIGHUP (a service manager's "reload",
 * or a closed terminal) calls `onHangup` (the run command reloads its configuration file); without one it
 * is logged and ignored: by default it would kill the agent on the spot and leave its queue marked unclean.
 */
export function untilSignal(log?: Logger, onHangup?: () => void): Promise<NodeJS.Signals> {
  const hangup = onHangup ?? (() => log?.warn({ signal: 'SIGHUP' }, 'SIGHUP received and ignored (nothing to reload); stop with SIGTERM'));
  process.on('SIGHUP', hangup);
  // Ours now: the entry's holder (installed before anything was loaded) can go.
  const early = releaseHangups();
  if (early > 0) log?.warn({ signal: 'SIGHUP', count: early }, 'SIGHUP received while starting; ignored');
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

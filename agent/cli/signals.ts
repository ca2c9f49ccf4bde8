import type { Logger } from '../log.ts';

/**
 * Resolves at the first SIGINT or SIGTERM; a second one exits at once. SIGHUP (a closed terminal, a service
 * manager's "reload") is logged and ignored while this waits: by default it would kill the agent on the spot
 * and leave its queue marked unclean. Once configuration can be reloaded, SIGHUP will mean that.
 */
export function untilSignal(log?: Logger): Promise<NodeJS.Signals> {
  const onHangup = () => log?.warn({ signal: 'SIGHUP' }, 'SIGHUP received and ignored (configuration reload is not supported yet); stop with SIGTERM');
  process.on('SIGHUP', onHangup);
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

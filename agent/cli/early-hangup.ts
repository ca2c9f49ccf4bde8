/**
 * SIGHUP while a long-running command starts. Node's default for SIGHUP ends the process, and `run` installs
 * its own handler (reload) only once its config is read and checked, its logger made: a service manager's
 * reload or a closed terminal in that window would kill the agent mid-start. So the CLI entry holds SIGHUP
 * first thing (agent/cli/bin.ts, agent/cli/main.ts), counting what arrives, and untilSignal takes over.
 */
let held: { listener: () => void; count: number } | undefined;

/** Ignore SIGHUP (counted) until releaseHangups. Idempotent. */
export function holdHangups(): void {
  if (held) return;
  const state = { count: 0, listener: () => void state.count++ };
  held = state;
  process.on('SIGHUP', state.listener);
}

/** Hands SIGHUP over to the command's own handler (installed before this is called); returns how many were ignored. */
export function releaseHangups(): number {
  if (!held) return 0;
  process.off('SIGHUP', held.listener);
  const { count } = held;
  held = undefined;
  return count;
}

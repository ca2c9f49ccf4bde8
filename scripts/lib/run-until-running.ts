import { spawn } from 'node:child_process';

/** How a run that was stopped once it logged "agent running" ended. */
export interface StoppedRun {
  /** It logged "agent running" and was sent SIGINT. */
  readonly stopped: boolean;
  /** It did not log "agent running" within `timeoutMs` and was killed. */
  readonly timedOut: boolean;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** stdout and stderr as they came. */
  readonly output: string;
}

/**
 * Runs `argv` (an agent's `run`: the executable, or a runner in front of it) until it logs "agent running" on
 * either stream, then sends SIGINT and waits for its exit. The build's code cache (scripts/build/code-cache.ts)
 * and the tests of a start use it; each decides what its outcome must be.
 */
export function runUntilAgentRunning(
  argv: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number /** Another line to stop at. */; until?: string },
): Promise<StoppedRun> {
  const until = options.until ?? 'agent running';
  const [cmd, ...args] = argv;
  return new Promise((done, fail) => {
    const child = spawn(cmd!, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stopped = false;
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (!stopped && output.includes(until)) {
        stopped = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ stopped, timedOut, code, signal, output });
    });
  });
}

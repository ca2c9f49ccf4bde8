import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** The agent's CLI (`run`, `receive`…) as a child process, with its stderr collected for waits and messages. */
export function runCli(args: string[]) {
  const child = spawn(process.execPath, ['agent/cli/main.ts', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  /** Resolves when stderr matches; rejects when the process exits first or after `timeoutMs`. */
  const stderrMatches = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.stderr!.off('data', check);
        reject(new Error(`no ${pattern} on stderr within ${timeoutMs} ms: ${stderr.slice(-2000)}`));
      }, timeoutMs);
      const check = () => {
        if (pattern.test(stderr)) {
          clearTimeout(timer);
          child.stderr!.off('data', check);
          resolve();
        }
      };
      child.stderr!.on('data', check);
      void exited.then((code) => {
        clearTimeout(timer);
        if (!pattern.test(stderr)) reject(new Error(`exited (${code}) before ${pattern}: ${stderr.slice(-2000)}`));
      });
      check();
    });
  return { child, exited, stderr: () => stderr, stderrMatches };
}

export function jsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  // A line still being written (no newline yet) is left for the next look.
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

/** Polls `test` until it holds (a condition on files another process writes); throws `what` after `timeoutMs`. */
export async function until(test: () => boolean, what: string, timeoutMs = 60_000, describe: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

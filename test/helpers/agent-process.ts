/**
 * `node agent/cli/main.ts run --config FILE` as a child process, its JSON log lines parsed as they come
 * (a line that is not JSON is kept as `{ msg: line }`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

const MAIN = resolve(import.meta.dirname, '../../agent/cli/main.ts');

export interface LoggingAgentProcess {
  child: ChildProcess;
  exited: Promise<NodeJS.Signals | number | null>;
  /** Log lines so far, parsed. */
  lines: () => Record<string, unknown>[];
}

export function startLoggingAgent(config: string, cwd: string): LoggingAgentProcess {
  const child = spawn(process.execPath, [MAIN, 'run', '--config', config, '--log-format', 'json'], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const parsed: Record<string, unknown>[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    text += d;
    let nl = text.indexOf('\n');
    while (nl >= 0) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        parsed.push({ msg: line });
      }
      nl = text.indexOf('\n');
    }
  });
  const exited = new Promise<NodeJS.Signals | number | null>((done) => child.once('exit', (code, signal) => done(signal ?? code)));
  return { child, exited, lines: () => parsed };
}

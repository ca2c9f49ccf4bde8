#!/usr/bin/env node
import { describeError, isAgentError } from '../errors.ts';
import { holdHangups } from './early-hangup.ts';

/**
 * Parses `argv` (the arguments after the executable) and runs the command: resolves to the exit code, or
 * rejects with the error that ends the command (a usage error is an AgentError with code USAGE).
 */
export async function main(argv: string[]): Promise<number> {
  // Loaded here, not imported above: `node agent/cli/main.ts run` holds SIGHUP before the commands and every
  // driver are loaded (agent/cli/early-hangup.ts).
  const { buildProgram, printedExitCode } = await import('./program.ts');
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    const printed = printedExitCode(err);
    if (printed === undefined) throw err;
    return printed;
  }
  return code;
}

/** Exit code 2: the command line or the configuration is wrong, and the same invocation will fail again. */
const USAGE_CODES = new Set(['USAGE', 'CONFIG_INVALID', 'CONFIG_UNREADABLE']);

/** Runs the CLI and sets the exit code: the whole program, for `node agent/cli/main.ts` and for agent/cli/bin.ts. */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`edge-agent: ${isAgentError(err) && (err.code === 'CONFIG_INVALID' || err.code === 'USAGE') ? err.message : describeError(err)}\n`);
      process.exitCode = isAgentError(err) && USAGE_CODES.has(err.code) ? 2 : 1;
    },
  );
}

/** The commands that run until stopped: a SIGHUP while they start must not end them. */
const LONG_RUNNING = new Set(['run', 'receive']);

if (import.meta.main) {
  if (LONG_RUNNING.has(process.argv[2] ?? '')) holdHangups();
  runCli(process.argv.slice(2));
}

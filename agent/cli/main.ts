#!/usr/bin/env node
import { AgentError, describeError, isAgentError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { runCommand } from './run.ts';
import { checkConfigCommand } from './check-config.ts';
import { keygenCommand } from './keygen.ts';
import { receiveCommand } from './receive.ts';

const HELP = `edge-agent ${VERSION}: store-and-forward agent for gateway devices

Usage:
  edge-agent run [--config FILE]           run the agent (no FILE: embedded demo defaults)
  edge-agent receive --config FILE         run the centre-side receiver
  edge-agent check-config FILE             validate a config file and exit
  edge-agent keygen [--dir DIR] [--name N] write X25519 key pairs (default: device and centre in ./keys)
  edge-agent --version | --help

Logs are JSON lines on stderr; the receiver writes records as JSON lines to stdout or its output file.
Exit codes: 0 ok, 1 failure at run time, 2 bad usage or invalid configuration.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  run: runCommand,
  receive: receiveCommand,
  'check-config': checkConfigCommand,
  keygen: keygenCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(`${HELP}\n`);
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[first];
  if (!command) throw new AgentError('USAGE', `unknown command ${JSON.stringify(first)}; see edge-agent --help`);
  return command(rest);
}

/** Runs the CLI and sets the exit code: the whole program, for `node agent/cli/main.ts` and for agent/cli/bin.ts. */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`edge-agent: ${isAgentError(err) && (err.code === 'CONFIG_INVALID' || err.code === 'USAGE') ? err.message : describeError(err)}\n`);
      process.exitCode = isAgentError(err) && (err.code === 'CONFIG_INVALID' || err.code === 'USAGE' || err.code === 'CONFIG_UNREADABLE') ? 2 : 1;
    },
  );
}

if (import.meta.main) runCli(process.argv.slice(2));

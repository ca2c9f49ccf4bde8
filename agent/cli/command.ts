import { type Command, Option } from 'commander';
import { LOG_FORMATS } from '../log.ts';

/** Sets the exit code the process ends with; a command's action calls it with what the action returned. */
export type Exit = (code: number) => void;

/**
 * One command, or a group of them (`queue …`): a file exports one of these and agent/cli/program.ts lists it.
 * It adds itself with `parent.command(name)`, so it inherits the program's help, error and output settings.
 */
export type DefineCommand = (parent: Command, exit: Exit) => void;

/** `--log-format`, for the long-running commands; absent, `log.format` in the config decides. */
export function logFormatOption(): Option {
  return new Option('--log-format <FORMAT>', 'logs on stderr: text lines, JSON lines, or auto (text on a terminal); overrides log.format').choices(LOG_FORMATS);
}

/** `edge-agent queue list`: the words a user types to reach `command`. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

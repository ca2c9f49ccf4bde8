/**
 * The command line, on commander rather than citty. Size: commander has no dependencies of its own and is
 * ≈0.2 MB unpacked, a few tens of kB in the bundle that ships to every gateway; citty is lighter still, so
 * size does not decide. Fit does: commander says "did you mean …" for mistyped commands and options,
 * prints help for every command and for groups of commands (`queue …`), and with exitOverride and
 * configureOutput it hands every error and help exit back to runCli, which sets the exit code (0, 1, 2).
 * citty's runMain ends the process itself, with exit 1 for a usage error as for any other, and its unknown
 * command error has no suggestion.
 *
 * Adding a command: a file exporting a DefineCommand (see run.ts) and one line in COMMANDS.
 */
import { type Command, Command as Program, CommanderError, Help } from 'commander';
import { AgentError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { checkConfig } from './check-config.ts';
import { deadLetter } from './dead-letter.ts';
import { commandPath, type DefineCommand, type Exit } from './command.ts';
import { fleet } from './fleet.ts';
import { install } from './install.ts';
import { keygen } from './keygen.ts';
import { receive } from './receive.ts';
import { run } from './run.ts';
import { status } from './status.ts';
import { tap } from './tap.ts';
import { update } from './update.ts';

/** In the order `edge-agent --help` lists them. */
const COMMANDS: readonly DefineCommand[] = [run, receive, checkConfig, keygen, deadLetter, fleet, status, tap, install, update];

const AFTER_HELP = `
Logs go to stderr: text lines on a terminal, JSON lines otherwise (--log-format, log.format). The receiver
writes records as JSON lines to stdout or its output file.
Exit codes: 0 ok, 1 failure at run time, 2 bad usage or invalid configuration.`;

/**
 * The whole command line. `exit` receives the exit code of the action that ran. Help and --version end
 * parsing with a CommanderError whose exitCode is 0, or 1 for help shown because no command was given;
 * every other parse error is thrown as an AgentError with code USAGE.
 */
export function buildProgram(exit: Exit): Command {
  const program = new Program('edge-agent')
    .description(`edge-agent ${VERSION}: store-and-forward agent for gateway devices`)
    .version(VERSION, '-v, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print help and exit')
    .helpCommand('help [COMMAND]', 'print help for a command')
    .usage('COMMAND [options]')
    // Program options (--version) only before the command: a command may give -v its own meaning.
    .enablePositionalOptions()
    .configureHelp(fullCommandTerms())
    .configureOutput({
      writeOut: (text) => void process.stdout.write(text),
      writeErr: (text) => void process.stderr.write(text),
      // Parse errors come back as AgentErrors and runCli prints them, in the same form as every other error.
      outputError: () => {},
    })
    .addHelpText('after', AFTER_HELP);
  for (const define of COMMANDS) define(program, exit);
  forEachCommand(program, (command) => command.exitOverride((err) => throwUsage(err, command)));
  return program;
}

/**
 * Help lists commands as they are typed, `edge-agent run [--config FILE]`, not `run [options]`. The built-in
 * `help` command has no parent to name (one instance serves every command), so the listing's command does.
 */
function fullCommandTerms(): Partial<Help> {
  let listing: Command | undefined;
  return {
    formatHelp(command: Command, helper: Help): string {
      listing = command;
      return Help.prototype.formatHelp.call(this, command, helper);
    },
    subcommandTerm: (command: Command) =>
      `${command.parent || !listing ? commandPath(command) : `${commandPath(listing)} ${command.name()}`} ${command.usage()}`,
  };
}

function forEachCommand(command: Command, visit: (command: Command) => void): void {
  visit(command);
  for (const sub of command.commands) forEachCommand(sub, visit);
}

function throwUsage(err: CommanderError, command: Command): never {
  // --help, help, --version, and help shown for a missing command: not errors for the caller to word.
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') throw err;
  throw new AgentError('USAGE', usageMessage(err, command), { cause: err });
}

/**
 * commander's `error: unknown option '--confg'\n(Did you mean --config?)` as one line:
 * `unknown option "--confg" (did you mean --config?); see edge-agent run --help`.
 */
export function usageMessage(err: CommanderError, command: Command): string {
  const [problem = '', ...hints] = err.message.replace(/^error: /, '').split('\n');
  const what = problem.replace(/\.$/, '').replace(/'([^']*)'/g, (_match, quoted: string) => JSON.stringify(quoted));
  const hint = hints
    .map((line) => line.trim().replace(/^\((.*)\)$/, '$1'))
    .filter(Boolean)
    .map((line) => line.charAt(0).toLowerCase() + line.slice(1))
    .join(' ');
  const path = commandPath(command);
  const arguments_ = err.code === 'commander.missingArgument' || err.code === 'commander.excessArguments';
  return `${what}${hint ? ` (${hint})` : ''}; ${arguments_ ? `usage: ${path} ${command.usage()}` : `see ${path} --help`}`;
}

/** Whether a CommanderError that left parsing is help or the version: printed, and the exit code it asks for. */
export function printedExitCode(err: unknown): number | undefined {
  if (!(err instanceof CommanderError)) return undefined;
  // Help because no command was given is a usage error, as is any other missing command.
  return err.exitCode === 0 ? 0 : 2;
}

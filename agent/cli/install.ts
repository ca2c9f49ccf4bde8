import type { Command } from 'commander';
import { isSea } from 'node:sea';
import { AgentError } from '../errors.ts';
import { type InstallOptions, installSteps } from '../update/install.ts';
import { VERSION } from '../version.ts';
import type { DefineCommand } from './command.ts';

export const install: DefineCommand = (parent: Command, exit) => {
  parent
    .command('install')
    .summary('install this executable as a systemd service with self-update (docs/update.md)')
    .description(
      'Create an unprivileged service user in the serial group, the state directory with the release layout (this executable as the committed release) and the systemd unit (Type=notify, watchdog, MemoryMax, restart policy, the update guard). --dry-run prints the steps only; --root installs under another root directory.',
    )
    .usage('[--dry-run] [--root DIR] [--config FILE] [--state-dir DIR] [options]')
    .option('--dry-run', 'print what would be done, change nothing')
    .option('--root <DIR>', 'install under this directory instead of / (the unit names the paths as seen from the device)', '/')
    .option('--config <FILE>', 'the config file the unit runs', '/etc/edge-agent/config.yaml')
    .option('--state-dir <DIR>', 'state directory: releases, update state, native addons', '/var/lib/edge-agent')
    .option('--unit-dir <DIR>', 'where the unit file goes', '/etc/systemd/system')
    .option('--user <NAME>', 'the service user', 'edge-agent')
    .option('--serial-group <NAME>', 'the group that may open serial ports', 'dialout')
    .option('--no-create-user', 'do not create the user (it exists, or the root has no /etc/passwd)')
    .option('--memory-max <SIZE>', "the unit's MemoryMax", '256M')
    .option('--watchdog-sec <N>', "the unit's WatchdogSec", '30')
    .option('--start-timeout-sec <N>', "the unit's TimeoutStartSec", '120')
    .option('--restart-sec <N>', "the unit's RestartSec", '5')
    .option('--read-write <DIR>', 'a further directory the agent writes to (its data_dir outside the state directory); repeatable', collect, [])
    .option('--native-cache <DIR>', 'where the executable unpacks its native addons (default: STATE_DIR/native-cache; not on a noexec mount)')
    .option('--executable <FILE>', 'the executable to install (default: this one)')
    .option('--release <VERSION>', 'the release name of the installed executable', VERSION)
    .action(async (options: InstallCommandOptions) => exit(installCommand(options)));
};

const collect = (value: string, all: string[]) => [...all, value];

interface InstallCommandOptions {
  dryRun?: boolean;
  root: string;
  config: string;
  stateDir: string;
  unitDir: string;
  user: string;
  serialGroup: string;
  createUser: boolean;
  memoryMax: string;
  watchdogSec: string;
  startTimeoutSec: string;
  restartSec: string;
  readWrite: string[];
  nativeCache?: string;
  executable?: string;
  release: string;
}

function seconds(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new AgentError('USAGE', `${option} must be a whole number of seconds above 0, not ${JSON.stringify(value)}`);
  return n;
}

export function installCommand(o: InstallCommandOptions): number {
  const executable = o.executable ?? (isSea() ? process.execPath : undefined);
  if (!executable) throw new AgentError('USAGE', 'install copies the single executable (npm run build); run it from there, or name one with --executable');
  const options: InstallOptions = {
    root: o.root,
    unitDir: o.unitDir,
    executable,
    version: o.release,
    createUser: o.createUser,
    stateDir: o.stateDir,
    configPath: o.config,
    user: o.user,
    serialGroup: o.serialGroup,
    memoryMax: o.memoryMax,
    watchdogSec: seconds(o.watchdogSec, '--watchdog-sec'),
    startTimeoutSec: seconds(o.startTimeoutSec, '--start-timeout-sec'),
    restartSec: seconds(o.restartSec, '--restart-sec'),
    readWritePaths: o.readWrite,
    nativeCache: o.nativeCache ?? `${o.stateDir}/native-cache`,
  };
  const steps = installSteps(options);
  const where = o.root === '/' ? '' : ` under ${o.root}`;
  process.stdout.write(`${o.dryRun ? 'would install' : 'installing'} edge-agent ${o.release}${where}:\n`);
  for (const [i, step] of steps.entries()) {
    process.stdout.write(`  ${i + 1}. ${step.what}\n`);
    if (!o.dryRun) step.run();
  }
  return 0;
}

/**
 * The checks that run after the schema, where the config meets the machine: key files, the files drivers
 * name, the drivers' preflights, and risky settings. `check-config` runs all of them and reports every
 * problem at once; `run` and `receive` refuse to start on an error in what they start (startupChecks).
 *
 * Adding a check: a module here returning ConfigProblem[] (errors stop, warnings are printed), and one entry
 * in CHECKS.
 */
import type { LoadedConfig } from '../config/load.ts';
import { embeddedUrlProblems } from './embedded.ts';
import { envProblems } from './env.ts';
import { fileProblems } from './files.ts';
import { keyProblems } from './keys.ts';
import { limitProblems } from './limits.ts';
import { preflightProblems } from './preflight.ts';
import { type ConfigProblem, throwErrors } from './problems.ts';
import { riskProblems } from './risks.ts';

export interface Check {
  /** It looks at this machine (files, installed modules): skipped when checking a config away from its machine. */
  readonly machine: boolean;
  readonly run: (loaded: LoadedConfig) => ConfigProblem[] | Promise<ConfigProblem[]>;
}

const CHECKS: readonly Check[] = [
  // The device's keys when the config runs an agent, the centre's and the devices' when it has a receiver.
  // generating: `run` creates missing keys first when keys.generate_if_missing is on.
  {
    machine: true,
    run: (loaded) =>
      keyProblems(loaded, { agent: loaded.config.device !== undefined, receiver: true, devices: true, generating: loaded.config.keys.generate_if_missing }),
  },
  { machine: true, run: (loaded) => fileProblems(loaded) },
  { machine: true, run: (loaded) => envProblems(loaded) },
  { machine: true, run: (loaded) => preflightProblems(loaded) },
  { machine: false, run: (loaded) => embeddedUrlProblems(loaded) },
  { machine: false, run: riskProblems },
  { machine: false, run: limitProblems },
];

/** Every problem check-config reports, in the order of CHECKS; `machine: false` leaves out those about this machine. */
export async function configProblems(loaded: LoadedConfig, options: { machine: boolean } = { machine: true }): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  for (const check of CHECKS) if (options.machine || !check.machine) problems.push(...(await check.run(loaded)));
  return problems;
}

/**
 * Before `run` or `receive` starts: the keys it loads, and the files, environment variables and preflights
 * of what it starts (its drivers, the embedded broker), every problem at once as a config error (exit 2)
 * naming the file, the line and the setting. What check-config calls an error, start-up refuses too. The
 * devices' public keys are the receiver's to judge (a bad one keeps out only that device), so they are left
 * to it.
 */
export async function startupChecks(loaded: LoadedConfig, command: 'run' | 'receive'): Promise<void> {
  const receiver = command === 'receive' || loaded.config.receiver?.enabled === true;
  const generating = command === 'run' && loaded.config.keys.generate_if_missing;
  throwErrors(loaded, [
    ...(await keyProblems(loaded, { agent: command === 'run', receiver, devices: false, generating })),
    ...embeddedUrlProblems(loaded, command),
    ...fileProblems(loaded, command),
    ...envProblems(loaded, command),
    ...(await preflightProblems(loaded, command)),
  ]);
}

/** The name agent/cli/run.ts calls it by (its keys were the first of these checks). */
export const startupKeyCheck = startupChecks;

export type { ConfigProblem } from './problems.ts';
export { placed } from './problems.ts';

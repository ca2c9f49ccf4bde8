/**
 * The environment variables the config names for secrets (`password_env`, `token_env`, the embedded broker's
 * `broker.password_env`): each must be set. Drivers mark such settings with `envOption`; this walks their
 * schemas as the file check does. A variable that is not set is an error for `run` and `receive` (they would
 * fail at every connection), and only a warning for check-config, whose shell may not have the service's
 * environment.
 */
import type { LoadedConfig } from '../config/load.ts';
import { envOptions } from '../util/env-option.ts';
import { type CheckScope, driverSettings, fleetSettings, markedSettings } from './files.ts';
import { type ConfigProblem, error, warning } from './problems.ts';

export function envProblems(loaded: LoadedConfig, scope: CheckScope = 'all'): ConfigProblem[] {
  const named = [...driverSettings(loaded, scope), ...fleetSettings(loaded, scope)].flatMap((s) => markedSettings(envOptions, s.schema, s.value, s.path));
  const { broker } = loaded.config;
  if (broker.password_env !== undefined && (scope === 'all' || (scope === 'run' && broker.embedded)))
    named.push({ path: ['broker', 'password_env'], value: broker.password_env, meta: { what: 'embedded broker password' } });
  const problem = scope === 'all' ? warning : error;
  return named
    .filter((n) => process.env[n.value] === undefined)
    .map((n) => problem(n.path, `environment variable ${n.value} (the ${n.meta.what}) is not set${scope === 'all' ? ' here' : ''}`));
}

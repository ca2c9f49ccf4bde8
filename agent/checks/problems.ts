/**
 * What the checks after the schema find: a problem with the setting it belongs to. Placed in the file
 * through the loader's position lookup, so it reads like a schema error: `file:line:column path: message`.
 */
import { type ConfigIssue, configError, formatPath, type LoadedConfig } from '../config/load.ts';

export interface ConfigProblem {
  /** The setting: `['sources', 0, 'tls', 'ca']`. */
  readonly path: readonly PropertyKey[];
  readonly message: string;
  /** error: the agent cannot run so (exit 2). warning: legal but risky, printed, exit 0. */
  readonly severity: 'error' | 'warning';
}

export const error = (path: readonly PropertyKey[], message: string): ConfigProblem => ({ path, message, severity: 'error' });
export const warning = (path: readonly PropertyKey[], message: string): ConfigProblem => ({ path, message, severity: 'warning' });

/** The problems as issues with a line and column: the setting's own, or its nearest written parent's. */
export function placed(loaded: LoadedConfig, problems: readonly ConfigProblem[]): ConfigIssue[] {
  return problems.map((p) => {
    const pos = loaded.position(p.path);
    return { path: formatPath(p.path), line: pos?.line, column: pos?.column, message: p.message };
  });
}

/** Throws the config error (exit 2) that lists every error among `problems`; warnings are left to the caller. */
export function throwErrors(loaded: LoadedConfig, problems: readonly ConfigProblem[]): void {
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw configError(loaded.origin, placed(loaded, errors));
}

import { AgentError } from '../errors.ts';

/** Runs node's parseArgs, turning its errors (unknown flag, missing value) into usage errors. */
export function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    throw new AgentError('USAGE', `${(cause as Error).message}; see edge-agent --help`, { cause });
  }
}

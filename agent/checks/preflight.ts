/** The sink drivers' own effectful checks (an optional native module that is not installed, say). */
import type { LoadedConfig } from '../config/load.ts';
import { AgentError } from '../errors.ts';
import { type ConfigProblem, error } from './problems.ts';

export async function preflightProblems(loaded: LoadedConfig): Promise<ConfigProblem[]> {
  const { config, drivers } = loaded;
  const problems: ConfigProblem[] = [];
  for (const [path, sink] of [
    [['sink'], config.sink],
    [['receiver', 'input'], config.receiver?.input],
  ] as const) {
    if (!sink) continue;
    try {
      await drivers.sink(sink.type).preflight?.(sink);
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      problems.push(error(path, err.message));
    }
  }
  return problems;
}

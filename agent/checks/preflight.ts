/** The sink drivers' own effectful checks (an optional native module that is not installed, say). */
import type { LoadedConfig } from '../config/load.ts';
import { AgentError } from '../errors.ts';
import type { CheckScope } from './files.ts';
import { type ConfigProblem, error } from './problems.ts';

export async function preflightProblems(loaded: LoadedConfig, scope: CheckScope = 'all'): Promise<ConfigProblem[]> {
  const { config, drivers } = loaded;
  const input = config.receiver?.input;
  const sinks =
    scope === 'receive'
      ? [input ? ([['receiver', 'input'], input] as const) : ([['sink'], config.sink] as const)]
      : ([
          [['sink'], config.sink],
          [['receiver', 'input'], scope === 'all' || config.receiver?.enabled ? input : undefined],
        ] as const);
  const problems: ConfigProblem[] = [];
  for (const [path, sink] of sinks) {
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

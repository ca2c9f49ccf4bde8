/**
 * `url: embedded` names the agent's own broker, which exists only when `broker.embedded` is on and only in
 * `run`: a driver given it otherwise would fail at start with no line to point at. Pure configuration, so
 * check-config reports it even with --schema-only.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { CheckScope } from './files.ts';
import { type ConfigProblem, error } from './problems.ts';

export function embeddedUrlProblems(loaded: LoadedConfig, scope: CheckScope = 'all'): ConfigProblem[] {
  const { config } = loaded;
  const input = config.receiver?.input;
  const settings: [PropertyKey[], unknown][] =
    scope === 'receive'
      ? [input ? [['receiver', 'input'], input] : [['sink'], config.sink]]
      : [
          ...config.sources.map((s, i): [PropertyKey[], unknown] => [['sources', i], s]),
          [['sink'], config.sink],
          [['receiver', 'input'], scope === 'all' || config.receiver?.enabled ? input : undefined],
        ];
  const problems: ConfigProblem[] = [];
  for (const [path, value] of settings) {
    if ((value as { url?: unknown } | undefined)?.url !== 'embedded') continue;
    if (scope === 'receive')
      problems.push(error([...path, 'url'], '`receive` has no embedded broker: give the broker the agent with broker.embedded listens on (mqtt://host:port)'));
    else if (!config.broker.embedded) problems.push(error([...path, 'url'], 'url `embedded` needs broker.embedded: true'));
  }
  return problems;
}

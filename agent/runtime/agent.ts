import type { Logger } from '../log.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { RecordOutput } from '../receiver/output.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { LiveAgent } from './live-agent.ts';
import type { RunningAgent } from './running-agent.ts';

export type { HealthResult } from './health.ts';
export type { AgentStatus, ApplyResult, RunningAgent } from './running-agent.ts';

export async function startAgent(
  loaded: LoadedConfig,
  log: Logger,
  options: { receiverOutput?: RecordOutput; telemetry?: Telemetry } = {},
): Promise<RunningAgent> {
  const agent = new LiveAgent(log, options.telemetry ?? new Telemetry(), options.receiverOutput);
  await agent.start(loaded);
  return agent;
}

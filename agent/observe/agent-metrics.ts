/**
 * The agent's own state as metrics, read at collection time: which state each source is in and whether the
 * sink is connected (state sets: one series per state, 1 for the current), the version running and why the
 * previous run ended. Declared when the endpoint starts, on the agent's registry.
 */
import type { RunningAgent } from '../runtime/running-agent.ts';
import { VERSION } from '../version.ts';
import type { SinkWatch } from './readiness.ts';

const SOURCE_STATES = ['starting', 'running', 'retrying', 'failed', 'off', 'paused', 'stopped'] as const;

export function declareAgentMetrics(agent: RunningAgent, sink: SinkWatch, lastExit: string): void {
  const t = agent.telemetry;
  t.gauge('edge_build_info', 'The version running (value 1)', ['version', 'node'], (g) => g.set({ version: VERSION, node: process.versions.node }, 1));
  t.gauge('edge_last_exit_info', 'Why the previous run of the agent ended (value 1)', ['reason'], (g) => g.set({ reason: lastExit }, 1));
  t.gauge('edge_source_state', "Each source's state: 1 for the state it is in, 0 for the others", ['source', 'state'], (g) => {
    const states = agent.status().sources;
    for (const source of agent.loaded.config.sources) {
      const now = states[source.name]?.state ?? 'stopped';
      for (const state of SOURCE_STATES) g.set({ source: source.name, state }, state === now ? 1 : 0);
    }
  });
  t.gauge('edge_sink_connected', '1 while the sink is connected', ['sink'], (g) => {
    g.set({ sink: agent.loaded.config.sink?.type ?? 'none' }, sink.connected ? 1 : 0);
  });
}

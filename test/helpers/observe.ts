/** An agent in this process with its HTTP endpoint (agent/observe/), for the observability tests. */
import { startAgent } from '../../agent/runtime/agent.ts';
import type { RunningAgent } from '../../agent/runtime/running-agent.ts';
import { silentLogger } from '../../agent/log.ts';
import type { LoadedConfig } from '../../agent/config/load.ts';
import { type HttpEndpoint, startHttp } from '../../agent/observe/server.ts';

export interface ObservedAgent {
  agent: RunningAgent;
  http: HttpEndpoint;
  get(path: string, init?: RequestInit): Promise<Response>;
  text(path: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startObservedAgent(loaded: LoadedConfig): Promise<ObservedAgent> {
  const agent = await startAgent(loaded, silentLogger);
  const http = await startHttp(agent, silentLogger, { lastExit: 'first start' });
  const get = (path: string, init?: RequestInit) => fetch(`${http.url}${path}`, init);
  return {
    agent,
    http,
    get,
    text: async (path) => {
      const r = await get(path);
      return r.text();
    },
    stop: async () => {
      await http.close();
      await agent.stop();
    },
  };
}

/**
 * The HTTP endpoint of a running agent: metrics, health, the status page, the tap (routes.ts). Started by
 * `run` only when `http.enabled`, through a dynamic import, so an agent without it does not load its code.
 * Once a second it notes whether the sink is connected (for /readyz's grace) and keeps an operator's pause
 * on a sender that a new configuration replaced; once per `history_interval` it adds a point to the ring
 * the page plots.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { configPaths } from '../config/paths.ts';
import type { RunningAgent } from '../runtime/running-agent.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { declareAgentMetrics } from './agent-metrics.ts';
import { History } from './history.ts';
import { HELD_GAUGE, HELD_HELP, oldestAgeSeconds, SinkWatch } from './readiness.ts';
import { configuredSecrets } from './redact.ts';
import { routes } from './routes.ts';
import { ensureToken, URL_FILE } from './token.ts';

export interface HttpEndpoint {
  /** `http://host:port`, the address taken (port 0 in the config picks one). */
  readonly url: string;
  close(): Promise<void>;
}

const LISTEN = /^\[?([^\]]+)\]?:(\d+)$/;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

export async function startHttp(agent: RunningAgent, log: Logger, options: { lastExit: string }): Promise<HttpEndpoint> {
  const loaded = agent.loaded;
  const http = loaded.config.http;
  const { dataDir } = configPaths(loaded);
  const [, host = '127.0.0.1', port = '0'] = LISTEN.exec(http.listen) ?? [];
  const token = ensureToken(dataDir);
  const sink = new SinkWatch(() => agent.status().sink.connected);
  const history = new History(http.history_interval);
  const startedAt = Date.now();
  const held = agent.telemetry.gauge(HELD_GAUGE, HELD_HELP, ['reason']);
  let paused = false;
  declareAgentMetrics(agent, sink, options.lastExit);
  const listener = routes({
    agent,
    sink,
    history,
    startedAt,
    lastExit: options.lastExit,
    settings: { sinkGraceMs: http.ready_sink_grace, maxOldestAgeMs: http.ready_max_oldest_age },
    token,
    log,
    loopback: LOOPBACK.test(host),
    pollMs: Math.min(Math.max(http.history_interval, 1000), 10_000),
    tapMaxBytes: http.tap_max_bytes,
    secrets: () => configuredSecrets(agent.loaded.config, agent.loaded.baseDir),
    pause(on) {
      paused = on;
      agent.sender.pause(on);
      held.set({ reason: 'operator' }, on ? 1 : 0);
    },
  });
  const watch = setInterval(() => {
    void sink.connected;
    if (paused && !agent.sender.paused) agent.sender.pause(true);
  }, 1000).unref();
  const sample = () => {
    const status = agent.status();
    history.add({
      time: Date.now(),
      queueRecords: status.queue.records,
      queueBytes: status.queue.bytes,
      recordsIn: status.queue.committed,
      recordsOut: status.sender.recordsSent,
      oldestAge: oldestAgeSeconds(agent.telemetry),
    });
  };
  sample();
  const ticker = setInterval(sample, http.history_interval).unref();
  const server: Server = createServer(listener);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(port), host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(watch);
    clearInterval(ticker);
    throw new AgentError('HTTP_FAILED', `cannot listen on ${http.listen} (http.listen): ${(err as Error).message}`, { cause: err });
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  writeFileAtomic(join(dataDir, URL_FILE), `${url}\n`, 0o644);
  log.info({ url, loopback: LOOPBACK.test(host) }, 'metrics, health and status page listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(watch);
        clearInterval(ticker);
        server.close(() => resolve());
        // A tap or a page's keep-alive connection must not hold the stop up.
        server.closeAllConnections();
      }),
  };
}

/**
 * The governor for a delivery (docs/governor.md): built from the `governor` section, handed the sink's
 * sockets to count, and raising the sink's reconnect floor on a metered link.
 */
import type { LoadedConfig } from '../config/load.ts';
import { configPaths } from '../config/paths.ts';
import type { SinkConfig } from '../config/schema.ts';
import type { Governor } from '../governor/governor.ts';
import type { Logger } from '../log.ts';
import type { Queue } from '../queue/queue.ts';
import type { Telemetry } from '../telemetry/registry.ts';

/** Loads the governor's modules only when the config has a `governor` section: most agents run without one. */
export async function startGovernor(loaded: LoadedConfig, queue: Queue, log: Logger, telemetry: Telemetry): Promise<Governor | undefined> {
  const config = loaded.config.governor;
  if (!config) return undefined;
  const { Governor } = await import('../governor/governor.ts');
  const governor = new Governor(config, {
    dataDir: configPaths(loaded).dataDir,
    telemetry,
    log: log.child({ component: 'governor' }),
    diskLow: () => queue.stats().disk.low,
  });
  governor.followExpiry((listener) => queue.onDropped(listener));
  governor.start();
  return governor;
}

/** On a metered link a flapping connection must not burn the budget on handshakes: the reconnect backoff starts higher. */
export function withReconnectFloor(sink: SinkConfig, governor: Governor | undefined): SinkConfig {
  const floor = governor?.reconnectFloorMs;
  const reconnect = sink.reconnect as { initial_delay?: number; max_delay?: number; min_delay?: number } | undefined;
  if (floor === undefined || typeof reconnect?.initial_delay !== 'number') return sink;
  return {
    ...sink,
    reconnect: {
      ...reconnect,
      min_delay: Math.max(reconnect.min_delay ?? 0, floor),
      initial_delay: Math.max(reconnect.initial_delay, floor),
      max_delay: Math.max(reconnect.max_delay ?? 0, floor),
    },
  };
}

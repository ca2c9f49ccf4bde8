/** How the core prepares a driver's config before creating it: the embedded broker's URL, and the driver's own preflight. */
import type { DriverCatalog } from '../config/catalog.ts';
import type { SinkConfig } from '../config/schema.ts';
import { AgentError } from '../errors.ts';

/**
 * `url: embedded` names the agent's in-process broker, whose address is known only once it listens. Applies
 * to sinks, the receiver's input and sources (a local MQTT source on the embedded broker) alike.
 */
export function withEmbeddedUrl<C extends { type: string }>(config: C, embeddedUrl: string | undefined): C {
  const url = (config as { url?: unknown }).url;
  if (url !== 'embedded') return config;
  if (!embeddedUrl) throw new AgentError('CONFIG_INVALID', `${config.type}: url \`embedded\` needs broker.embedded: true`);
  return { ...config, url: embeddedUrl };
}

/** Runs the sink driver's effectful checks (an optional module that is not installed, say) before anything starts. */
export async function preflightSink(drivers: DriverCatalog, config: SinkConfig, where: string): Promise<void> {
  try {
    await drivers.sink(config.type).preflight?.(config);
  } catch (err) {
    if (err instanceof AgentError) throw new AgentError('CONFIG_INVALID', `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

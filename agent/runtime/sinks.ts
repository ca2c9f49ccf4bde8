import { sinkDrivers, sourceDrivers } from '../../drivers/registry.ts';
import type { SinkConfig, SourceConfig } from '../config/schema.ts';
import { AgentError } from '../errors.ts';
import type { SinkDriver, SourceDriver } from '../sdk/index.ts';

export function sinkDriver(config: SinkConfig): SinkDriver {
  const driver = sinkDrivers.find((d) => d.type === config.type);
  if (!driver) throw new Error(`no sink driver ${config.type}`); // unreachable: the schema only admits registered types
  return driver;
}

export function sourceDriver(config: SourceConfig): SourceDriver {
  const driver = sourceDrivers.find((d) => d.type === config.type);
  if (!driver) throw new Error(`no source driver ${config.type}`);
  return driver;
}

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
export async function preflightSink(config: SinkConfig, where: string): Promise<void> {
  try {
    await sinkDriver(config).preflight?.(config as never);
  } catch (err) {
    if (err instanceof AgentError) throw new AgentError('CONFIG_INVALID', `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

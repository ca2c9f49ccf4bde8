import { sinkDrivers, sourceDrivers } from '../../drivers/registry.ts';
import type { SinkConfig, SourceConfig } from '../config/schema.ts';
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

/** `url: embedded` names the agent's in-process broker, whose address is known only once it listens. */
export function withEmbeddedUrl(config: SinkConfig, embeddedUrl: string | undefined): SinkConfig {
  const url = (config as { url?: unknown }).url;
  if (url !== 'embedded') return config;
  if (!embeddedUrl) throw new Error('url `embedded` needs broker.embedded: true');
  return { ...config, url: embeddedUrl } as SinkConfig;
}

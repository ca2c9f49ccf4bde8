/**
 * The composition root: the one module of the core that knows which drivers exist. It takes the static driver
 * list (drivers/registry.ts), builds the catalog from it, and hands that to the config layer; everything the
 * config layer validates carries the catalog on to the runtime. No other file under agent/ imports drivers/.
 *
 * Commands, tests and benchmarks take their config functions from here, so they all see the same drivers.
 */
import { sinkDrivers, sourceDrivers } from '../drivers/registry.ts';
import { type DriverCatalog, driverCatalog } from './config/catalog.ts';
import { type LoadedConfig, loadConfigFile as loadWith, parseConfig as parseWith, parseConfigObject as parseObjectWith } from './config/load.ts';

export const drivers: DriverCatalog = driverCatalog({ sources: sourceDrivers, sinks: sinkDrivers });

/** Pure: YAML text in, a validated config (or every problem, with path, line and column) out. */
export function parseConfig(text: string, origin: string, baseDir: string): LoadedConfig {
  return parseWith(drivers, text, origin, baseDir);
}

/** Pure: a plain object (a merged configuration) in, a validated config (or every problem, by path) out. */
export function parseConfigObject(data: unknown, origin: string, baseDir: string): LoadedConfig {
  return parseObjectWith(drivers, data, origin, baseDir);
}

export function loadConfigFile(path: string): LoadedConfig {
  return loadWith(drivers, path);
}

/** The config file's schema and its source and sink parts, for tools (docs, the JSON Schema, contract suites). */
export function configSchemas() {
  return drivers.schemas;
}

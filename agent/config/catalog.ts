/**
 * The drivers a running agent knows, as the composition root hands them over: the lists, the config schema
 * built from them (once), and lookup by type. The config layer and the runtime take a catalog; neither
 * imports a driver list of its own.
 */
import type { SinkDriver } from '../contracts/sink.ts';
import type { SourceDriver } from '../contracts/source.ts';
import { buildConfigSchemas, type ConfigSchemas } from './schema.ts';

export interface DriverCatalog {
  readonly sources: readonly SourceDriver[];
  readonly sinks: readonly SinkDriver[];
  readonly schemas: ConfigSchemas;
  source(type: string): SourceDriver;
  sink(type: string): SinkDriver;
}

export function driverCatalog(drivers: { sources: readonly SourceDriver[]; sinks: readonly SinkDriver[] }): DriverCatalog {
  const sources = new Map(drivers.sources.map((d) => [d.type, d]));
  const sinks = new Map(drivers.sinks.map((d) => [d.type, d]));
  if (sources.size !== drivers.sources.length || sinks.size !== drivers.sinks.length) throw new TypeError('two drivers share a type name');
  let schemas: ConfigSchemas | undefined;
  return {
    sources: drivers.sources,
    sinks: drivers.sinks,
    // Built on first use: a command that never reads a config (keygen, --version) does not pay for it.
    get schemas() {
      schemas ??= buildConfigSchemas(drivers);
      return schemas;
    },
    source(type) {
      const driver = sources.get(type);
      // Unreachable for a validated config: the schema admits only the catalog's types.
      if (!driver) throw new TypeError(`no source driver ${type}`);
      return driver;
    },
    sink(type) {
      const driver = sinks.get(type);
      if (!driver) throw new TypeError(`no sink driver ${type}`);
      return driver;
    },
  };
}

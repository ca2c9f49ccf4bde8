/**
 * The drivers a running agent knows, as the composition root hands them over: the lists, the config schema
 * built from them (once), and lookup by type. The config layer and the runtime take a catalog; neither
 * imports a driver list of its own.
 */
import type { SinkDriver } from '../contracts/sink.ts';
import type { SourceDriver } from '../contracts/source.ts';
import { buildConfigSchemas, type ConfigSchemas, type NamedDriverTypes } from './schema.ts';

export interface DriverCatalog {
  readonly sources: readonly SourceDriver[];
  readonly sinks: readonly SinkDriver[];
  /** The schema with every driver's options: for tools (docs, the JSON Schema, contract suites). */
  readonly schemas: ConfigSchemas;
  /**
   * The schema to validate one config with (its YAML read into plain data): it builds the option schemas of
   * the driver types that config names only. It accepts and rejects exactly what `schemas` does.
   */
  schemasFor(data: unknown): ConfigSchemas;
  source(type: string): SourceDriver;
  sink(type: string): SinkDriver;
}

export function driverCatalog(drivers: { sources: readonly SourceDriver[]; sinks: readonly SinkDriver[] }): DriverCatalog {
  const sources = new Map(drivers.sources.map((d) => [d.type, d]));
  const sinks = new Map(drivers.sinks.map((d) => [d.type, d]));
  if (sources.size !== drivers.sources.length || sinks.size !== drivers.sinks.length) throw new TypeError('two drivers share a type name');
  let schemas: ConfigSchemas | undefined;
  const forConfig = new Map<string, ConfigSchemas>();
  return {
    sources: drivers.sources,
    sinks: drivers.sinks,
    // Built on first use: a command that never reads a config (keygen, --version) does not pay for it.
    get schemas() {
      schemas ??= buildConfigSchemas(drivers);
      return schemas;
    },
    schemasFor(data) {
      if (schemas !== undefined) return schemas;
      const named = namedDriverTypes(data);
      const key = `${[...named.sources].sort().join(',')}|${[...named.sinks].sort().join(',')}`;
      let built = forConfig.get(key);
      if (built === undefined) {
        built = buildConfigSchemas(drivers, named);
        // A long-running agent sees few distinct configs (its own, a signed update); bound it anyway.
        if (forConfig.size >= 16) forConfig.clear();
        forConfig.set(key, built);
      }
      return built;
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

/** The driver types a config's data names: `sources[].type`, `sink.type`, `receiver.input.type`. */
function namedDriverTypes(data: unknown): NamedDriverTypes {
  const sources = new Set<string>();
  const sinks = new Set<string>();
  const typeOf = (entry: unknown): string | undefined => {
    const type = entry !== null && typeof entry === 'object' ? (entry as { type?: unknown }).type : undefined;
    return typeof type === 'string' ? type : undefined;
  };
  const add = (set: Set<string>, entry: unknown) => {
    const type = typeOf(entry);
    if (type !== undefined) set.add(type);
  };
  const root = data !== null && typeof data === 'object' ? (data as Record<string, unknown>) : {};
  if (Array.isArray(root.sources)) for (const s of root.sources) add(sources, s);
  add(sinks, root.sink);
  const receiver = root.receiver;
  if (receiver !== null && typeof receiver === 'object') add(sinks, (receiver as { input?: unknown }).input);
  return { sources, sinks };
}

/**
 * Which modules of drivers/ are declarations: what every start evaluates, whatever its config names (the
 * registry lists every driver, and config validation needs each named driver's option schema). Everything
 * else under drivers/ is an implementation, loaded by a driver's `create` with `import()` when a config uses
 * it (agent/sdk/define.ts). The tests of a start check that no declaration imports an implementation.
 */

/** Modules besides index.ts and options.ts that an option schema needs (constants, shared option shapes). */
const SCHEMA_HELPERS = new Set([
  'drivers/common/mqtt-url.ts',
  'drivers/common/reconnect.ts',
  'drivers/common/secrets.ts',
  'drivers/common/serial-line.ts',
  'drivers/common/sql/options.ts',
  'drivers/common/sql/tls.ts',
  'drivers/common/tls.ts',
  'drivers/sources/hl7/charset.ts',
  'drivers/sources/modbus/decode.ts',
  'drivers/sources/sensors/units.ts',
  'drivers/sources/synthetic/shapes.ts',
]);

/** `path` relative to the repository, `drivers/…`. */
export function isDriverDeclaration(path: string): boolean {
  return path === 'drivers/registry.ts' || /^drivers\/(sources|sinks)\/[^/]+\/(index|options)\.ts$/.test(path) || SCHEMA_HELPERS.has(path);
}

/** `path` relative to the repository, `drivers/…`: the index.ts of the driver folder it is in, if any. */
export function driverIndexOf(path: string): string | undefined {
  const m = /^drivers\/(sources|sinks)\/[^/]+\//.exec(path);
  return m ? `${m[0]}index.ts` : undefined;
}

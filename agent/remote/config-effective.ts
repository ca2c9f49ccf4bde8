/**
 * The effective configuration from its layers: the local file, then each group in `fleet.groups` order that
 * has a committed document, then the device's; merged (config-merge.ts), checked with the schema, and named
 * by its version string (`<local sha8>+g:<group>=<v>+d=<v>`). The pipeline and the start both use it.
 */
import { createHash } from 'node:crypto';
import { describeError } from '../errors.ts';
import { type LoadedConfig, parseConfigObject, requireRunnable } from '../config/load.ts';
import type { DriverCatalog } from '../config/catalog.ts';
import { stableJson } from '../runtime/config-diff.ts';
import { type ConfigLayer, type LayerId, mergeLayers, type Provenance } from './config-merge.ts';
import type { CommittedState } from './config-state.ts';
import { Refusal } from '../trust/index.ts';

export type LayerRef = { kind: 'device' } | { kind: 'group'; name: string };

/** The local file's part: its data as written, where it came from, where its relative paths point. */
export interface LocalLayer {
  data: unknown;
  origin: string;
  baseDir: string;
  /** The file to re-read on `reloadLocal()`; absent for built-in defaults. */
  path?: string;
}

export function layerId(layer: LayerRef): LayerId {
  return layer.kind === 'device' ? 'device' : `group:${layer.name}`;
}

export function localSha(data: unknown): string {
  return createHash('sha256')
    .update(stableJson(data ?? {}))
    .digest('hex')
    .slice(0, 8);
}

/** The layers in effect, lowest first: local, the groups in `fleet.groups` order that have a document, the device. */
export function orderedLayers(local: LocalLayer, state: CommittedState, groups: readonly string[]): (ConfigLayer & { version?: number })[] {
  const out: (ConfigLayer & { version?: number })[] = [{ id: 'local', config: local.data }];
  for (const g of groups) {
    const rec = state.layers[`group:${g}`];
    if (rec) out.push({ id: `group:${g}`, config: rec.config, version: rec.version });
  }
  const device = state.layers.device;
  if (device) out.push({ id: 'device', config: device.config, version: device.version });
  return out;
}

export function groupsOf(local: LocalLayer, drivers: DriverCatalog): string[] {
  try {
    return parseConfigObject(drivers, local.data, local.origin, local.baseDir).config.fleet.groups;
  } catch {
    return [];
  }
}

export function effectiveVersion(local: LocalLayer, state: CommittedState, groups: readonly string[]): string {
  const parts = [localSha(local.data)];
  for (const layer of orderedLayers(local, state, groups).slice(1)) {
    parts.push(layer.id === 'device' ? `d=${layer.version}` : `g:${layer.id.slice('group:'.length)}=${layer.version}`);
  }
  return parts.join('+');
}

export interface Effective {
  loaded: LoadedConfig;
  provenance: Provenance;
  version: string;
}

/**
 * Merge → the schema → what `run` needs: the effective configuration, or a refusal (schema_invalid, forbidden_setting).
 *
 * `validatedLocal`, when given, is the local layer already validated (its `data` the very object of
 * `local.data`, as `run` loaded it): its groups are read from it, and when no other layer is in effect it is
 * the effective configuration. Validating the same document again cost ≈ 6 ms of every start (profiled).
 */
export function buildEffective(local: LocalLayer, state: CommittedState, drivers: DriverCatalog, validatedLocal?: LoadedConfig): Effective {
  const known = validatedLocal !== undefined && validatedLocal.data === local.data ? validatedLocal : undefined;
  const groups = known ? known.config.fleet.groups : groupsOf(local, drivers);
  const layers = orderedLayers(local, state, groups);
  const merged = mergeLayers(layers);
  const version = effectiveVersion(local, state, groups);
  const origin =
    layers.length === 1
      ? local.origin
      : `${local.origin} + ${layers
          .slice(1)
          .map((l) => `${l.id} v${l.version}`)
          .join(' + ')}`;
  let loaded: LoadedConfig;
  try {
    loaded = known !== undefined && layers.length === 1 ? known : parseConfigObject(drivers, merged.data, origin, local.baseDir);
    requireRunnable(loaded);
  } catch (err) {
    throw new Refusal('schema_invalid', describeError(err), { cause: err });
  }
  return { loaded, provenance: merged.provenance, version };
}

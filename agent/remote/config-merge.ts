/**
 * The effective configuration from its layers, lowest first: the local file, each group in `fleet.groups`
 * order, the device's own document. Maps merge key by key; `sources` merge by name (a layer's entry
 * replaces the same-named one whole, `{name, remove: true}` removes it, a new name is appended); `null`
 * deletes a key; any other array replaces. Pure: plain data in, plain data and provenance out; the schema
 * runs after (config-pipeline.ts).
 */
import { Refusal } from '../trust/index.ts';

/** `local`, `group:<name>` or `device`. */
export type LayerId = 'local' | 'device' | `group:${string}`;

export interface ConfigLayer {
  id: LayerId;
  /** A partial config, the same shape as the YAML file. */
  config: unknown;
}

/** For each top-level key and each source name, the layer that last set it. */
export interface Provenance {
  keys: Record<string, LayerId>;
  sources: Record<string, LayerId>;
}

export interface MergedConfig {
  data: Record<string, unknown>;
  provenance: Provenance;
}

type PlainMap = Record<string, unknown>;

/** Deeper than any config the schema accepts: a document nested past it is refused before the merge recurses. */
const MAX_DEPTH = 32;
/** Keys that would reach an object's prototype when assigned. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function isMap(value: unknown): value is PlainMap {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(layer: LayerId, path: string, message: string): Refusal {
  return new Refusal('schema_invalid', `${layer}: ${path}: ${message}`);
}

/** A remote layer may not change who the device is, nor whom it trusts: only the local file does. */
export function checkForbidden(layer: ConfigLayer): void {
  if (layer.id === 'local' || !isMap(layer.config)) return;
  const { device, fleet } = layer.config;
  if (device !== undefined && (!isMap(device) || 'id' in device)) {
    throw new Refusal('forbidden_setting', `${layer.id}: device.id may be set only in the local file`);
  }
  if (fleet !== undefined && (!isMap(fleet) || 'trust' in fleet)) {
    throw new Refusal('forbidden_setting', `${layer.id}: fleet.trust may be set only in the local file`);
  }
}

function mergeMaps(base: PlainMap, over: PlainMap, layer: LayerId, path: string, depth: number): PlainMap {
  if (depth > MAX_DEPTH) throw invalid(layer, path, `nested deeper than ${MAX_DEPTH} levels`);
  const out: PlainMap = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const at = path === '' ? key : `${path}.${key}`;
    if (UNSAFE_KEYS.has(key)) throw invalid(layer, at, 'key not allowed');
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(out[key])) out[key] = mergeMaps(out[key] as PlainMap, value, layer, at, depth + 1);
    else out[key] = checkedValue(value, layer, at, depth + 1);
  }
  return out;
}

/** A value taken as it is: checked for depth and prototype keys only. */
function checkedValue(value: unknown, layer: LayerId, path: string, depth: number): unknown {
  if (depth > MAX_DEPTH) throw invalid(layer, path, `nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) checkedValue(v, layer, `${path}[${i}]`, depth + 1);
  } else if (isMap(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (UNSAFE_KEYS.has(k)) throw invalid(layer, `${path}.${k}`, 'key not allowed');
      checkedValue(v, layer, `${path}.${k}`, depth + 1);
    }
  }
  return value;
}

function sourceName(entry: unknown, layer: LayerId, index: number): string {
  if (!isMap(entry) || typeof entry.name !== 'string') throw invalid(layer, `sources[${index}]`, 'a source needs a name');
  return entry.name;
}

function mergeSources(base: unknown, over: unknown, layer: LayerId, provenance: Provenance): unknown[] {
  if (!Array.isArray(over)) throw invalid(layer, 'sources', 'must be a list');
  const merged: unknown[] = Array.isArray(base) ? [...base] : [];
  over.forEach((entry, i) => {
    const name = sourceName(entry, layer, i);
    const at = merged.findIndex((s) => isMap(s) && s.name === name);
    const { remove, ...rest } = entry as PlainMap;
    if (remove !== undefined) {
      if (remove !== true || Object.keys(rest).length !== 1) throw invalid(layer, `sources[${i}]`, 'a removal is exactly {name, remove: true}');
      if (at >= 0) merged.splice(at, 1);
      delete provenance.sources[name];
      return;
    }
    const value = checkedValue(entry, layer, `sources[${i}]`, 1);
    if (at >= 0) merged[at] = value;
    else merged.push(value);
    provenance.sources[name] = layer;
  });
  return merged;
}

/** Merges the layers in order; refuses (schema_invalid, forbidden_setting) a layer that cannot be merged. */
export function mergeLayers(layers: readonly ConfigLayer[]): MergedConfig {
  let data: PlainMap = {};
  const provenance: Provenance = { keys: {}, sources: {} };
  for (const layer of layers) {
    const config = layer.config ?? {};
    if (!isMap(config)) throw invalid(layer.id, '(top level)', 'a config is a map of settings');
    checkForbidden(layer);
    const { sources, ...rest } = config;
    data = mergeMaps(data, rest, layer.id, '', 0);
    for (const key of Object.keys(rest)) provenance.keys[key] = layer.id;
    if (sources === null) {
      delete data.sources;
      provenance.sources = {};
      provenance.keys.sources = layer.id;
    } else if (sources !== undefined) {
      data.sources = mergeSources(data.sources, sources, layer.id, provenance);
      provenance.keys.sources = layer.id;
    }
    for (const key of Object.keys(provenance.keys)) if (!(key in data)) delete provenance.keys[key];
  }
  return { data, provenance };
}

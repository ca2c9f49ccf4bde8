/**
 * What a new configuration changes for a running agent, part by part. Each part is keyed by a stable JSON of
 * the settings it is built from, so the runtime compares what runs with what is asked, never two configs
 * with each other: a part that failed to start has no key and is started again by the next apply.
 */
import type { Config, SourceConfig } from '../config/schema.ts';

/**
 * Settings the whole pipeline is built on: the queue file and its options (batch and streams are queue
 * options), the keys batches are sealed with, the embedded broker and receiver, the device's identity.
 */
const WHOLE_KEYS = ['device', 'data_dir', 'keys', 'queue', 'batch', 'streams', 'broker', 'receiver'] as const;

/** JSON with object keys sorted, so two equal settings always give the same text. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function wholeKey(config: Config): string {
  return stableJson(Object.fromEntries(WHOLE_KEYS.map((k) => [k, config[k] ?? null])));
}

/** The sender, the sink and the governor are restarted together: the sender is built around one sink. */
export function deliveryKey(config: Config): string {
  return stableJson({ sink: config.sink ?? null, sender: config.sender, governor: config.governor ?? null });
}

export function sourceKey(source: SourceConfig): string {
  return stableJson(source);
}

/** What a running agent must restart to run `next`, given the keys of what it runs now. */
export interface ConfigChanges {
  whole: boolean;
  delivery: boolean;
  /** Names of sources to stop (changed or removed) and to start (changed or added). */
  stopSources: string[];
  startSources: SourceConfig[];
}

export function configChanges(
  running: { whole: string | undefined; delivery: string | undefined; sources: ReadonlyMap<string, string> },
  next: Config,
): ConfigChanges {
  if (running.whole !== wholeKey(next)) return { whole: true, delivery: true, stopSources: [...running.sources.keys()], startSources: next.sources };
  const wanted = new Map(next.sources.map((s) => [s.name, s]));
  const stopSources = [...running.sources].filter(([name, key]) => wanted.get(name) === undefined || sourceKey(wanted.get(name)!) !== key).map(([n]) => n);
  const startSources = next.sources.filter((s) => running.sources.get(s.name) !== sourceKey(s));
  return { whole: false, delivery: running.delivery !== deliveryKey(next), stopSources, startSources };
}

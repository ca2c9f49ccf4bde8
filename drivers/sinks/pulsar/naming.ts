import type { OutgoingBatch } from '../../../agent/sdk/index.ts';
import type { PulsarOptions } from './options.ts';

/** persistent://<tenant>/<namespace>/<topic template with {device} and {stream} filled in>. */
export function topicFor(options: PulsarOptions, device: string, stream: string): string {
  const name = options.topic.replaceAll('{device}', device).replaceAll('{stream}', stream);
  return `persistent://${options.tenant}/${options.namespace}/${name}`;
}

/** The regex of every topic the template can produce, for the receiver's pattern subscription. */
export function topicPattern(options: PulsarOptions): string {
  const escaped = options.topic.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
  const name = escaped.replaceAll('{device}', '[\\w.-]+').replaceAll('{stream}', '[\\w.-]+');
  return `persistent://${options.tenant}/${options.namespace}/${name}`;
}

/** `persistent://t/n/x` → `persistent/t/n/x`, the form the WebSocket API puts in its paths. */
export function topicPath(topic: string): string {
  return topic.replace('://', '/');
}

/**
 * The stable producer name of a batch series: one per (device, stream, queue epoch). Broker-side
 * deduplication keys on (topic, producer name, sequence id), so a re-send of the same batch after a crash
 * or reconnect is recognised, while a new queue (new epoch) starts a new series instead of being taken for
 * old batches.
 */
export function seriesName(batch: OutgoingBatch): string {
  return `edge-${batch.device}-${batch.stream}-${batch.epoch}`;
}

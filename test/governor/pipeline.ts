/**
 * A real delivery path for the governor's link tests: the durable queue (SQLite in a temporary directory),
 * the MQTT sink through a counting proxy to a Mosquitto of our own, the sender with the governor, and a
 * subscriber that counts what arrived. The one stand-in: batches are not sealed (the body goes as stored,
 * already compressed): sealing adds a fixed 100-odd bytes per batch and nothing the governor looks at.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { governorSchema } from '../../agent/config/governor-schema.ts';
import type { ClockSource } from '../../agent/governor/clock.ts';
import { Governor } from '../../agent/governor/governor.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import { Queue } from '../../agent/queue/queue.ts';
import { withReconnectFloor } from '../../agent/runtime/governed-delivery.ts';
import { Sender } from '../../agent/runtime/sender.ts';
import { Telemetry } from '../../agent/telemetry/registry.ts';
import { mqttSink } from '../../drivers/sinks/mqtt/index.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { CountingProxy } from '../../scripts/lib/counting-proxy.ts';
import { testQueueOptions } from '../helpers/queue-options.ts';

export interface Pipeline {
  readonly mosquitto: Mosquitto;
  readonly proxy: CountingProxy;
  readonly queue: Queue;
  readonly governor: Governor;
  readonly sender: Sender;
  readonly telemetry: Telemetry;
  /** Messages the subscriber received, by stream, with when each arrived (ms, real clock). */
  readonly received: Map<string, number[]>;
  /** The agent's own count of bytes on the sink's wire, both directions. */
  agentBytes(): number;
  close(): Promise<void>;
}

let sensor = 0;
/** Realistic records: per-record timestamps, noisy floats, many sensor ids. */
export function records(n: number, at = Date.now()): { ts: number; data: Record<string, unknown> }[] {
  return Array.from({ length: n }, (_, i) => ({
    ts: at + i,
    data: { sensor: `s-${(sensor++ % 500).toString(36)}`, t: 20 + Math.random() * 5, h: 40 + Math.random() * 20, v: Math.random() * 1000 },
  }));
}

export async function startPipeline(
  governorConfig: unknown,
  opts: {
    clock?: ClockSource;
    batchMaxBytes?: number;
    batchMaxRecords?: number;
    maxAgeMs?: number;
    queueNow?: () => number;
    priorities?: Record<string, number>;
    reconnect?: { initial_delay: number; max_delay: number };
  } = {},
) {
  const mosquitto = await startMosquitto();
  const proxy = await CountingProxy.start(mosquitto.port);
  const dir = mkdtempSync(join(tmpdir(), 'governor-link-'));
  const telemetry = new Telemetry();
  const queue = Queue.open({
    ...testQueueOptions(join(dir, 'queue.db'), {
      batchMaxBytes: opts.batchMaxBytes ?? 8 * 1024,
      priorities: opts.priorities ?? {},
      ...(opts.batchMaxRecords ? { batchMaxRecords: opts.batchMaxRecords } : {}),
      ...(opts.maxAgeMs ? { maxAgeMs: opts.maxAgeMs } : {}),
      ...(opts.queueNow ? { now: opts.queueNow } : {}),
    }),
    telemetry,
  });
  const config = governorSchema.parse(governorConfig)!;
  const governor = new Governor(config, { dataDir: dir, telemetry, log: silentLogger, clock: opts.clock });
  governor.followExpiry((listener) => queue.onDropped(listener)); // as agent/runtime/governed-delivery.ts does
  governor.start();
  const received = new Map<string, number[]>();
  const subscriber = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
  subscriber.on('message', (topic) => {
    const stream = topic.split('/').at(-1)!;
    let list = received.get(stream);
    if (!list) received.set(stream, (list = []));
    list.push(Date.now());
  });
  await subscriber.subscribeAsync('gov/#', { qos: 1 });
  // As the runtime does (agent/runtime/parts.ts): the governor raises the reconnect floor on a metered link.
  const sinkConfig = withReconnectFloor(
    { type: 'mqtt', url: `mqtt://127.0.0.1:${proxy.port}`, topic_prefix: 'gov', reconnect: { initial_delay: 50, max_delay: 200, ...opts.reconnect } },
    governor,
  );
  const { type: _type, ...sinkOptions0 } = sinkConfig;
  const sinkOptions = mqttSink.options.parse(sinkOptions0);
  const sink = await mqttSink.create(sinkOptions, { ...driverEnv({ log: silentLogger, baseDir: dir }), device: 'gw-gov', wire: governor.sinkWire });
  await sink.connect();
  const sender = new Sender(
    queue,
    sink,
    (batch) => batch.body,
    { device: 'gw-gov', epoch: '00', maxInFlight: 4, writeTimeoutMs: 10_000, retry: { initialMs: 20, maxMs: 200 }, governor },
    silentLogger,
    telemetry,
  );
  const linkBytes = telemetry.get('edge_link_bytes_total') as { value(l: Record<string, string>): number };
  const pipeline: Pipeline = {
    mosquitto,
    proxy,
    queue,
    governor,
    sender,
    telemetry,
    received,
    agentBytes: () => {
      governor.sinkWire.sample();
      return linkBytes.value({ direction: 'in', connection: 'sink' }) + linkBytes.value({ direction: 'out', connection: 'sink' });
    },
    close: async () => {
      await sender.stop(1_000);
      await sink.close();
      governor.stop();
      queue.close();
      await subscriber.endAsync(true);
      await proxy.close();
      await mosquitto.stop();
    },
  };
  return pipeline;
}

/** Polls `test` until it holds; throws with `what` after `timeoutMs`. */
export async function until(test: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

import { AgentError, type DriverEnv, type OutgoingBatch, type Sink } from '../../../agent/sdk/index.ts';
import { clientOptions } from './client-options.ts';
import { MqttConnection } from './connection.ts';
import { backoffPolicy } from '../../common/reconnect.ts';
import type { MqttOptions } from './options.ts';

// MQTT 5 PUBACK reason codes that no retry can fix: the batch is refused for what it is or where it goes.
const FATAL_REASONS = new Set([0x87 /* not authorized */, 0x90 /* topic name invalid */, 0x99 /* payload format invalid */]);

export class MqttSink implements Sink {
  private connection: MqttConnection | undefined;

  private readonly options: MqttOptions;

  private readonly env: DriverEnv & { device: string };

  constructor(
    options: MqttOptions,

    env: DriverEnv & { device: string },
  ) {
    this.options = options;

    this.env = env;
  }

  async connect(): Promise<void> {
    const clientId = this.options.client_id ?? `edge-agent-${this.env.device}`;
    this.connection = new MqttConnection(
      this.options.url,
      clientOptions(this.options, this.env.baseDir, clientId),
      backoffPolicy(this.options.reconnect),
      this.env.log,
      this.env.problems,
    );
  }

  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  waitConnected(signal: AbortSignal): Promise<void> {
    return this.connection?.waitConnected(signal) ?? Promise.resolve();
  }

  async write(batch: OutgoingBatch): Promise<void> {
    const connection = this.connection;
    if (!connection?.connected) throw new AgentError('SINK_UNAVAILABLE', 'MQTT broker not connected', { retryable: true });
    const topic = `${this.options.topic_prefix}/${batch.device}/${batch.stream}`;
    try {
      await connection.client.publishAsync(topic, Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength), { qos: 1 });
    } catch (cause) {
      const reason = (cause as { code?: unknown }).code;
      if (typeof reason === 'number' && FATAL_REASONS.has(reason)) {
        throw new AgentError('SINK_REJECTED', `broker refused batch ${batch.stream}#${batch.seq} on ${topic} (reason 0x${reason.toString(16)})`, { cause });
      }
      throw new AgentError('SINK_UNAVAILABLE', `publish of ${batch.stream}#${batch.seq} failed`, { cause, retryable: true });
    }
  }

  async close(): Promise<void> {
    await this.connection?.close();
  }
}

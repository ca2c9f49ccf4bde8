/** The sink contract, and the matching consumer the centre's receiver reads what the sink wrote with. */
import type { z } from '../util/zod.ts';
import type { IncomingMessage, OutgoingBatch } from '../domain/batch.ts';
import type { DriverEnv, DriverInfo } from './driver.ts';

/**
 * A sink. `write` resolves only when the broker has acknowledged the batch; it rejects with an AgentError
 * whose `retryable` flag tells the runtime whether to try again (connection lost, timeout) or to set the
 * batch aside (the broker refused it). The runtime owns retries, pacing and the in-flight window.
 */
export interface Sink {
  /** Starts connecting; resolves once the first connection attempt has been made (it may have failed). */
  connect(): Promise<void>;
  readonly connected: boolean;
  /** Resolves when connected, or when the signal aborts. */
  waitConnected(signal: AbortSignal): Promise<void>;
  write(batch: OutgoingBatch): Promise<void>;
  close(): Promise<void>;
  /**
   * Present when the sink is configured for end-to-end acknowledgement (`acknowledged_by: centre`): the
   * centre's acknowledgements as they arrive. The broker's acknowledgement of `write` is then flow control
   * only; rows are deleted when the runtime has authenticated an acknowledgement from the centre.
   */
  readonly centreAcks?: CentreAcks;
}

/** The centre's acknowledgements, as received: raw bytes, authenticated by the runtime, not the driver. */
export interface CentreAcks {
  /** Sets the one handler. An acknowledgement that arrives with none set is dropped: the batch is sent again. */
  onAck(handler: (bytes: Uint8Array, origin: string) => void): void;
}

/** What a consumer is created with, beyond every driver's env. */
export interface ConsumerEnv extends DriverEnv {
  /** The name the consumer subscribes under (a persistent session or subscription is keyed by it). */
  readonly clientName: string;
  /**
   * The largest message the receiver takes (receiver.max_envelope_bytes). A consumer whose protocol lets it
   * refuse larger messages before they are read (MQTT 5's Maximum Packet Size) does, with headroom, so a
   * hostile size never reaches memory; the receiver still checks and counts every message it is given.
   */
  readonly maxMessageBytes?: number;
}

export interface Consumer {
  start(handler: (message: IncomingMessage) => Promise<void>): Promise<void>;
  close(): Promise<void>;
  /**
   * Sends a centre acknowledgement (agent/envelope/ack.ts) back to the device over the same transport, for
   * gateways with `acknowledged_by: centre`. Best effort: a lost acknowledgement makes the gateway send the
   * batch again, which the receiver drops as a duplicate and acknowledges again. Absent where there is no way back.
   */
  sendAck?(device: string, stream: string, bytes: Uint8Array): void;
}

export interface SinkDriver<O extends z.ZodObject = z.ZodObject> extends DriverInfo<O> {
  /**
   * Effectful checks that belong to `check-config` but not to pure validation (an optional native module
   * that is not installed, say). Throws an AgentError with a message that says what to do instead.
   */
  preflight?(config: z.output<O>): Promise<void>;
  /**
   * Makes a sink, or the consumer that reads what it wrote. Asynchronous so that a driver loads its
   * implementation with `import()` here, when a config uses it, rather than at every start (see SourceDriver).
   */
  create(config: z.output<O>, env: DriverEnv & { device: string }): Promise<Sink>;
  createConsumer(config: z.output<O>, env: ConsumerEnv): Promise<Consumer>;
}

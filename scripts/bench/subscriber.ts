import mqtt from 'mqtt';
import { decodeHeader } from '../../agent/envelope/header.ts';

export interface Arrivals {
  messages: number;
  records: number;
  bytes: number;
  /** performance.now() of the first and the latest message, 0 before any. */
  first: number;
  last: number;
}

const none = (): Arrivals => ({ messages: 0, records: 0, bytes: 0, first: 0, last: 0 });

/**
 * Counts what arrives at the broker: batches, records (from the envelope's plaintext header, no decryption)
 * and envelope bytes, in total and per device (the topic is edge-agent/v1/<device>/<stream>), so that each
 * run can use a device id of its own and a late message of an earlier run never counts for the next.
 */
export class Subscriber {
  private total = none();
  private readonly byDevice = new Map<string, Arrivals>();
  private readonly client: mqtt.MqttClient;

  private constructor(client: mqtt.MqttClient) {
    this.client = client;
    client.on('error', () => {}); // a broker that goes away is handled by the run loop
    client.on('message', (topic, payload) => {
      const now = performance.now();
      const device = topic.split('/')[2] ?? '';
      const entry = this.byDevice.get(device) ?? none();
      this.byDevice.set(device, entry);
      let count = 0;
      try {
        count = decodeHeader(payload).header.count;
      } catch {
        // not an envelope: counted as a message only
      }
      for (const a of [this.total, entry]) {
        a.messages++;
        a.bytes += payload.length;
        a.records += count;
        if (a.first === 0) a.first = now;
        a.last = now;
      }
    });
  }

  /** `filter`: the agent's topics by default; another one counts other messages (as messages, with no records). */
  static async start(url: string, filter = 'edge-agent/v1/#'): Promise<Subscriber> {
    const client = await mqtt.connectAsync(url, { clientId: `bench-subscriber-${process.pid}`, protocolVersion: 5, reconnectPeriod: 0 });
    await client.subscribeAsync(filter, { qos: 1 });
    return new Subscriber(client);
  }

  get records(): number {
    return this.total.records;
  }

  get messages(): number {
    return this.total.messages;
  }

  get bytes(): number {
    return this.total.bytes;
  }

  device(id: string): Arrivals {
    return { ...(this.byDevice.get(id) ?? none()) };
  }

  reset(): void {
    this.total = none();
    this.byDevice.clear();
  }

  /** Waits (up to `ms`) until `records` have arrived in total. */
  async waitFor(records: number, ms = 3_000): Promise<void> {
    await this.until(() => this.total.records >= records, ms);
  }

  /** Polls `condition` every 5 ms; resolves true when it holds, false after `ms`. */
  async until(condition: () => boolean, ms: number, abandon?: () => boolean): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!condition()) {
      if (performance.now() > deadline || abandon?.()) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

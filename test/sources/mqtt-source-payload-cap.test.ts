import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import mqtt from 'mqtt';
import type { Packet } from 'mqtt';
import { mqttSource } from '../../drivers/sources/mqtt/index.ts';
import type { MqttSource } from '../../drivers/sources/mqtt/source.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { silentLogger } from '../../agent/log.ts';
import type { AgentRecord, SourceContext } from '../../agent/sdk/index.ts';
import { problemReporter, driverEnv } from '../../agent/hosting/driver-env.ts';

// max_payload_bytes against a real Mosquitto: an oversized message is counted and acknowledged without a
// record (so the subscription goes on and the broker does not redeliver it), and under MQTT 5 the advertised
// Maximum Packet Size keeps the broker from sending much larger ones at all.

interface Running {
  source: MqttSource;
  records: AgentRecord[];
  counts: Map<string, number>;
  /** PUBLISH packets that reached the client (whatever became of them). */
  publishes: number[];
  waitFor(test: () => boolean, what: string): Promise<void>;
  stop(): Promise<void>;
}

async function startSource(broker: Mosquitto, options: Record<string, unknown>): Promise<Running> {
  const config = mqttSource.options.parse({ url: broker.url, topics: [{ filter: 'cap/#', qos: 1 }], ...options });
  const common = { type: 'mqtt', name: 'cap', stream: 'cap', interval: 10_000, on_start_error: 'retry' as const };
  const source = (await mqttSource.create({ ...config, ...common }, driverEnv({ log: silentLogger, baseDir: process.cwd() }))) as MqttSource;
  const records: AgentRecord[] = [];
  const counts = new Map<string, number>();
  const publishes: number[] = [];
  let waiters: { test: () => boolean; resolve: () => void }[] = [];
  const changed = () => (waiters = waiters.filter((w) => (w.test() ? (w.resolve(), false) : true)));
  const abort = new AbortController();
  const ctx: SourceContext = {
    name: 'cap',
    log: silentLogger,
    cursor: undefined,
    signal: abort.signal,
    counters: {
      add: (name, n = 1) => {
        counts.set(name, (counts.get(name) ?? 0) + n);
        changed();
      },
    },
    problems: problemReporter(() => ctx.counters, silentLogger),
    emit: async (batch) => {
      records.push(...batch);
      changed();
    },
    fail: (err) => assert.fail(`source failed: ${String(err)}`),
  };
  await source.start(ctx);
  source.mqttClient!.on('packetreceive', (packet: Packet) => {
    if (packet.cmd === 'publish') publishes.push(packet.payload.length);
  });
  return {
    source,
    records,
    counts,
    publishes,
    waitFor: (test, what) =>
      test()
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify([...counts])}, ${records.length} records`)),
              20_000,
            );
            waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
          }),
    stop: async () => {
      abort.abort();
      await source.stop();
    },
  };
}

async function publish(broker: Mosquitto, messages: [string, Buffer][]): Promise<void> {
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `cap-pub-${Math.random()}` });
  try {
    for (const [topic, payload] of messages) await client.publishAsync(topic, payload, { qos: 1 });
  } finally {
    await client.endAsync();
  }
}

// Cut short: a failure must not print 200 kB of payload.
const payloads = (r: Running) => r.records.map((x) => String(x.payload).slice(0, 16));

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.stop();
  rmSync(broker.dir, { recursive: true, force: true });
});

describe('mqtt source: max_payload_bytes', () => {
  for (const protocol of [5, 4] as const) {
    it(`MQTT ${protocol === 5 ? '5' : '3.1.1'}: oversized messages are counted and acknowledged without a record; the subscription goes on`, async () => {
      const options = { protocol_version: protocol, client_id: `cap-${protocol}`, session: 'persistent', payload: 'text', max_payload_bytes: 1000 };
      const first = await startSource(broker, options);
      await publish(broker, [
        ['cap/a', Buffer.from('small-1')],
        ['cap/a', Buffer.alloc(1500, 0x61)], // over the cap, within the MQTT 5 packet limit: refused here
        ['cap/a', Buffer.alloc(200_000, 0x62)], // far over: MQTT 5 brokers never send it
        ['cap/a', Buffer.from('small-2')],
      ]);
      await first.waitFor(() => first.records.length === 2, 'both small messages');
      await first.stop();
      assert.deepEqual(payloads(first), ['small-1', 'small-2']);
      if (protocol === 5) {
        assert.deepEqual(first.publishes, [7, 1500, 7], 'the broker kept the 200 kB message to itself');
        assert.equal(first.counts.get('payload_too_large'), 1);
      } else {
        assert.deepEqual(first.publishes, [7, 1500, 200_000, 7]);
        assert.equal(first.counts.get('payload_too_large'), 2);
      }
      // Acknowledged: the same session, resumed, gets nothing of them again, only what comes next.
      const second = await startSource(broker, options);
      await publish(broker, [['cap/a', Buffer.from('small-3')]]);
      await second.waitFor(() => second.records.length === 1, 'the next message');
      await second.stop();
      assert.deepEqual(payloads(second), ['small-3']);
      assert.deepEqual(second.publishes, [7], 'nothing was redelivered');
    });
  }

  it('the default is 1MiB; sizes are written as sizes', () => {
    const parse = (extra: Record<string, unknown>) => mqttSource.options.parse({ url: 'mqtt://h', topics: [{ filter: 'x' }], ...extra });
    assert.equal(parse({}).max_payload_bytes, 1024 * 1024);
    assert.equal(parse({ max_payload_bytes: '64KiB' }).max_payload_bytes, 65_536);
    assert.throws(() => parse({ max_payload_bytes: 0 }));
  });
});

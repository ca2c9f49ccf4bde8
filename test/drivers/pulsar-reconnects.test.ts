/**
 * How the Pulsar sink (WebSocket transport) counts reconnects (edge_sink_events_total{event="reconnects"}):
 * once each time the broker is reached again after it was lost, however many producers open again. Against
 * a small stand-in for the broker's web service (plain HTTP for the probe, WebSocket producers that
 * acknowledge every message) that drops its connections on demand: deterministic where the real broker's
 * restart is slow on a loaded machine (the sink contract checks the same against the real broker).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { pulsarSink } from '../../drivers/sinks/pulsar/index.ts';
import { driverEnv } from '../../agent/hosting/driver-env.ts';
import { silentLogger } from '../../agent/log.ts';
import type { OutgoingBatch } from '../../agent/sdk/index.ts';

function batch(stream: string, seq: number): OutgoingBatch {
  return { device: 'gw', stream, epoch: '00', seq, count: 1, bytes: new Uint8Array([seq]) };
}

/** The broker's web service: the probe's GET answers, each producer's message gets an `ok` receipt. */
async function fakeBroker() {
  const producers = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_req, res) => res.end('[]'));
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      producers.add(ws);
      ws.on('close', () => producers.delete(ws));
      ws.on('message', (data) => {
        const { context } = JSON.parse(String(data)) as { context: string };
        ws.send(JSON.stringify({ result: 'ok', messageId: `m-${context}`, context }));
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    producers,
    /** Drops every producer connection, as a broker that restarts or a link that breaks does. */
    async dropAll(): Promise<void> {
      const closed = [...producers].map((ws) => new Promise((resolve) => ws.once('close', resolve)));
      for (const ws of producers) ws.terminate();
      await Promise.all(closed);
    },
    close: () => {
      wss.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

test('pulsar (websocket): one reconnect per loss of the broker, however many producers open again', async () => {
  const broker = await fakeBroker();
  after(() => broker.close());
  const env = driverEnv({ log: silentLogger, baseDir: process.cwd() });
  const sink = await pulsarSink.create(pulsarSink.options.parse({ url: broker.url, reconnect: { initial_delay: '20ms', max_delay: '100ms' } }), {
    ...env,
    device: 'gw',
  });
  const reconnects = () => env.counters.snapshot().reconnects ?? 0;
  try {
    await sink.connect();
    await sink.write(batch('a', 1));
    await sink.write(batch('b', 1));
    assert.equal(broker.producers.size, 2, 'a producer per stream');
    assert.equal(reconnects(), 0, 'the first connections are not reconnects');

    await broker.dropAll();
    // A write may meet the loss before the sink noticed it (retryable): the runtime sends again.
    const resend = async (stream: string, seq: number) => {
      for (let i = 0; ; i++) {
        try {
          return await sink.write(batch(stream, seq));
        } catch (err) {
          if (i >= 5) throw err;
          await sink.waitConnected(AbortSignal.timeout(10_000));
        }
      }
    };
    await resend('a', 2);
    await resend('b', 2);
    assert.equal(broker.producers.size, 2, 'both producers open again');
    assert.equal(reconnects(), 1, 'one loss, one reconnect: not one per producer');

    await broker.dropAll();
    await resend('a', 3);
    assert.equal(reconnects(), 2, 'the next loss counts again');
    await resend('b', 3);
    assert.equal(reconnects(), 2);
  } finally {
    await sink.close();
  }
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { MqttConnection } from '../../drivers/sinks/mqtt/connection.ts';
import { startMosquitto, type Mosquitto } from '../../scripts/lib/mosquitto.ts';
import { silentLogger } from '../../agent/log.ts';
import type { ProblemReporter } from '../../agent/sdk/index.ts';

// Two gateways given the same device id connect with the same client id and knock each other off the broker
// in a loop. Against a real Mosquitto, two connections with one client id: the problem is named as such.

interface Report {
  kind: string;
  message: string;
  fields: Record<string, unknown>;
}

function twin(broker: Mosquitto, protocolVersion: 4 | 5, reports: Report[], onReport: () => void): MqttConnection {
  const problems: ProblemReporter = {
    report: (kind, message, fields = {}) => {
      reports.push({ kind, message, fields });
      onReport();
    },
  };
  return new MqttConnection(
    broker.url,
    { clientId: `gw-twin-${protocolVersion}`, protocolVersion, reconnectPeriod: 0, clean: true },
    { initialMs: 20, maxMs: 100 },
    silentLogger,
    problems,
  );
}

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.stop();
  rmSync(broker.dir, { recursive: true, force: true });
});

describe('mqtt connection: a client id used twice', () => {
  for (const protocol of [5, 4] as const) {
    it(`MQTT ${protocol === 5 ? '5' : '3.1.1'}: reported as another client with the same client id`, async () => {
      const reports: Report[] = [];
      const { promise: reported, resolve } = Promise.withResolvers<void>();
      const timer = setTimeout(() => resolve(), 30_000);
      const a = twin(broker, protocol, reports, () => resolve());
      const b = twin(broker, protocol, reports, () => resolve());
      try {
        await reported;
      } finally {
        clearTimeout(timer);
        await Promise.all([a.close(), b.close()]);
      }
      assert.ok(reports.length >= 1, 'the takeover was reported');
      const first = reports[0]!;
      assert.equal(first.kind, 'client_id_taken_over');
      assert.equal(first.message, `another client connected with client id gw-twin-${protocol} (duplicate device id?)`);
      assert.equal(first.fields.client_id, `gw-twin-${protocol}`);
      if (protocol === 5) assert.match(String(first.fields.evidence), /0x8E|3 connections in a row/);
      // Mosquitto (2.0) closes the older connection without a DISCONNECT, whichever the protocol.
      else assert.match(String(first.fields.evidence), /3 connections in a row/);
    });
  }

  it('MQTT 5: a DISCONNECT with reason 0x8E (session taken over) is reported at once', async () => {
    // Mosquitto 2.0 closes the older connection silently; brokers that follow MQTT 5 (3.14.2.1) say why.
    // A stand-in that does exactly that, speaking MQTT 5 through mqtt-packet.
    const byId = new Map<string, Socket>();
    const server = createServer((socket) => {
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      parser.on('packet', (packet) => {
        if (packet.cmd !== 'connect') return;
        const older = byId.get(packet.clientId);
        if (older) older.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0x8e }, { protocolVersion: 5 }));
        byId.set(packet.clientId, socket);
        socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, { protocolVersion: 5 }));
      });
      socket.on('data', (data) => parser.parse(data));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const standIn = { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}` } as Mosquitto;
    const reports: Report[] = [];
    const { promise: reported, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(() => resolve(), 20_000);
    const a = twin(standIn, 5, reports, () => resolve());
    await a.waitConnected(AbortSignal.timeout(20_000));
    const b = twin(standIn, 5, reports, () => resolve());
    try {
      await reported;
    } finally {
      clearTimeout(timer);
      await Promise.all([a.close(), b.close()]);
      server.close();
      for (const socket of byId.values()) socket.destroy();
    }
    assert.equal(reports[0]?.kind, 'client_id_taken_over', 'the takeover was reported');
    assert.match(String(reports[0]!.fields.evidence), /taken over by another connection \(MQTT 5 reason 0x8E\)/);
  });

  it('one client alone, reconnecting after the broker restarts, is not reported', { timeout: 60_000 }, async () => {
    const reports: Report[] = [];
    const a = twin(broker, 5, reports, () => {});
    try {
      await a.waitConnected(AbortSignal.timeout(20_000));
      const reconnected = new Promise<void>((resolve) => a.client.once('connect', () => resolve()));
      await broker.stop();
      await broker.restart();
      await reconnected;
    } finally {
      await a.close();
    }
    assert.deepEqual(reports, []);
  });
});

/**
 * A FAKE MQTT broker for tests: it completes CONNECT (CONNACK, MQTT 5 or 3.1.1), answers PINGREQ, and
 * ignores every PUBLISH, so no batch is ever acknowledged. No real broker does that on purpose; it stands in
 * for one that accepts connections and then loses everything (a stuck bridge, a full disk).
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

export interface SilentBroker {
  url: string;
  /** PUBLISH packets received (and never acknowledged). */
  publishes(): number;
  close(): Promise<void>;
}

export async function startSilentBroker(): Promise<SilentBroker> {
  const sockets = new Set<Socket>();
  let publishes = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let version: 4 | 5 = 4;
    let parser: ReturnType<typeof mqttPacket.parser> | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (!parser) {
        // The first bytes are the CONNECT, whose protocol level follows the "MQTT" name: parse with that version.
        const name = chunk.indexOf('MQTT');
        version = name >= 0 && chunk[name + 4] === 5 ? 5 : 4;
        parser = mqttPacket.parser({ protocolVersion: version });
        parser.on('error', () => socket.destroy());
        parser.on('packet', (packet) => {
          if (packet.cmd === 'connect') {
            socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, { protocolVersion: version }));
          } else if (packet.cmd === 'pingreq') socket.write(mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion: version }));
          else if (packet.cmd === 'publish') publishes++;
        });
      }
      parser.parse(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    publishes: () => publishes,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

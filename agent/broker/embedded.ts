import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { AgentError } from '../errors.ts';

export interface EmbeddedBroker {
  url: string;
  close(): Promise<void>;
}

/**
 * An in-process MQTT broker (aedes) for the demo and for a gateway that is itself the site's broker. In
 * memory only: it is not where durability lives (the queue is).
 */
export async function startEmbeddedBroker(host: string, port: number): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) => reject(new AgentError('BROKER_FAILED', `embedded broker cannot listen on ${host}:${port}`, { cause })));
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => broker.close(() => resolve()));
        // Open client sockets would hold server.close back.
        server.unref();
        for (const client of Object.values((broker as unknown as { clients: Record<string, { close(): void }> }).clients)) client.close();
      }),
  };
}

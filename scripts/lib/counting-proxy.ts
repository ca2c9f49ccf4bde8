import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a loopback port in front of `target` that counts every byte it forwards, each direction on
 * its own (`out`: from the agent towards the broker; `in`: back), and can cut the link. It stands for the
 * metered uplink whose bill the governor must keep: what it counts is what a carrier would charge.
 */
export class CountingProxy {
  readonly port: number;
  out = 0;
  in = 0;
  connections = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cut = false;

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(targetPort: number): Promise<CountingProxy> {
    let proxy: CountingProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy = new CountingProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get total(): number {
    return this.in + this.out;
  }

  private accept(client: Socket, targetPort: number): void {
    if (this.cut) {
      client.resetAndDestroy();
      return;
    }
    this.connections++;
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.once('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => {
      this.out += d.length;
      if (!upstream.write(d)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (d: Buffer) => {
      // Counted once handed to the agent's socket: bytes a reset threw away never reached the agent.
      const ok = client.write(d, (err) => {
        if (!err) this.in += d.length;
      });
      if (!ok) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
  }

  cutLink(): void {
    this.cut = true;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  restore(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.cutLink();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

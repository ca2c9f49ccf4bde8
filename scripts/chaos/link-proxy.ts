import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a loopback port in front of `target`, owned by this process, whose link can be cut: every
 * open connection is reset and new ones are dropped at once until `restore()`. Stands for the gateway's
 * uplink (a cable pulled, a modem gone) between the agent and the centre's broker.
 */
export class LinkProxy {
  readonly port: number;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cut = false;

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<LinkProxy> {
    let proxy: LinkProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy = new LinkProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get isCut(): boolean {
    return this.cut;
  }

  private accept(client: Socket, targetPort: number, targetHost: string): void {
    if (this.cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ port: targetPort, host: targetHost });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.once('close', () => {
        this.sockets.delete(s);
        // One side gone: the other goes too, as a broken path would take both.
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** The link goes down: open connections are reset, new ones refused until `restore()`. */
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

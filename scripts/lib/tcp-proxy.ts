import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * The shared part of the test proxies (scripts/chaos/link-proxy.ts, scripts/lib/counting-proxy.ts): a TCP
 * proxy on a loopback port in front of a target, owned by this process, whose link can be cut: every open
 * connection is reset and new ones are dropped at once until `restore()`. Subclasses decide how bytes are
 * forwarded (`forward`) and may count connections (`opened`).
 */
export class TcpProxy {
  private listeningPort = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private cut = false;
  private readonly targetPort: number;
  private readonly targetHost: string;

  protected constructor(targetPort: number, targetHost: string) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
  }

  /** Listens on a free loopback port; resolves once it accepts. */
  protected async listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    this.server = server;
    this.listeningPort = (server.address() as { port: number }).port;
  }

  get port(): number {
    return this.listeningPort;
  }

  get isCut(): boolean {
    return this.cut;
  }

  /** Called for each connection let through, before the upstream connection is opened. */
  protected opened(): void {}

  /** Moves bytes both ways between the two connected sockets. */
  protected forward(client: Socket, upstream: Socket): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private accept(client: Socket): void {
    if (this.cut) {
      client.resetAndDestroy();
      return;
    }
    this.opened();
    const upstream = connect({ port: this.targetPort, host: this.targetHost });
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
    this.forward(client, upstream);
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
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

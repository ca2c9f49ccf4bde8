import type { Socket } from 'node:net';
import { TcpProxy } from './tcp-proxy.ts';

/**
 * A TCP proxy on a loopback port in front of `target` that counts every byte it forwards, each direction on
 * its own (`out`: from the agent towards the broker; `in`: back), and can cut the link. It stands for the
 * metered uplink whose bill the governor must keep: what it counts is what a carrier would charge.
 */
export class CountingProxy extends TcpProxy {
  out = 0;
  in = 0;
  connections = 0;

  static async start(targetPort: number): Promise<CountingProxy> {
    const proxy = new CountingProxy(targetPort, '127.0.0.1');
    await proxy.listen();
    return proxy;
  }

  get total(): number {
    return this.in + this.out;
  }

  protected override opened(): void {
    this.connections++;
  }

  protected override forward(client: Socket, upstream: Socket): void {
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
}

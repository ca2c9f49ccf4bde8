import { TcpProxy } from '../lib/tcp-proxy.ts';

/**
 * A TCP proxy on a loopback port in front of `target`, owned by this process, whose link can be cut: every
 * open connection is reset and new ones are dropped at once until `restore()`. Stands for the gateway's
 * uplink (a cable pulled, a modem gone) between the agent and the centre's broker.
 */
export class LinkProxy extends TcpProxy {
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<LinkProxy> {
    const proxy = new LinkProxy(targetPort, targetHost);
    await proxy.listen();
    return proxy;
  }
}

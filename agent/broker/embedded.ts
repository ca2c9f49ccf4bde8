import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, isIP, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { AgentError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { OutgoingQueues } from './outgoing-queue.ts';

export interface EmbeddedBroker {
  url: string;
  close(): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  /** Largest MQTT packet accepted, in bytes (default 1 MiB): a larger one closes its connection before its body is read. */
  maxPacketBytes?: number;
  /** When set, every client must CONNECT with this user name and password. */
  credentials?: { username: string; password: string } | undefined;
  log?: Logger;
}

export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;

/** The parser state aedes keeps per connection (mqtt-packet's), as far as the size limit needs it. */
interface PacketParser {
  packet: { length: number; cmd: string };
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

/**
 * An in-process MQTT broker (aedes) for the demo and for a gateway that is itself the site's broker. In
 * memory only: it is not where durability lives (the queue is).
 *
 * aedes itself has no authentication and no packet size limit: its parser buffers a packet whole, whatever
 * length its header declares. Here the declared length is checked as soon as it is read, before any of the
 * body is kept, and credentials are checked at CONNECT when configured.
 */
export async function startEmbeddedBroker(host: string, port: number, options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const { maxPacketBytes = DEFAULT_MAX_PACKET_BYTES, credentials, log = silentLogger } = options;
  const broker = await Aedes.createBroker(credentials ? { authenticate: checkCredentials(credentials) } : {});
  // aedes' own queue for persistent sessions sends QoS 2 messages twice across reconnects (outgoing-queue.ts).
  OutgoingQueues.install((broker as unknown as { persistence: object }).persistence);
  broker.on('clientError', (client: Client, err: Error) => log.debug({ client: client.id, err: err.message }, 'embedded broker: client error'));
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    const client = broker.handle(socket) as unknown as { _parser: PacketParser };
    limitPacketSize(client._parser, maxPacketBytes, () =>
      log.warn(
        { remote: socket.remoteAddress, max_packet_bytes: maxPacketBytes },
        'embedded broker: packet larger than broker.max_packet_bytes; connection closed',
      ),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) => reject(new AgentError('BROKER_FAILED', `embedded broker cannot listen on ${host}:${port}`, { cause })));
    server.listen(port, host, () => resolve());
  });
  if (!isLoopback(host)) {
    log.warn(
      { host, authentication: credentials !== undefined },
      credentials
        ? 'embedded broker listens beyond this machine (broker.host is not a loopback address)'
        : 'embedded broker listens beyond this machine (broker.host is not a loopback address) WITHOUT authentication: anyone who can reach it may publish and subscribe; set broker.username and broker.password_file',
    );
  }
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

/**
 * Makes the connection's parser refuse a packet whose declared remaining length exceeds `max`, right after
 * the length is read: the connection is closed (an error on the parser) and the body is never buffered.
 */
function limitPacketSize(parser: PacketParser, max: number, onRefused: () => void): void {
  const parseLength = parser._parseLength;
  parser._parseLength = function (this: PacketParser) {
    const done = parseLength.call(this);
    if (done && this.packet.length > max) {
      onRefused();
      this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds the maximum of ${max}`));
      return false;
    }
    return done;
  };
}

/** CONNACK return code 4 (MQTT 3.1.1): bad user name or password. aedes' own name for it is a const enum. */
const BAD_USER_NAME_OR_PASSWORD = 4 as NonNullable<Parameters<Parameters<NonNullable<AedesOptions['authenticate']>>[3]>[0]>['returnCode'];

/** aedes' authenticate hook: the configured user name and password, compared in constant time. */
function checkCredentials(expected: { username: string; password: string }): NonNullable<AedesOptions['authenticate']> {
  const digest = (value: string | Buffer) => createHash('sha256').update(value).digest();
  const user = digest(expected.username);
  const password = digest(expected.password);
  return (_client, username, given, callback) => {
    const ok = timingSafeEqual(digest(username ?? ''), user) && timingSafeEqual(digest(given ?? Buffer.alloc(0)), password);
    if (ok) return callback(null, true);
    // returnCode 4 (MQTT 3.1.1: bad user name or password) in the CONNACK aedes sends back.
    callback(Object.assign(new Error('bad user name or password'), { returnCode: BAD_USER_NAME_OR_PASSWORD }), null);
  };
}

/** 127.0.0.0/8, ::1 and `localhost`: reachable from this machine only. */
function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

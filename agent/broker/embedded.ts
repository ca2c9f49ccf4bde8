// Before aedes: the packet writer it uses set up (in the executable, its lazy script does the same first).
import './packet-writer.ts';
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, isIP, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { AgentError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { RateLimitedProblems } from '../telemetry/problems.ts';
import { Telemetry } from '../telemetry/registry.ts';
import { ENTRY_OVERHEAD_BYTES, OutgoingQueues, type OutgoingLimits } from './outgoing-queue.ts';
import { RetainedBound, type RetainedLimits } from './retained-store.ts';
import { limitSubscriptions } from './subscription-limit.ts';
import { UnreleasedBound, type UnreleasedLimits } from './unreleased-store.ts';

export interface EmbeddedBroker {
  url: string;
  /** Its queues of persistent sessions and its retained messages, with their byte accounting. */
  holdings: EmbeddedBrokerHoldings;
  close(): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  /** Largest MQTT packet accepted, in bytes (default 1 MiB): a larger one closes its connection before its body is read. */
  maxPacketBytes?: number;
  /** When set, every client must CONNECT with this user name and password. */
  credentials?: { username: string; password: string } | undefined;
  /** Bytes of QoS 1/2 messages held for persistent-session subscribers, per client and in all (outgoing-queue.ts). */
  queueLimits?: Partial<OutgoingLimits>;
  /** Retained messages kept, in count and bytes (retained-store.ts). */
  retainedLimits?: Partial<RetainedLimits>;
  /** Bytes of received QoS 2 messages not yet released by their publisher, per client and in all (unreleased-store.ts). */
  unreleasedLimits?: Partial<UnreleasedLimits>;
  /** Topic filters one client may hold (default 1,000); a further one is refused in the SUBACK (subscription-limit.ts). */
  maxSubscriptionsPerClient?: number;
  /** Client connections open at once (default 1,000); a further one is closed as it arrives, and counted. */
  maxConnections?: number;
  /** Where the drops and refusals are counted (the agent's registry; a private one when not given). */
  telemetry?: Telemetry;
  log?: Logger;
}

export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;
const MiB = 1024 * 1024;
export const DEFAULT_QUEUE_LIMITS: OutgoingLimits = { maxBytesPerClient: 16 * MiB, maxBytes: 64 * MiB };
export const DEFAULT_RETAINED_LIMITS: RetainedLimits = { maxCount: 10_000, maxBytes: 16 * MiB };
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;
export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_UNRELEASED_LIMITS: UnreleasedLimits = { maxBytesPerClient: 4 * MiB, maxBytes: 16 * MiB };

/** What the running broker holds, for tests and diagnostics. */
export interface EmbeddedBrokerHoldings {
  readonly queues: OutgoingQueues;
  readonly retained: RetainedBound;
  readonly unreleased: UnreleasedBound;
}

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
  const { maxPacketBytes = DEFAULT_MAX_PACKET_BYTES, credentials, log = silentLogger, telemetry = new Telemetry() } = options;
  const { maxSubscriptionsPerClient = DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT, maxConnections = DEFAULT_MAX_CONNECTIONS } = options;
  const subscriptionsRefused = telemetry.counter(
    'edge_broker_subscriptions_refused_total',
    'Topic filters the embedded broker refused because their client held broker.max_subscriptions_per_client',
  );
  const subscriptionProblems = new RateLimitedProblems({ add: (_kind, n) => subscriptionsRefused.inc(undefined, n) }, log);
  const broker = await Aedes.createBroker({
    ...(credentials ? { authenticate: checkCredentials(credentials) } : {}),
    authorizeSubscribe: limitSubscriptions(maxSubscriptionsPerClient, (client, topic) =>
      subscriptionProblems.report(
        'subscriptions_refused',
        'embedded broker: subscription refused, the client holds broker.max_subscriptions_per_client topic filters',
        { client, topic, max: maxSubscriptionsPerClient },
      ),
    ),
  });
  const persistence = (broker as unknown as { persistence: Parameters<typeof RetainedBound.install>[0] }).persistence;
  const holdings = boundHoldings(persistence, { ...options, maxPacketBytes }, telemetry, log);
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
  // Every connection costs a socket and a parser's buffers: beyond the bound the kernel's accept is closed at once.
  server.maxConnections = maxConnections;
  const connectionsRefused = telemetry.counter(
    'edge_broker_connections_refused_total',
    'Client connections the embedded broker closed on arrival because broker.max_connections were open',
  );
  const connectionProblems = new RateLimitedProblems({ add: (_kind, n) => connectionsRefused.inc(undefined, n) }, log);
  server.on('drop', (drop) =>
    connectionProblems.report('connections_refused', 'embedded broker: connection refused, broker.max_connections are open', {
      remote: drop?.remoteAddress,
      max: maxConnections,
    }),
  );
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
    holdings,
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
 * Puts the bounds on what clients can make the broker hold: the queues of persistent sessions (aedes' own
 * queue also sends QoS 2 messages twice across reconnects, outgoing-queue.ts), the retained messages and the
 * received QoS 2 messages awaiting their PUBREL. Each
 * message dropped or refused is counted by reason; the log gets it rate-limited (a flood is one line per 10 s).
 */
function boundHoldings(
  persistence: Parameters<typeof RetainedBound.install>[0],
  options: EmbeddedBrokerOptions & { maxPacketBytes: number },
  telemetry: Telemetry,
  log: Logger,
): EmbeddedBrokerHoldings {
  const dropped = telemetry.counter(
    'edge_broker_queue_dropped_total',
    'QoS 1/2 messages the embedded broker dropped from a persistent-session queue, oldest first, by bound reached',
    ['reason'],
  );
  const refused = telemetry.counter(
    'edge_broker_retained_refused_total',
    'Retained messages the embedded broker delivered but did not keep, by bound reached',
    ['reason'],
  );
  const queueProblems = new RateLimitedProblems({ add: (reason, n) => dropped.inc({ reason }, n) }, log);
  const retainedProblems = new RateLimitedProblems({ add: (reason, n) => refused.inc({ reason }, n) }, log);
  // Never below one packet of the largest size allowed: a bound smaller than a message would drop every such
  // message at once (and close a live subscriber's connection for it, or refuse a QoS 2 publisher for ever).
  const onePacket = options.maxPacketBytes + ENTRY_OVERHEAD_BYTES;
  const queueLimits = atLeast({ ...DEFAULT_QUEUE_LIMITS, ...options.queueLimits }, onePacket);
  const retainedLimits = { ...DEFAULT_RETAINED_LIMITS, ...options.retainedLimits };
  const queues = OutgoingQueues.install(persistence, queueLimits, (drop) =>
    queueProblems.report(
      drop.reason,
      drop.reason === 'client_bytes'
        ? "embedded broker: a persistent-session subscriber's queue is full (broker.max_queued_bytes_per_client); its oldest message was dropped"
        : 'embedded broker: the queues of persistent sessions are full (broker.max_queued_bytes); the oldest message was dropped',
      { client: drop.clientId, topic: drop.topic, max_bytes: drop.reason === 'client_bytes' ? queueLimits.maxBytesPerClient : queueLimits.maxBytes },
    ),
  );
  const retained = RetainedBound.install(persistence, retainedLimits, (reason, topic) =>
    retainedProblems.report(
      reason,
      reason === 'retained_count'
        ? 'embedded broker: retained message not kept, broker.max_retained_messages reached (it was delivered to present subscribers)'
        : 'embedded broker: retained message not kept, broker.max_retained_bytes reached (it was delivered to present subscribers)',
      { topic, max: reason === 'retained_count' ? retainedLimits.maxCount : retainedLimits.maxBytes },
    ),
  );
  const unreleasedRefused = telemetry.counter(
    'edge_broker_unreleased_refused_total',
    "QoS 2 messages the embedded broker refused (closing the publisher's connection, which sends them again) because its publishers' unreleased messages reached a bound",
    ['reason'],
  );
  const unreleasedProblems = new RateLimitedProblems({ add: (reason, n) => unreleasedRefused.inc({ reason }, n) }, log);
  const unreleasedLimits = atLeast({ ...DEFAULT_UNRELEASED_LIMITS, ...options.unreleasedLimits }, onePacket);
  const unreleased = UnreleasedBound.install(persistence, unreleasedLimits, (reason, clientId) =>
    unreleasedProblems.report(
      reason,
      reason === 'client_bytes'
        ? 'embedded broker: a QoS 2 publisher has too many messages it has not released (broker.max_unreleased_bytes_per_client); its connection is closed, it will send them again'
        : 'embedded broker: QoS 2 publishers have too many messages they have not released (broker.max_unreleased_bytes); a connection is closed, its publisher will send again',
      { client: clientId, max_bytes: reason === 'client_bytes' ? unreleasedLimits.maxBytesPerClient : unreleasedLimits.maxBytes },
    ),
  );
  return { queues, retained, unreleased };
}

/** Both bounds raised to `floor` where below it, the bound across clients to the one per client. */
function atLeast<L extends { maxBytesPerClient: number; maxBytes: number }>(limits: L, floor: number): L {
  const maxBytesPerClient = Math.max(limits.maxBytesPerClient, floor);
  return { ...limits, maxBytesPerClient, maxBytes: Math.max(limits.maxBytes, maxBytesPerClient) };
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

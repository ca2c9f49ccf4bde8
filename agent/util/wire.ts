/**
 * Counting bytes on the wire (docs/governor.md): a connection hands every socket it opens to a meter, which
 * reads the socket's own counts as they grow and once more as it closes. Under TLS the socket the meter is
 * given is the raw TCP one beneath, so TLS records and handshakes count, not only the plaintext.
 */
import { connect as tcpConnect } from 'node:net';

/** A socket's own byte counts, read as they grow and once more when it closes. */
export interface MeteredSocket {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  once(event: 'close', listener: () => void): unknown;
}

export interface WireMeter {
  socket(socket: MeteredSocket): void;
}

const TLS_PROTOCOLS = new Set(['mqtts', 'ssl', 'tls']);

/**
 * Hands every socket an mqtt.js client opens (each reconnect's too) to `wire`. The client must have been
 * created with `manualConnect: true`; call `client.connect()` after this. For mqtts the TCP socket is opened
 * here and given to the TLS layer (`socket` option), so the meter sees the encrypted bytes.
 */
export function meterMqttClient(client: object, wire: WireMeter): void {
  const c = client as { streamBuilder: (client: unknown) => MeteredSocket; options: Record<string, unknown> };
  const build = c.streamBuilder;
  c.streamBuilder = (arg) => {
    const options = c.options;
    if (!TLS_PROTOCOLS.has(String(options.protocol))) {
      const socket = build(arg);
      wire.socket(socket);
      return socket;
    }
    const raw = tcpConnect({ host: String(options.hostname ?? options.host ?? 'localhost'), port: Number(options.port ?? 8883) });
    wire.socket(raw);
    options.socket = raw;
    try {
      return build(arg);
    } finally {
      delete options.socket;
    }
  };
}

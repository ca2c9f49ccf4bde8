/**
 * Bytes on the wire, from the sockets themselves: what the kernel was handed and what it delivered, so TLS
 * records, MQTT framing, keepalives and every connection attempt (a refused handshake included) count. Open
 * sockets are sampled whenever the governor looks, and each one a last time as it closes.
 */
import type { MeteredSocket, WireMeter } from '../util/wire.ts';
import type { Counter, Telemetry } from '../telemetry/registry.ts';

export const LINK_BYTES = 'edge_link_bytes_total';
export const LINK_BYTES_HELP = 'Bytes on the wire (TLS, protocol framing and every connection attempt included)';

interface Tracked {
  read: number;
  written: number;
}

export class SocketMeter implements WireMeter {
  private readonly open = new Map<MeteredSocket, Tracked>();
  private readonly counter: Counter;
  private readonly connection: string;
  /** Told of every byte counted (the budget). */
  private readonly onBytes: (inBytes: number, outBytes: number) => void;

  constructor(counter: Counter, connection: string, onBytes: (inBytes: number, outBytes: number) => void) {
    this.counter = counter;
    this.connection = connection;
    this.onBytes = onBytes;
  }

  socket(socket: MeteredSocket): void {
    if (this.open.has(socket)) return;
    this.open.set(socket, { read: 0, written: 0 });
    socket.once('close', () => {
      this.sampleOne(socket);
      this.open.delete(socket);
    });
  }

  private sampleOne(socket: MeteredSocket): void {
    const t = this.open.get(socket);
    if (!t) return;
    const read = socket.bytesRead ?? 0;
    const written = socket.bytesWritten ?? 0;
    const dIn = Math.max(0, read - t.read);
    const dOut = Math.max(0, written - t.written);
    t.read = Math.max(t.read, read);
    t.written = Math.max(t.written, written);
    if (dIn > 0) this.counter.inc({ direction: 'in', connection: this.connection }, dIn);
    if (dOut > 0) this.counter.inc({ direction: 'out', connection: this.connection }, dOut);
    if (dIn + dOut > 0) this.onBytes(dIn, dOut);
  }

  /** Takes what every open socket moved since the last look. */
  sample(): void {
    for (const socket of this.open.keys()) this.sampleOne(socket);
  }
}

/**
 * The sink's bytes on the wire in an agent without a governor (a governor counts them itself): the same
 * counter, its open sockets sampled at each collection (a scrape of /metrics, `status`).
 */
export function ungovernedSinkWire(t: Telemetry): SocketMeter {
  let meter: SocketMeter | undefined;
  const counter = t.counter(LINK_BYTES, LINK_BYTES_HELP, ['direction', 'connection'], () => meter?.sample());
  meter = new SocketMeter(counter, 'sink', () => {});
  return meter;
}

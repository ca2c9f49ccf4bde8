import { createServer, type Server, type Socket } from 'node:net';
import { AgentError, type DriverEnv, type ServiceSource, type SourceContext, type z } from '../../../agent/sdk/index.ts';
import { SeenWindow } from '../../common/seen-window.ts';
import { type AckCode, buildAck } from './ack.ts';
import { MllpConnection } from './connection.ts';
import type { Frame } from './mllp.ts';
import type { hl7SourceOptions } from './options.ts';
import { parseListen } from './options.ts';
import { Hl7ParseError, parseMessage, readHeader } from './parse.ts';
import { messageKey, messageRecord } from './record.ts';

type Options = z.output<ReturnType<typeof hl7SourceOptions>>;

/**
 * An MLLP listener: each HL7 v2 message becomes one record, committed before its AA is sent. A message sent
 * again (its ACK was lost to a crash or a dropped link) is recognised by its sender and control id in a window
 * committed with the records, answered AA and not queued twice.
 */
export class Hl7Source implements ServiceSource {
  private readonly options: Options;
  private server: Server | undefined;
  private readonly connections = new Set<MllpConnection>();
  private ctx: SourceContext | undefined;
  private seen: SeenWindow | undefined;
  /** Messages emitted and not yet committed, by key: a repeat meanwhile waits for the first one's outcome. */
  private readonly pending = new Map<string, Promise<void>>();
  private failed = false;
  /** Set by stop: no message is emitted after it (the sender gets no ACK and sends it again). */
  private stopping = false;
  /** Every emit not yet settled, so stop can wait for them: nothing is emitted once stop has resolved. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(options: Options, _env: DriverEnv) {
    this.options = options;
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.failed = false;
    this.stopping = false;
    this.seen = new SeenWindow(this.options.dedup_window, ctx.cursor);
    const { host, port } = parseListen(this.options.listen)!;
    const server = createServer((socket) => this.accept(socket));
    server.maxConnections = this.options.max_connections;
    server.on('drop', () =>
      ctx.problems.report('connections_refused', 'a sender was refused: max_connections reached', { max_connections: this.options.max_connections }),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new AgentError('SOURCE_FAILED', `hl7 source cannot listen on ${this.options.listen}`, { cause: err })));
      server.listen({ host, port }, () => resolve());
    });
    server.on('error', (err) => ctx.fail(err));
    this.server = server;
    const address = server.address();
    ctx.log.info(
      { listen: typeof address === 'object' && address ? `${address.address}:${address.port}` : this.options.listen },
      'hl7 source listening (MLLP)',
    );
  }

  /** The port bound (a test asks for port 0). */
  get port(): number | undefined {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.inFlight]);
  }

  private accept(socket: Socket): void {
    const ctx = this.ctx!;
    ctx.counters.add('connections');
    const connection = new MllpConnection(
      socket,
      this.options.max_message_bytes,
      this.options.idle_timeout,
      (frame) => this.answer(frame),
      (bytes) => ctx.problems.report('stray_bytes', 'bytes outside an MLLP frame were skipped', { bytes, remote: socket.remoteAddress }),
    );
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  /** The ACK for one frame, or undefined when the message could not be committed (the connection closes). */
  private async answer(frame: Frame): Promise<Buffer | undefined> {
    const ctx = this.ctx!;
    if (frame.kind === 'oversized')
      return this.refuse('AR', frame.head, `message of ${frame.bytes} bytes is over max_message_bytes (${this.options.max_message_bytes})`, 'too_large');
    let parsed: ReturnType<typeof parseMessage>;
    let record: ReturnType<typeof messageRecord>;
    try {
      parsed = parseMessage(frame.bytes, this.options.default_charset);
      record = messageRecord(parsed, this.options.keep_raw);
    } catch (err) {
      if (!(err instanceof Hl7ParseError)) throw err;
      return this.refuse(err.severity === 'reject' ? 'AR' : 'AE', frame.bytes, err.message, err.severity === 'reject' ? 'rejected' : 'malformed');
    }
    const header = readHeader(frame.bytes);
    const key = messageKey(parsed.segments[0]!, parsed.delimiters);
    const windowKey = this.options.dedup_window > 0 ? SeenWindow.key(key.sendingApplication, key.sendingFacility, key.controlId) : undefined;
    if (windowKey !== undefined && this.seen!.has(windowKey)) {
      const earlier = this.pending.get(windowKey);
      if (earlier && !(await earlier.then(() => true).catch(() => false))) return undefined;
      ctx.counters.add('duplicates');
      return buildAck('AA', header.fields, header.delimiters);
    }
    if (this.failed || this.stopping) return undefined;
    if (windowKey !== undefined) this.seen!.add(windowKey);
    const committed = ctx.emit([record], windowKey !== undefined ? { seen: this.seen!.encode() } : undefined, { commitWithinMs: this.options.commit_within });
    if (windowKey !== undefined) this.pending.set(windowKey, committed);
    this.inFlight.add(committed);
    try {
      await committed;
    } catch (err) {
      // The window in memory now holds a key whose record is not committed: only a restart from the committed
      // cursor makes it true again, so the source stops here and the runtime starts it again.
      this.failed = true;
      ctx.fail(err);
      return undefined;
    } finally {
      if (windowKey !== undefined) this.pending.delete(windowKey);
      this.inFlight.delete(committed);
    }
    ctx.counters.add('messages');
    return buildAck('AA', header.fields, header.delimiters);
  }

  private refuse(code: AckCode, bytes: Buffer, reason: string, kind: string): Buffer {
    this.ctx!.problems.report(kind, `hl7 message answered ${code}: ${reason}`, { code });
    try {
      const header = readHeader(bytes);
      return buildAck(code, header.fields, header.delimiters, reason);
    } catch {
      return buildAck(code, undefined, undefined, reason);
    }
  }
}

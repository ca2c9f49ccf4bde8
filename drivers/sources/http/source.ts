import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { AgentError, type DriverEnv, type ServiceSource, type SourceContext, describeError } from '../../../agent/sdk/index.ts';
import { decodeBody, formatOf, type Refusal } from './body.ts';
import type { HttpOptions } from './options.ts';
import { Tokens } from './tokens.ts';

/** How long `stop` lets requests in flight finish (their commit and answer) before closing every connection. */
const STOP_GRACE_MS = 5_000;

type Config = HttpOptions & { name: string; stream: string };

/** An answer: a status and a JSON body, with extra headers. */
interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * A local ingest endpoint: `POST <path>/<stream>` with JSON, JSON lines or CBOR. A request is answered 202
 * only once its records are committed to the queue (the emit resolved), so a sender that got 202 may forget
 * them; every other answer means nothing of the request was kept, and the sender should retry (after
 * Retry-After for 503). A request cut off by a crash got no answer: it may or may not have been committed,
 * and is sent again by a careful sender (a duplicate is then possible, as with any at-least-once ingest).
 */
export class HttpSource implements ServiceSource {
  private readonly config: Config;
  private readonly env: DriverEnv;
  private ctx!: SourceContext;
  private server: Server | undefined;
  private tokens: Tokens | undefined;
  private allowed = new Set<string>();
  private stopping = false;
  /** Body bytes received and not yet committed, over all requests (bounded by max_pending_bytes). */
  private pendingBytes = 0;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(config: Config, env: DriverEnv) {
    this.config = config;
    this.env = env;
  }

  /** The port listened on (useful with port 0). */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    const o = this.config;
    const what = `http source ${o.name}`;
    this.tokens = o.auth === 'token' ? Tokens.read(o, this.env.baseDir, what) : undefined;
    this.allowed = new Set(o.streams ?? [o.stream]);
    const listener = (req: IncomingMessage, res: ServerResponse) => void this.answer(req, res);
    // Node's HTTP modules are loaded when a server starts, not when the driver list is: every agent's start
    // evaluated them (≈3–5 ms), though few configs have an http source.
    const server: Server = o.tls
      ? process.getBuiltinModule('node:https').createServer(
          {
            cert: this.readPem(o.tls.cert, 'TLS certificate'),
            key: this.readPem(o.tls.key, 'TLS private key'),
            ...(o.tls.ca ? { ca: this.readPem(o.tls.ca, 'TLS CA'), requestCert: true, rejectUnauthorized: true } : {}),
          },
          listener,
        )
      : process.getBuiltinModule('node:http').createServer(listener);
    server.requestTimeout = o.request_timeout;
    server.headersTimeout = Math.min(o.request_timeout, 60_000);
    server.maxConnections = o.max_connections;
    try {
      await new Promise<void>((listening, failed) => {
        server.once('error', failed);
        server.listen(o.port, o.host, () => {
          server.off('error', failed);
          listening();
        });
      });
    } catch (cause) {
      throw new AgentError('SOURCE_FAILED', `${what}: cannot listen on ${o.host}:${o.port}: ${describeError(cause)}`, { cause, retryable: true });
    }
    server.on('error', (err) => ctx.problems.report('server_errors', 'ingest server error', { err: describeError(err) }));
    this.server = server;
    ctx.log.info({ host: o.host, port: this.port, tls: o.tls !== undefined, streams: [...this.allowed] }, 'http source listening');
  }

  private readPem(file: string, what: string): Buffer {
    const path = resolve(this.env.baseDir, file);
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new AgentError('CONFIG_INVALID', `http source ${this.config.name}: cannot read ${what} ${path}`, { cause });
    }
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => {});
    return work;
  }

  /**
   * One request: `POST <path>/<stream>` is an ingest, anything else 404. A request that fails is a 400. While
   * stopping, every answer closes its connection: the server's close then completes once the answers of the
   * requests in flight are written, instead of cutting them off (or waiting out keep-alive).
   */
  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const o = this.config;
    let answer: Answer;
    try {
      const path = (req.url ?? '/').split('?', 1)[0]!;
      const stream = path.startsWith(`${o.path}/`) ? decodeURIComponent(path.slice(o.path.length + 1)) : '';
      if (req.method === 'POST' && stream !== '' && !stream.includes('/')) answer = await this.track(this.ingest(req, res, stream));
      else answer = this.refuse({ status: 404, error: 'not_found', message: `POST records to ${o.path}/<stream>` });
    } catch (err) {
      this.ctx.problems.report('request_errors', 'an ingest request failed', { err: describeError(err) });
      answer = this.refuse({ status: 400, error: 'bad_request', message: 'the request could not be read' });
    }
    if (res.headersSent || res.destroyed) return;
    const body = JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...answer.headers,
      ...(this.stopping ? { connection: 'close' } : {}),
    });
    res.end(body);
  }

  private refuse(refusal: Refusal, headers: Record<string, string> = {}): Answer {
    if (refusal.status === 503) headers['Retry-After'] = String(Math.ceil(this.config.retry_after / 1000));
    if (refusal.status === 401) headers['WWW-Authenticate'] = 'Bearer';
    this.ctx.counters.add(`refused_${refusal.status}`);
    return { status: refusal.status, body: { error: refusal.error, message: refusal.message }, headers };
  }

  private unavailable(stream: string): Refusal | undefined {
    if (this.stopping || this.ctx.signal.aborted) return { status: 503, error: 'stopping', message: 'the agent is stopping; nothing of this request was kept' };
    if (this.ctx.queueRefuses?.(stream))
      return { status: 503, error: 'queue_full', message: `the queue is full for stream ${stream}; nothing of this request was kept` };
    return undefined;
  }

  private async ingest(req: IncomingMessage, res: ServerResponse, stream: string): Promise<Answer> {
    const o = this.config;
    if (!this.allowed.has(stream)) return this.refuse({ status: 404, error: 'unknown_stream', message: `no route for stream ${stream}` });
    if (this.tokens && !this.tokens.accepts(req.headers.authorization)) {
      this.ctx.problems.report('unauthorized', 'ingest request without an accepted token', { stream });
      return this.refuse({ status: 401, error: 'unauthorized', message: 'missing or unknown bearer token' });
    }
    const format = formatOf(req.headers['content-type']);
    if (!format) {
      return this.refuse({
        status: 415,
        error: 'unsupported_media_type',
        message: 'Content-Type must be application/json, application/x-ndjson (JSON lines) or application/cbor',
      });
    }
    const down = this.unavailable(stream);
    if (down) return this.refuse(down);
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > o.max_body_bytes) return this.tooLarge(req, res, declared);
    const reserve = Number.isFinite(declared) ? declared : 0;
    if (this.pendingBytes > 0 && this.pendingBytes + reserve > o.max_pending_bytes) {
      return this.refuse({ status: 503, error: 'busy', message: 'too much received and not yet committed; retry shortly' });
    }
    this.pendingBytes += reserve;
    let held = reserve;
    try {
      const body = await this.readBody(req, (n) => {
        this.pendingBytes += n;
        held += n;
      });
      if (body === undefined) return this.tooLarge(req, res, held);
      const decoded = decodeBody(body, format, o.max_records);
      if (!decoded.ok) {
        // The message goes to the sender only: parsers quote the body, and bodies may hold patient data.
        this.ctx.problems.report(decoded.error, 'ingest request refused', { stream, status: decoded.status });
        return this.refuse(decoded);
      }
      const late = this.unavailable(stream);
      if (late) return this.refuse(late);
      const records = decoded.records;
      try {
        await this.ctx.emit(records, undefined, { commitWithinMs: o.commit_within, ...(stream === o.stream ? {} : { stream }) });
      } catch (err) {
        this.ctx.fail(new AgentError('SOURCE_FAILED', `http source ${o.name}: records not committed`, { cause: err, retryable: true }));
        return this.refuse({ status: 503, error: 'not_committed', message: 'the records could not be committed; nothing of this request was kept' });
      }
      this.ctx.counters.add('requests');
      return { status: 202, body: { accepted: records.length } };
    } finally {
      this.pendingBytes -= held;
    }
  }

  /**
   * 413, and the connection closed once it is written: the rest of the body is not read (node:http would
   * otherwise drain it, megabytes on a fast link).
   */
  private tooLarge(req: IncomingMessage, res: ServerResponse, bytes: number): Answer {
    this.ctx.problems.report('body_too_large', 'ingest request body over max_body_bytes', { bytes, max_body_bytes: this.config.max_body_bytes });
    res.once('finish', () => req.socket.destroy());
    return this.refuse({ status: 413, error: 'body_too_large', message: `body over ${this.config.max_body_bytes} bytes` }, { Connection: 'close' });
  }

  /**
   * The body, read chunk by chunk and given up as soon as it passes max_body_bytes (undefined then): a sender
   * that declares no length, or a false one, cannot make the gateway buffer more than the cap. Bytes beyond
   * the declared length are counted as they come (`counted`).
   */
  private async readBody(req: IncomingMessage, counted: (extra: number) => void): Promise<Uint8Array | undefined> {
    const max = this.config.max_body_bytes;
    const declared = Number(req.headers['content-length'] ?? 0) || 0;
    const chunks: Buffer[] = [];
    let total = 0;
    // Left early (too large), the request stays open: the 413 is written on its connection, then it closes.
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      const before = total;
      total += chunk.byteLength;
      if (total > max) return undefined;
      if (total > declared) counted(total - Math.max(before, declared));
      chunks.push(chunk);
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((done) => server.close(() => done()));
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((done) => (timer = setTimeout(done, STOP_GRACE_MS)));
    // Requests in flight finish (commit and answer, the answer closing its connection), within the grace.
    await Promise.race([Promise.allSettled([...this.inFlight]).then(() => closed), grace]);
    clearTimeout(timer);
    server.closeAllConnections();
    await closed;
  }
}

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { AgentError, type DriverEnv, type ServiceSource, type SourceContext, describeError } from '../../../agent/sdk/index.ts';
import { decodeBody, formatOf, type Refusal } from './body.ts';
import type { HttpOptions } from './options.ts';
import { Tokens } from './tokens.ts';

/** How long `stop` lets requests in flight finish (their commit and answer) before closing every connection. */
const STOP_GRACE_MS = 5_000;

type Config = HttpOptions & { name: string; stream: string };

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
    // The HTTP framework is loaded when an http source starts (its server adaptor loads Node's HTTP/2 module):
    // agents without one do not pay for it at start.
    const [{ Hono }, { createAdaptorServer }] = await Promise.all([import('hono'), import('@hono/node-server')]);
    const app = new Hono();
    // While stopping, every answer closes its connection: the server's close then completes once the answers
    // of the requests in flight are written, instead of cutting them off (or waiting out keep-alive).
    app.use('*', async (c, next) => {
      await next();
      if (this.stopping) c.res.headers.set('Connection', 'close');
    });
    app.post(`${o.path}/:stream`, (c) => this.track(this.ingest(c)));
    app.all('*', (c) => this.refuse(c, { status: 404, error: 'not_found', message: `POST records to ${o.path}/<stream>` }));
    app.onError((err, c) => {
      ctx.problems.report('request_errors', 'an ingest request failed', { err: describeError(err) });
      return this.refuse(c, { status: 400, error: 'bad_request', message: 'the request could not be read' });
    });
    const tls = o.tls
      ? {
          createServer: createHttpsServer,
          serverOptions: {
            cert: this.readPem(o.tls.cert, 'TLS certificate'),
            key: this.readPem(o.tls.key, 'TLS private key'),
            ...(o.tls.ca ? { ca: this.readPem(o.tls.ca, 'TLS CA'), requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : {};
    const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false, ...tls }) as Server;
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

  private refuse(c: Context, refusal: Refusal, headers: Record<string, string> = {}): Response {
    if (refusal.status === 503) headers['Retry-After'] = String(Math.ceil(this.config.retry_after / 1000));
    if (refusal.status === 401) headers['WWW-Authenticate'] = 'Bearer';
    this.ctx.counters.add(`refused_${refusal.status}`);
    return c.json({ error: refusal.error, message: refusal.message }, refusal.status, headers);
  }

  private unavailable(stream: string): Refusal | undefined {
    if (this.stopping || this.ctx.signal.aborted) return { status: 503, error: 'stopping', message: 'the agent is stopping; nothing of this request was kept' };
    if (this.ctx.queueRefuses?.(stream))
      return { status: 503, error: 'queue_full', message: `the queue is full for stream ${stream}; nothing of this request was kept` };
    return undefined;
  }

  private async ingest(c: Context): Promise<Response> {
    const o = this.config;
    const stream = c.req.param('stream')!;
    if (!this.allowed.has(stream)) return this.refuse(c, { status: 404, error: 'unknown_stream', message: `no route for stream ${stream}` });
    if (this.tokens && !this.tokens.accepts(c.req.header('authorization'))) {
      this.ctx.problems.report('unauthorized', 'ingest request without an accepted token', { stream });
      return this.refuse(c, { status: 401, error: 'unauthorized', message: 'missing or unknown bearer token' });
    }
    const format = formatOf(c.req.header('content-type'));
    if (!format) {
      return this.refuse(c, {
        status: 415,
        error: 'unsupported_media_type',
        message: 'Content-Type must be application/json, application/x-ndjson (JSON lines) or application/cbor',
      });
    }
    const down = this.unavailable(stream);
    if (down) return this.refuse(c, down);
    const declared = Number(c.req.header('content-length') ?? Number.NaN);
    if (declared > o.max_body_bytes) return this.tooLarge(c, declared);
    const reserve = Number.isFinite(declared) ? declared : 0;
    if (this.pendingBytes > 0 && this.pendingBytes + reserve > o.max_pending_bytes) {
      return this.refuse(c, { status: 503, error: 'busy', message: 'too much received and not yet committed; retry shortly' });
    }
    this.pendingBytes += reserve;
    let held = reserve;
    try {
      const body = await this.readBody(c.req.raw, (n) => {
        this.pendingBytes += n;
        held += n;
      });
      if (body === undefined) return this.tooLarge(c, held);
      const decoded = decodeBody(body, format, o.max_records);
      if (!decoded.ok) {
        // The message goes to the sender only: parsers quote the body, and bodies may hold patient data.
        this.ctx.problems.report(decoded.error, 'ingest request refused', { stream, status: decoded.status });
        return this.refuse(c, decoded);
      }
      const late = this.unavailable(stream);
      if (late) return this.refuse(c, late);
      const records = decoded.records;
      try {
        await this.ctx.emit(records, undefined, { commitWithinMs: o.commit_within, ...(stream === o.stream ? {} : { stream }) });
      } catch (err) {
        this.ctx.fail(new AgentError('SOURCE_FAILED', `http source ${o.name}: records not committed`, { cause: err, retryable: true }));
        return this.refuse(c, { status: 503, error: 'not_committed', message: 'the records could not be committed; nothing of this request was kept' });
      }
      this.ctx.counters.add('requests');
      return c.json({ accepted: records.length }, 202);
    } finally {
      this.pendingBytes -= held;
    }
  }

  /**
   * 413, and the connection closed once it is written: the rest of the body is not read (the adapter would
   * otherwise drain it for up to half a second, megabytes on a fast link).
   */
  private tooLarge(c: Context, bytes: number): Response {
    this.ctx.problems.report('body_too_large', 'ingest request body over max_body_bytes', { bytes, max_body_bytes: this.config.max_body_bytes });
    const bindings = c.env as Partial<HttpBindings> | undefined;
    bindings?.outgoing?.once('finish', () => bindings.incoming?.socket.destroy());
    return this.refuse(c, { status: 413, error: 'body_too_large', message: `body over ${this.config.max_body_bytes} bytes` }, { Connection: 'close' });
  }

  /**
   * The body, read chunk by chunk and given up as soon as it passes max_body_bytes (undefined then): a sender
   * that declares no length, or a false one, cannot make the gateway buffer more than the cap. Bytes beyond
   * the declared length are counted as they come (`counted`).
   */
  private async readBody(request: Request, counted: (extra: number) => void): Promise<Uint8Array | undefined> {
    const max = this.config.max_body_bytes;
    const declared = Number(request.headers.get('content-length') ?? 0) || 0;
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (!request.body) return new Uint8Array(0);
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const before = total;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
      if (total > declared) counted(total - Math.max(before, declared));
      chunks.push(value);
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

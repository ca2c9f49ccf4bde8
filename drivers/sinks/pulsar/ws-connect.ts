import type WebSocket from 'ws';
import { AgentError } from '../../../agent/sdk/index.ts';
import { readToken } from '../../common/secrets.ts';
import { describeTlsFailure, tlsConnectionOptions } from '../../common/tls.ts';
import type { PulsarOptions } from './options.ts';

/** How to reach the broker's web service: base URL, headers and TLS material, resolved once per connection. */
export interface WsEndpoint {
  base: string;
  headers: Record<string, string>;
  tls: ReturnType<typeof tlsConnectionOptions>;
  timeoutMs: number;
}

export function wsEndpoint(options: PulsarOptions, baseDir: string): WsEndpoint {
  const token = readToken(options, baseDir, 'Pulsar');
  return {
    base: options.url.replace(/\/+$/, ''),
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    tls: tlsConnectionOptions(options.tls ?? { reject_unauthorized: true }, baseDir, 'Pulsar'),
    timeoutMs: options.connect_timeout,
  };
}

/** The `errorMsg` Pulsar puts into the HTML page of a refused WebSocket handshake. */
function brokerReason(body: string): string {
  const match = /errorMsg(?:&quot;|")\s*:\s*(?:&quot;|")(.*?)(?:&quot;|")/.exec(body) ?? /<title>(.*?)<\/title>/s.exec(body);
  return (match?.[1] ?? body).replace(/\s+/g, ' ').trim().slice(0, 200);
}

/**
 * A refused handshake. Each is retryable: a missing namespace, a revoked token or a busy producer name is
 * fixed on the broker side while the data waits in the queue; setting batches aside would lose it.
 */
function handshakeError(status: number, body: string, what: string): AgentError {
  const reason = brokerReason(body);
  const explain: Record<number, string> = {
    401: 'authentication refused (check token_file / token_env)',
    403: "not authorized (grant the token's role produce/consume on the namespace)",
    404: 'not found (does the tenant and namespace exist?)',
    409: 'busy (another producer or consumer with this name is still connected)',
  };
  const code = status === 401 || status === 403 || status === 404 ? 'SINK_REJECTED' : 'SINK_UNAVAILABLE';
  return new AgentError(code, `Pulsar refused ${what}: HTTP ${status} ${explain[status] ?? 'broker error'}: ${reason}`, {
    retryable: true,
    details: { status },
  });
}

/** True for errors that mean the broker cannot be reached at all (as opposed to refusing us). */
export function isUnreachable(err: unknown): boolean {
  return err instanceof AgentError && err.details?.unreachable === true;
}

/**
 * Bytes of a refused handshake's error page kept for the message. The page of a misconfigured proxy can be
 * megabytes: past this the response is dropped and the socket destroyed, not read to its end.
 */
export const MAX_ERROR_BODY = 4096;

/** The error of an attempt given up because the sink or consumer closes. */
export function closingError(): AgentError {
  return new AgentError('SINK_UNAVAILABLE', 'Pulsar sink is closing', { retryable: true });
}

/**
 * The error for a connection that did not come up. A certificate refused or a TLS handshake that failed is
 * said so (the broker was reached; its TLS setup or ours is wrong), and is not counted as unreachable.
 */
function connectionError(cause: Error, base: string, what: string): AgentError {
  const tls = describeTlsFailure(cause);
  if (tls) return new AgentError('SINK_UNAVAILABLE', `Pulsar at ${base} for ${what}: ${tls}`, { cause, retryable: true, details: { tls: true } });
  return new AgentError('SINK_UNAVAILABLE', `cannot reach Pulsar at ${base} for ${what}: ${cause.message}`, {
    cause,
    retryable: true,
    details: { unreachable: true },
  });
}

/**
 * Opens a WebSocket to `path` on the broker; rejects with a clear AgentError (all retryable). `signal`
 * aborts the attempt at once (closing): the socket is destroyed, whatever the handshake's state.
 */
export async function openWebSocket(endpoint: WsEndpoint, path: string, what: string, signal?: AbortSignal): Promise<WebSocket> {
  if (signal?.aborted) throw closingError();
  // Loaded on the first connection: a config without a Pulsar sink never evaluates the WebSocket library.
  const { default: Socket } = await import('ws');
  if (signal?.aborted) throw closingError();
  return new Promise((resolve, reject) => {
    const socket = new Socket(`${endpoint.base}${path}`, {
      headers: endpoint.headers,
      ...endpoint.tls,
      handshakeTimeout: endpoint.timeoutMs,
      perMessageDeflate: false,
    });
    let settled = false;
    const onAbort = () => fail(closingError());
    const fail = (err: AgentError) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.terminate();
      reject(err);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('open', () => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      (socket as unknown as { _socket?: { setNoDelay?: (on: boolean) => void } })._socket?.setNoDelay?.(true);
      resolve(socket);
    });
    socket.once('unexpected-response', (request, response) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      const refuse = () => {
        response.removeAllListeners('data');
        response.destroy();
        request.destroy();
        fail(handshakeError(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), what));
      };
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk.subarray(0, MAX_ERROR_BODY - kept));
        kept += Math.min(chunk.length, MAX_ERROR_BODY - kept);
        if (kept >= MAX_ERROR_BODY) refuse(); // enough for the message: do not read the rest
      });
      response.on('end', refuse);
      response.on('error', refuse);
    });
    socket.once('error', (cause) => fail(connectionError(cause, endpoint.base, what)));
  });
}

/** What a probe found: reachable, or why not (a TLS failure said as such). */
export interface ProbeResult {
  reachable: boolean;
  /** Set when the broker answered TCP but TLS failed: "TLS verification failed: …". */
  tls?: string;
}

/** Whether the broker's web service answers HTTP at all (any status): it is reachable. `signal` aborts it. */
export async function probe(endpoint: WsEndpoint, signal?: AbortSignal): Promise<ProbeResult> {
  const url = new URL('/admin/v2/clusters', endpoint.base.replace(/^ws/, 'http'));
  // Taken on the first probe: an agent without a Pulsar sink never loads Node's HTTP(S) client for it. Not
  // `import()`: the executable has no loader for dynamic imports (scripts/build/bundle.ts refuses them).
  const { request } = url.protocol === 'https:' ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', headers: endpoint.headers, ...endpoint.tls, timeout: endpoint.timeoutMs, signal }, (response) => {
      response.destroy(); // the status is all a probe needs; the body (any size) is not read
      resolve({ reachable: true });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', (err) => {
      const tls = describeTlsFailure(err);
      resolve(tls ? { reachable: false, tls } : { reachable: false });
    });
    req.end();
  });
}

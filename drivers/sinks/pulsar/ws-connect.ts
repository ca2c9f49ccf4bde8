import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';
import { AgentError } from '../../../agent/sdk/index.ts';
import { readToken } from '../../common/secrets.ts';
import { tlsConnectionOptions } from '../../common/tls.ts';
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

/** Opens a WebSocket to `path` on the broker; rejects with a clear AgentError (all retryable). */
export function openWebSocket(endpoint: WsEndpoint, path: string, what: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${endpoint.base}${path}`, {
      headers: endpoint.headers,
      ...endpoint.tls,
      handshakeTimeout: endpoint.timeoutMs,
      perMessageDeflate: false,
    });
    const fail = (err: AgentError) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.terminate();
      reject(err);
    };
    socket.once('open', () => {
      socket.removeAllListeners();
      (socket as unknown as { _socket?: { setNoDelay?: (on: boolean) => void } })._socket?.setNoDelay?.(true);
      resolve(socket);
    });
    socket.once('unexpected-response', (_req, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk.length < 4096 ? chunk : ''));
      response.on('end', () => fail(handshakeError(response.statusCode ?? 0, body, what)));
      response.on('error', () => fail(handshakeError(response.statusCode ?? 0, body, what)));
    });
    socket.once('error', (cause) =>
      fail(
        new AgentError('SINK_UNAVAILABLE', `cannot reach Pulsar at ${endpoint.base} for ${what}: ${cause.message}`, {
          cause,
          retryable: true,
          details: { unreachable: true },
        }),
      ),
    );
  });
}

/** Resolves true if the broker's web service answers HTTP at all (any status): it is reachable. */
export function probe(endpoint: WsEndpoint): Promise<boolean> {
  const url = new URL('/admin/v2/clusters', endpoint.base.replace(/^ws/, 'http'));
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', headers: endpoint.headers, ...endpoint.tls, timeout: endpoint.timeoutMs }, (response) => {
      response.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

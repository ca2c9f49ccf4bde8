/**
 * Can this gateway reach what its config names (`edge-agent check`): for the sink's broker and the control
 * connection's, each host in turn: the name resolves, a TCP connection opens, and for a TLS URL the handshake
 * completes with the config's `tls:` block and the certificate is inside its validity period (a warning when
 * it ends within CERT_WARN_DAYS). Each step is its own line, so an operator sees where it breaks.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { describeTlsFailure, type TlsOptions, tlsConnectionOptions } from '../util/tls.ts';

export type Status = 'ok' | 'warn' | 'fail';

export interface CheckLine {
  check: string;
  status: Status;
  message: string;
}

export interface Endpoint {
  /** What it is, for the lines: `sink` or `fleet.broker`. */
  what: string;
  url: string;
  tls: TlsOptions | undefined;
}

export const CERT_WARN_DAYS = 14;

/** Node's resolver module, loaded by the first check that resolves a name: not at every start of the executable. */
const resolveAll = (host: string) => process.getBuiltinModule('node:dns/promises').lookup(host, { all: true });
const TIMEOUT_MS = 5_000;
const TLS_SCHEMES = new Set(['mqtts', 'ssl', 'tls', 'wss', 'https', 'pulsar+ssl']);
const DEFAULT_PORTS: Record<string, number> = {
  mqtt: 1883,
  mqtts: 8883,
  ws: 80,
  wss: 443,
  http: 80,
  https: 443,
  pulsar: 6650,
  'pulsar+ssl': 6651,
  tcp: 1883,
  ssl: 8883,
  tls: 8883,
};

/** host:port pairs of a URL; Pulsar's may list several hosts (`pulsar://a:6650,b:6650`). */
export function hostsOf(url: string): { scheme: string; hosts: { host: string; port: number }[] } | undefined {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/]*@)?([^/?#]+)/i.exec(url);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  const hosts = m[2]!.split(',').map((part) => {
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(part);
    const [host, port] = v6 ? [v6[1]!, v6[2]] : (part.split(':') as [string, string | undefined]);
    return { host, port: port ? Number(port) : (DEFAULT_PORTS[scheme] ?? 0) };
  });
  return { scheme, hosts };
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

function tcp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = tcpConnect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

/** The handshake without verification (so an expired or foreign certificate can still be read), then judged. */
function handshake(
  host: string,
  port: number,
  tls: TlsOptions | undefined,
  baseDir: string,
  what: string,
): Promise<{ cert: PeerCertificate; error: Error | null }> {
  const options = tls ? tlsConnectionOptions(tls, baseDir, what) : { rejectUnauthorized: true };
  return new Promise((resolve, reject) => {
    // node:tls taken here: every start evaluates this module (the command line lists `check`).
    const socket: TLSSocket = process.getBuiltinModule('node:tls').connect({
      ...options,
      host,
      port,
      servername: options.servername ?? (/^[\d.:]+$/.test(host) ? undefined : host),
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const error = socket.authorized ? null : Object.assign(new Error(String(socket.authorizationError)), { code: String(socket.authorizationError) });
      socket.destroy();
      resolve({ cert, error: options.rejectUnauthorized ? error : null });
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

function days(ms: number): number {
  return Math.floor(ms / 86_400_000);
}

/** The lines for one endpoint; `now` for the certificate's validity. */
export async function probeEndpoint(endpoint: Endpoint, baseDir: string, now: number): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const label = (step: string) => `${endpoint.what} ${step}`;
  if (endpoint.url === 'embedded') return [{ check: label('broker'), status: 'ok', message: "the agent's embedded broker (nothing to reach)" }];
  const parsed = hostsOf(endpoint.url);
  if (!parsed) return [{ check: label('url'), status: 'fail', message: `cannot read a host from ${endpoint.url}` }];
  for (const { host, port } of parsed.hosts) {
    const at = `${host}:${port}`;
    try {
      const addresses = await withTimeout(resolveAll(host), `resolving ${host}`);
      lines.push({ check: label('dns'), status: 'ok', message: `${host} → ${addresses.map((a) => a.address).join(', ')}` });
    } catch (err) {
      lines.push({ check: label('dns'), status: 'fail', message: `${host} does not resolve: ${(err as Error).message}` });
      continue;
    }
    try {
      await withTimeout(tcp(host, port), `connecting to ${at}`);
      lines.push({ check: label('tcp'), status: 'ok', message: `${at} accepts connections` });
    } catch (err) {
      lines.push({
        check: label('tcp'),
        status: 'fail',
        message: `${at}: ${(err as Error).message} (is the broker running, and is the port open on the way?)`,
      });
      continue;
    }
    if (!TLS_SCHEMES.has(parsed.scheme)) continue;
    try {
      const { cert, error } = await withTimeout(handshake(host, port, endpoint.tls, baseDir, endpoint.what), `TLS handshake with ${at}`);
      const until = Date.parse(cert.valid_to);
      const from = Date.parse(cert.valid_from);
      const subject = cert.subject?.CN ?? '(no CN)';
      if (error) lines.push({ check: label('tls'), status: 'fail', message: `${at}: ${describeTlsFailure(error) ?? error.message}` });
      else lines.push({ check: label('tls'), status: 'ok', message: `${at}: handshake ok, certificate ${subject} verified` });
      if (Number.isFinite(until) && until <= now) {
        lines.push({ check: label('certificate'), status: 'fail', message: `${subject} expired ${cert.valid_to} (${days(now - until)} days ago)` });
      } else if (Number.isFinite(from) && from > now) {
        lines.push({
          check: label('certificate'),
          status: 'fail',
          message: `${subject} is valid only from ${cert.valid_from}: is this gateway's clock behind?`,
        });
      } else if (Number.isFinite(until) && until - now < CERT_WARN_DAYS * 86_400_000) {
        lines.push({ check: label('certificate'), status: 'warn', message: `${subject} expires ${cert.valid_to} (in ${days(until - now)} days)` });
      } else {
        lines.push({ check: label('certificate'), status: 'ok', message: `${subject} valid until ${cert.valid_to} (${days(until - now)} days)` });
      }
    } catch (err) {
      lines.push({ check: label('tls'), status: 'fail', message: `${at}: ${describeTlsFailure(err) ?? (err as Error).message}` });
    }
  }
  return lines;
}

/**
 * TLS for client connections (every driver's, and the fleet control connection's): the `tls:` config block
 * declared once, and Node's TLS options built from it with the PEM files read (relative paths from the
 * config's folder) when a connection is made. Drivers reach it through agent/sdk/index.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from './zod.ts';
import { AgentError } from '../errors.ts';
import { fileOption } from './file-option.ts';

export interface TlsVariant {
  /** What the driver connects to, in the reference text: "server" (default) or "broker". */
  readonly peer?: string;
  /** Offer `servername` (SNI); off where the driver's client library cannot honour it. Default on. */
  readonly servername?: boolean;
  /** Reference text for `cert` and `key` where the driver has something to add. */
  readonly cert?: string;
  readonly key?: string;
  /** Description of the whole block, where "used with <scheme> URLs" does not fit (drivers without URLs). */
  readonly describe?: string;
}

/** The `tls:` block of a driver's options; `usedWith` names the URL schemes it applies to. */
export function tlsOptions(usedWith: string, variant: TlsVariant = {}) {
  const peer = variant.peer ?? 'server';
  const shape = {
    ca: fileOption(z.string().optional().describe(`PEM file of the CA(s) that signed the ${peer} certificate.`), { what: 'TLS CA' }),
    cert: fileOption(
      z
        .string()
        .optional()
        .describe(variant.cert ?? 'PEM client certificate file, for client-certificate authentication.'),
      { what: 'TLS certificate' },
    ),
    key: fileOption(
      z
        .string()
        .optional()
        .describe(variant.key ?? 'PEM private key file of the client certificate.'),
      { what: 'TLS private key', secret: true },
    ),
    reject_unauthorized: z.boolean().default(true).describe(`Verify the ${peer} certificate. Turn off only for tests.`),
  };
  const servername = z.string().optional().describe('TLS SNI / name to verify, when it differs from the host connected to.');
  const block = variant.servername === false ? z.strictObject(shape) : z.strictObject({ ...shape, servername });
  return block.optional().describe(variant.describe ?? `TLS settings; used with ${usedWith} URLs.`);
}

export interface TlsOptions {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  reject_unauthorized: boolean;
  servername?: string | undefined;
}

export interface TlsConnectionOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** Node's TLS connection options from the config: the PEM files read, relative paths from the config's folder. */
export function tlsConnectionOptions(tls: TlsOptions, baseDir: string, what: string): TlsConnectionOptions {
  const read = (path: string, which: string) => {
    try {
      return readFileSync(resolve(baseDir, path));
    } catch (cause) {
      throw new AgentError('CONFIG_INVALID', `${what}: cannot read TLS ${which} file ${path}`, { cause });
    }
  };
  return {
    rejectUnauthorized: tls.reject_unauthorized,
    ...(tls.ca ? { ca: read(tls.ca, 'CA') } : {}),
    ...(tls.cert ? { cert: read(tls.cert, 'certificate') } : {}),
    ...(tls.key ? { key: read(tls.key, 'key') } : {}),
    ...(tls.servername ? { servername: tls.servername } : {}),
  };
}

/** Codes of a certificate the client refused (OpenSSL's verify results as Node names them, and Node's own). */
const CERTIFICATE_CODES =
  /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$|INVALID_CA$|INVALID_PURPOSE$|PATH_LENGTH_EXCEEDED$|ERR_TLS_CERT_ALTNAME_INVALID$)/;
/** Codes of a handshake that failed for another reason (protocol, alert from the peer, no TLS on the port). */
const HANDSHAKE_CODES = /^(ERR_SSL_|ERR_TLS_)/;

/** What went wrong, with a hint, for a certificate the client refused. */
function certificateHint(code: string): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH')
    return 'the certificate does not name the host connected to (connect by a name it carries, or set tls.servername)';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return "the certificate is outside its validity period (check it, and the gateway's clock)";
  return 'the certificate is not signed by a trusted CA (set tls.ca to the CA that signed it)';
}

/**
 * A TLS failure told apart from "unreachable": the peer was reached, but its certificate was refused or the
 * handshake failed. Returns the explanation to put in an error message, or undefined for any other error.
 * Looks through `cause` chains, since client libraries wrap the socket's error.
 */
export function describeTlsFailure(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = String((e as { code?: unknown }).code ?? '');
    const message = e instanceof Error ? e.message : String(e);
    if (CERTIFICATE_CODES.test(code)) return `TLS verification failed: ${certificateHint(code)}: ${message} (${code})`;
    if (HANDSHAKE_CODES.test(code) || (code === 'EPROTO' && /ssl|tls/i.test(message))) return `TLS handshake failed: ${message}${code ? ` (${code})` : ''}`;
  }
  return undefined;
}

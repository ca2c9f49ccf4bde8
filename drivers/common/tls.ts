/**
 * TLS for every driver's client connections: the `tls:` config block declared once, and Node's TLS options
 * built from it with the PEM files read (relative paths from the config's folder) when a connection is made.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError, fileOption, z } from '../../agent/sdk/index.ts';

export interface TlsVariant {
  /** What the driver connects to, in the reference text: "server" (default) or "broker". */
  readonly peer?: string;
  /** Offer `servername` (SNI); off where the driver's client library cannot honour it. Default on. */
  readonly servername?: boolean;
  /** Reference text for `cert` and `key` where the driver has something to add. */
  readonly cert?: string;
  readonly key?: string;
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
  const servername = z.string().optional().describe('TLS SNI / name to verify, when it differs from the URL host.');
  const block = variant.servername === false ? z.strictObject(shape) : z.strictObject({ ...shape, servername });
  return block.optional().describe(`TLS settings; used with ${usedWith} URLs.`);
}

export interface TlsOptions {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  reject_unauthorized: boolean;
  servername?: string | undefined;
}

/** Node's TLS connection options from the config: the PEM files read, relative paths from the config's folder. */
export function tlsConnectionOptions(
  tls: TlsOptions,
  baseDir: string,
  what: string,
): { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean; servername?: string } {
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

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError, z } from '../../agent/sdk/index.ts';

/** TLS settings of a client connection, as every driver's config spells them. */
export function tlsOptions(usedWith: string) {
  return z
    .strictObject({
      ca: z.string().optional().describe('PEM file of the CA(s) that signed the server certificate.'),
      cert: z.string().optional().describe('PEM client certificate file, for client-certificate authentication.'),
      key: z.string().optional().describe('PEM private key file of the client certificate.'),
      reject_unauthorized: z.boolean().default(true).describe('Verify the server certificate. Turn off only for tests.'),
      servername: z.string().optional().describe('TLS SNI / name to verify, when it differs from the URL host.'),
    })
    .optional()
    .describe(`TLS settings; used with ${usedWith} URLs.`);
}

export type TlsOptions = NonNullable<z.output<ReturnType<typeof tlsOptions>>>;

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

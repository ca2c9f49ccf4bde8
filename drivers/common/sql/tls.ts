import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import { tlsConnectionOptions, tlsOptions, type TlsOptions } from '../tls.ts';

/**
 * The `tls:` block of the SQL sources. Absent: plain TCP. Present, even empty (`tls: {}`): TLS is required,
 * the server certificate is verified against `ca` (or the system CAs) and its name against `host` (or
 * `servername`), PostgreSQL's sslmode=verify-full. `reject_unauthorized: false` encrypts without verifying
 * (sslmode=require): for tests only.
 */
export function sqlTlsOptions(database: string, servername: boolean) {
  return tlsOptions('', {
    servername,
    describe:
      `TLS to the ${database} server. Absent: plain TCP. Present, even empty (\`tls: {}\`): TLS required, the server certificate verified against \`ca\` (or the system CAs) and the name in it against \`host\`` +
      `${servername ? ' (or `servername`)' : ''}; \`reject_unauthorized: false\` encrypts without verifying (tests only).`,
  });
}

/**
 * Node's TLS options for a database client, the PEM files read now (at each connect, so renewed files are
 * picked up). With `servername`, the certificate is checked against that name whatever host the client
 * library connects to (it may set the SNI to the host itself).
 */
export function sqlTlsConnectionOptions(tls: TlsOptions, baseDir: string, where: string): ConnectionOptions {
  const options: ConnectionOptions = tlsConnectionOptions(tls, baseDir, where);
  const name = tls.servername;
  // node:tls taken when a connection checks its server: the SQL sources' declarations import this file, and a
  // start that uses no TLS need not load it.
  if (name !== undefined)
    options.checkServerIdentity = (_host: string, cert: PeerCertificate) => process.getBuiltinModule('node:tls').checkServerIdentity(name, cert);
  return options;
}

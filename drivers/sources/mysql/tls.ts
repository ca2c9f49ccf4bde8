import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { createConnection } from 'mysql2';
import type mysql from 'mysql2/promise';

/** mysql2's own TLS step of the handshake, and the socket it leaves behind. */
interface StartTls {
  startTLS(onSecure: (err?: Error) => void): void;
  stream: { getPeerCertificate?(detailed: boolean): PeerCertificate; isSessionReused?(): boolean };
}

/**
 * Connects like mysql2/promise's createConnection, with the server's name checked against `host` before any
 * credential is sent. mysql2 checks it only for host names, and for an IP address lets Node compare the
 * certificate with "localhost", which any certificate for localhost passes: so the check is made here, in
 * the step between the TLS handshake and the credentials, for names and addresses alike. A TLS error keeps
 * its own code in `cause` (mysql2 overwrites `code` with HANDSHAKE_SSL_ERROR).
 */
export function connectVerified(options: mysql.ConnectionOptions & { host: string }, tls: ConnectionOptions | undefined): Promise<mysql.Connection> {
  const rejectUnauthorized = tls?.rejectUnauthorized !== false;
  const ssl = tls ? { ssl: { ...mysqlSsl(tls), verifyIdentity: false } } : {};
  const core = createConnection({ ...options, ...ssl });
  const internal = core as unknown as StartTls;
  const startTLS = internal.startTLS.bind(core);
  internal.startTLS = (onSecure) =>
    startTLS((err) => {
      if (err) return onSecure(new Error(err.message, { cause: err }));
      if (rejectUnauthorized && !internal.stream.isSessionReused?.()) {
        const cert = internal.stream.getPeerCertificate?.(false);
        const mismatch = cert ? checkServerIdentity(options.host, cert) : new Error('the server sent no certificate');
        if (mismatch) return onSecure(new Error(mismatch.message, { cause: mismatch }));
      }
      onSecure();
    });
  return new Promise((resolve, reject) => {
    core.once('connect', () => resolve(core.promise()));
    core.once('error', reject);
  });
}

/** mysql2's form of the TLS options (it takes the PEM material, not Node's options object as such). */
function mysqlSsl(tls: ConnectionOptions): mysql.SslOptions {
  return {
    ...(tls.ca ? { ca: tls.ca as Buffer } : {}),
    ...(tls.cert ? { cert: tls.cert as Buffer } : {}),
    ...(tls.key ? { key: tls.key as Buffer } : {}),
    rejectUnauthorized: tls.rejectUnauthorized !== false,
  };
}
